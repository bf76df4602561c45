#include "cuda/sgd_kernels.hpp"

#include <algorithm>

#include <thrust/device_ptr.h>
#include <thrust/gather.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>

#include "cpu/util/error.hpp"
#include "cuda/check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/thrust_policy.cuh"
#include "cuda/warp.cuh"

namespace freshrec {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int kBlockSamples = 32;  // a work unit: 32 consecutive (already shuffled) samples
// A prime above any block count we meet: j -> (j * prime + offset) mod n is a permutation.
constexpr std::uint64_t kPermutePrime = 2654435761ULL;

__global__ void hash_keys_kernel(std::uint64_t* keys, std::int64_t n, std::uint64_t seed) {
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    keys[e] = device_mix64(seed ^ device_mix64(static_cast<std::uint64_t>(e)));
  }
}

template <int KPL>
__device__ __forceinline__ void load_vec(const float* __restrict__ src, int k, int lane, float (&v)[KPL]) {
#pragma unroll
  for (int t = 0; t < KPL; ++t) {
    const int c = lane + 32 * t;
    v[t] = c < k ? src[c] : 0.0f;  // plain loads: other warps write these rows
  }
}

template <int KPL>
__global__ void __launch_bounds__(kThreads) sgd_epoch_kernel(SgdSamples s, SgdModel m, SgdStep step,
                                                             std::uint64_t n_blocks, std::uint64_t mult,
                                                             std::uint64_t offset) {
  const int lane = threadIdx.x & 31;
  const int k = m.k;
  const std::uint64_t warps = static_cast<std::uint64_t>(gridDim.x) * kWarpsPerBlock;
  for (std::uint64_t j = (blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x) / 32; j < n_blocks;
       j += warps) {
    const std::uint64_t blk = (j * mult + offset) % n_blocks;
    const std::int64_t base = static_cast<std::int64_t>(blk) * kBlockSamples;
    const int n = static_cast<int>(s.n - base < kBlockSamples ? s.n - base : kBlockSamples);
    const std::int32_t my_u = lane < n ? s.user[base + lane] : 0;
    const std::int32_t my_i = lane < n ? s.item[base + lane] : 0;
    const float my_r = lane < n ? s.rating[base + lane] : 0.0f;
    for (int q = 0; q < n; ++q) {
      const std::int32_t u = __shfl_sync(kFullMask, my_u, q);
      const std::int32_t i = __shfl_sync(kFullMask, my_i, q);
      const float r = __shfl_sync(kFullMask, my_r, q);
      float* pu_ptr = m.user_factors + static_cast<std::int64_t>(u) * k;
      float* qi_ptr = m.item_factors + static_cast<std::int64_t>(i) * k;
      float p[KPL], qv[KPL];
      load_vec<KPL>(pu_ptr, k, lane, p);
      load_vec<KPL>(qi_ptr, k, lane, qv);
      const float bu = m.user_bias[u];
      const float bi = m.item_bias[i];
      float d = 0.0f;
#pragma unroll
      for (int t = 0; t < KPL; ++t) d = fmaf(p[t], qv[t], d);
      d = warp_sum(d);
      const float e = r - (step.global_bias + bu + bi + d);
      const float lr = step.learning_rate;
      const float nbu = bu + lr * (e - step.bias_regularization * bu);
      const float nbi = bi + lr * (e - step.bias_regularization * bi);
      float np[KPL], nq[KPL];
      bool finite = isfinite(nbu) && isfinite(nbi);
#pragma unroll
      for (int t = 0; t < KPL; ++t) {
        np[t] = p[t] + lr * (e * qv[t] - step.regularization * p[t]);
        nq[t] = qv[t] + lr * (e * p[t] - step.regularization * qv[t]);
        finite = finite && isfinite(np[t]) && isfinite(nq[t]);
      }
      // As the CPU trainer: a diverging update is skipped whole, never half-written.
      if (!__all_sync(kFullMask, finite)) continue;
#pragma unroll
      for (int t = 0; t < KPL; ++t) {
        const int c = lane + 32 * t;
        if (c < k) {
          pu_ptr[c] = np[t];
          qi_ptr[c] = nq[t];
        }
      }
      if (lane == 0) {
        m.user_bias[u] = nbu;
        m.item_bias[i] = nbi;
      }
      // The next sample may hit the same row: make this warp's stores visible to its lanes.
      __syncwarp();
    }
  }
}

template <int KPL>
__global__ void __launch_bounds__(kThreads) sgd_error_kernel(SgdSamples s, SgdModel m, float global_bias,
                                                             double* out) {
  const int lane = threadIdx.x & 31;
  const int k = m.k;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kWarpsPerBlock;
  double sum = 0.0;
  for (std::int64_t e = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32; e < s.n;
       e += warps) {
    const std::int32_t u = s.user[e], i = s.item[e];
    float p[KPL], qv[KPL];
    load_vec<KPL>(m.user_factors + static_cast<std::int64_t>(u) * k, k, lane, p);
    load_vec<KPL>(m.item_factors + static_cast<std::int64_t>(i) * k, k, lane, qv);
    float d = 0.0f;
#pragma unroll
    for (int t = 0; t < KPL; ++t) d = fmaf(p[t], qv[t], d);
    d = warp_sum(d);
    const double err = static_cast<double>(s.rating[e]) - (global_bias + m.user_bias[u] + m.item_bias[i] + d);
    sum += err * err;
  }
  if (lane == 0) atomicAdd(out, sum);
}

unsigned grid_cap(GpuResources& res, std::uint64_t warps_wanted) {
  const std::uint64_t cap = static_cast<std::uint64_t>(res.multiprocessors()) * 16;
  const std::uint64_t want = (warps_wanted + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return static_cast<unsigned>(want < 1 ? 1 : (want < cap ? want : cap));
}

template <int KPL>
void launch_epoch(GpuResources& res, const SgdSamples& s, const SgdModel& m, const SgdStep& step,
                  std::uint64_t epoch_seed) {
  const std::uint64_t n_blocks = (static_cast<std::uint64_t>(s.n) + kBlockSamples - 1) / kBlockSamples;
  const std::uint64_t mult = kPermutePrime % n_blocks == 0 ? 1 : kPermutePrime % n_blocks;
  const std::uint64_t offset = device_mix64(epoch_seed) % n_blocks;
  // >= 32 work units (1024 samples) per warp: on a small problem one warp per unit puts
  // the whole epoch in flight at once and most updates to a row overwrite each other.
  sgd_epoch_kernel<KPL><<<grid_cap(res, (n_blocks + 31) / 32), kThreads, 0, res.stream()>>>(s, m, step, n_blocks,
                                                                                           mult, offset);
  FRESHREC_CHECK_LAUNCH(res.stream());
}

template <int KPL>
void launch_error(GpuResources& res, const SgdSamples& s, const SgdModel& m, float mu, double* out) {
  sgd_error_kernel<KPL><<<grid_cap(res, static_cast<std::uint64_t>(s.n)), kThreads, 0, res.stream()>>>(s, m, mu, out);
  FRESHREC_CHECK_LAUNCH(res.stream());
}

}  // namespace

void shuffle_samples(GpuResources& res, std::int32_t* user, std::int32_t* item, float* rating, std::int64_t n,
                     std::uint64_t seed) {
  if (n < 2) return;
  ThrustAllocator alloc(res);
  auto policy = thrust_policy(res, alloc);
  DeviceBuffer<std::uint64_t> keys(res, static_cast<std::size_t>(n));
  DeviceBuffer<std::int64_t> perm(res, static_cast<std::size_t>(n));
  const unsigned grid = static_cast<unsigned>(std::min<std::int64_t>((n + kThreads - 1) / kThreads,
                                                                     res.multiprocessors() * 8));
  hash_keys_kernel<<<grid, kThreads, 0, res.stream()>>>(keys.data(), n, seed);
  FRESHREC_CHECK_LAUNCH(res.stream());
  thrust::device_ptr<std::uint64_t> k0(keys.data());
  thrust::device_ptr<std::int64_t> p0(perm.data());
  thrust::sequence(policy, p0, p0 + n);
  thrust::sort_by_key(policy, k0, k0 + n, p0);
  keys.reset();

  DeviceBuffer<std::int32_t> tmp_i(res, static_cast<std::size_t>(n));
  DeviceBuffer<float> tmp_f(res, static_cast<std::size_t>(n));
  thrust::device_ptr<std::int32_t> ti(tmp_i.data());
  thrust::device_ptr<float> tf(tmp_f.data());
  thrust::gather(policy, p0, p0 + n, thrust::device_ptr<std::int32_t>(user), ti);
  CUDA_CHECK(cudaMemcpyAsync(user, tmp_i.data(), tmp_i.bytes(), cudaMemcpyDeviceToDevice, res.stream()));
  thrust::gather(policy, p0, p0 + n, thrust::device_ptr<std::int32_t>(item), ti);
  CUDA_CHECK(cudaMemcpyAsync(item, tmp_i.data(), tmp_i.bytes(), cudaMemcpyDeviceToDevice, res.stream()));
  thrust::gather(policy, p0, p0 + n, thrust::device_ptr<float>(rating), tf);
  CUDA_CHECK(cudaMemcpyAsync(rating, tmp_f.data(), tmp_f.bytes(), cudaMemcpyDeviceToDevice, res.stream()));
}

void sgd_epoch(GpuResources& res, const SgdSamples& samples, const SgdModel& model, const SgdStep& step,
               std::uint64_t epoch_seed) {
  if (samples.n == 0) return;
  switch ((model.k + 31) / 32) {
    case 1: launch_epoch<1>(res, samples, model, step, epoch_seed); break;
    case 2: launch_epoch<2>(res, samples, model, step, epoch_seed); break;
    case 3: launch_epoch<3>(res, samples, model, step, epoch_seed); break;
    case 4: launch_epoch<4>(res, samples, model, step, epoch_seed); break;
    case 5: launch_epoch<5>(res, samples, model, step, epoch_seed); break;
    case 6: launch_epoch<6>(res, samples, model, step, epoch_seed); break;
    case 7: launch_epoch<7>(res, samples, model, step, epoch_seed); break;
    case 8: launch_epoch<8>(res, samples, model, step, epoch_seed); break;
    default: FRESHREC_ASSERT(model.k >= 1 && model.k <= 256);
  }
}

double sgd_squared_error(GpuResources& res, const SgdSamples& samples, const SgdModel& model, float global_bias) {
  if (samples.n == 0) return 0.0;
  DeviceBuffer<double> out(res, 1);
  out.zero();
  switch ((model.k + 31) / 32) {
    case 1: launch_error<1>(res, samples, model, global_bias, out.data()); break;
    case 2: launch_error<2>(res, samples, model, global_bias, out.data()); break;
    case 3: launch_error<3>(res, samples, model, global_bias, out.data()); break;
    case 4: launch_error<4>(res, samples, model, global_bias, out.data()); break;
    case 5: launch_error<5>(res, samples, model, global_bias, out.data()); break;
    case 6: launch_error<6>(res, samples, model, global_bias, out.data()); break;
    case 7: launch_error<7>(res, samples, model, global_bias, out.data()); break;
    case 8: launch_error<8>(res, samples, model, global_bias, out.data()); break;
    default: FRESHREC_ASSERT(model.k >= 1 && model.k <= 256);
  }
  double host = 0.0;
  out.download(&host, 1);
  res.synchronize();
  return host;
}

}  // namespace freshrec
