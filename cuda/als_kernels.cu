#include "cuda/als_kernels.hpp"

#include <cublas_v2.h>

#include <thrust/copy.h>
#include <thrust/device_ptr.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform_reduce.h>

#include "cpu/util/error.hpp"
#include "cuda/thrust_policy.cuh"
#include "cuda/warp.cuh"

namespace freshrec {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr float kResidualFloor = 1e-20f;  // implicit's CG stopping threshold

__global__ void add_diagonal_kernel(float* gram, int ld, int k, float reg) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < k) gram[static_cast<std::int64_t>(i) * ld + i] += reg;
}

// Lane `lane` owns components c = lane + 32 t of a k-vector (t < KPL); components >= k
// are zero so padding never leaks into dots.
template <int KPL>
__device__ __forceinline__ void load_row(const float* __restrict__ src, int k, int lane, float (&v)[KPL]) {
#pragma unroll
  for (int t = 0; t < KPL; ++t) {
    const int c = lane + 32 * t;
    v[t] = c < k ? __ldg(src + c) : 0.0f;
  }
}

template <int KPL>
__device__ __forceinline__ float dot_lane(const float (&a)[KPL], const float (&b)[KPL]) {
  float s = 0.0f;
#pragma unroll
  for (int t = 0; t < KPL; ++t) s = fmaf(a[t], b[t], s);
  return s;
}

// out = gram * v. The gram is symmetric, so row j read along the lanes is column j:
// lanes read consecutive floats (coalesced), v_j comes from its owner by shuffle.
template <int KPL>
__device__ __forceinline__ void gram_matvec(const float* __restrict__ gram, const float (&v)[KPL], int lane,
                                            float (&out)[KPL]) {
  constexpr int ld = 32 * KPL;
#pragma unroll
  for (int t = 0; t < KPL; ++t) out[t] = 0.0f;
#pragma unroll
  for (int tt = 0; tt < KPL; ++tt) {
#pragma unroll 8
    for (int src = 0; src < 32; ++src) {
      const float vj = __shfl_sync(kFullMask, v[tt], src);
      const float* row = gram + (tt * 32 + src) * ld + lane;
#pragma unroll
      for (int t = 0; t < KPL; ++t) out[t] = fmaf(__ldg(row + 32 * t), vj, out[t]);
    }
  }
}

// Visits every stored entry (i, c) of a row with d = y_i . v, calling
// visit(c, d, y_i) on all lanes. Indices and confidences are loaded 32 at a time
// (coalesced) and broadcast by shuffle; four gathers are kept in flight at once.
// With chunk_stride > 32 only every (chunk_stride / 32)-th chunk of 32 entries from
// `begin` is visited: the warps of a block split a long row that way.
template <int KPL, class Visitor>
__device__ __forceinline__ void visit_row(const std::int32_t* __restrict__ indices, const float* __restrict__ conf,
                                          std::int64_t begin, std::int64_t end, const float* __restrict__ other,
                                          int k, int lane, const float (&v)[KPL], Visitor& visit,
                                          std::int64_t chunk_stride = 32) {
  for (std::int64_t base = begin; base < end; base += chunk_stride) {
    const int n = static_cast<int>(end - base < 32 ? end - base : 32);
    const std::int32_t my_item = lane < n ? __ldg(indices + base + lane) : 0;
    const float my_conf = lane < n ? __ldg(conf + base + lane) : 0.0f;
    int q = 0;
    for (; q + 4 <= n; q += 4) {
      float y[4][KPL];
      float d[4];
      float c[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const std::int32_t item = __shfl_sync(kFullMask, my_item, q + u);
        c[u] = __shfl_sync(kFullMask, my_conf, q + u);
        load_row<KPL>(other + static_cast<std::int64_t>(item) * k, k, lane, y[u]);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) d[u] = dot_lane<KPL>(y[u], v);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
#pragma unroll
        for (int u = 0; u < 4; ++u) d[u] += __shfl_xor_sync(kFullMask, d[u], off);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) visit(c[u], d[u], y[u]);
    }
    for (; q < n; ++q) {
      float y[KPL];
      const std::int32_t item = __shfl_sync(kFullMask, my_item, q);
      const float c = __shfl_sync(kFullMask, my_conf, q);
      load_row<KPL>(other + static_cast<std::int64_t>(item) * k, k, lane, y);
      const float d = warp_sum(dot_lane<KPL>(y, v));
      visit(c, d, y);
    }
  }
}

// r += (c - (c - 1) d) y: builds b - (C - I) Y x, the data part of the residual.
template <int KPL>
struct ResidualVisitor {
  float (&r)[KPL];
  __device__ __forceinline__ void operator()(float c, float d, const float (&y)[KPL]) {
    const float w = c - (c - 1.0f) * d;
#pragma unroll
    for (int t = 0; t < KPL; ++t) r[t] = fmaf(w, y[t], r[t]);
  }
};

// ap += (c - 1) d y: the sparse part of A p.
template <int KPL>
struct ProductVisitor {
  float (&ap)[KPL];
  __device__ __forceinline__ void operator()(float c, float d, const float (&y)[KPL]) {
    const float w = (c - 1.0f) * d;
#pragma unroll
    for (int t = 0; t < KPL; ++t) ap[t] = fmaf(w, y[t], ap[t]);
  }
};

struct LossVisitor {
  double loss = 0.0;
  double confidence = 0.0;
  template <int KPL>
  __device__ __forceinline__ void operator()(float c, float d, const float (&)[KPL]) {
    loss += static_cast<double>(c) - 2.0 * c * d + (static_cast<double>(c) - 1.0) * d * d;
    confidence += c;
  }
};

// One CG step once A p is known: x += alpha p, r -= alpha A p, p = r + beta p, with
// alpha = r.r / p.Ap and beta = r'.r' / r.r. Returns false where CG stops: p.Ap not
// positive (or not finite), or the new residual under the floor (x is updated then).
template <int KPL>
__device__ __forceinline__ bool cg_advance(const float (&ap)[KPL], float (&x)[KPL], float (&r)[KPL], float (&p)[KPL],
                                           float& rsold) {
  const float pap = warp_sum(dot_lane<KPL>(p, ap));
  if (!(pap > 0.0f) || !isfinite(pap)) return false;
  const float alpha = rsold / pap;
#pragma unroll
  for (int t = 0; t < KPL; ++t) {
    x[t] = fmaf(alpha, p[t], x[t]);
    r[t] = fmaf(-alpha, ap[t], r[t]);
  }
  const float rsnew = warp_sum(dot_lane<KPL>(r, r));
  if (rsnew < kResidualFloor) return false;
  const float beta = rsnew / rsold;
#pragma unroll
  for (int t = 0; t < KPL; ++t) p[t] = fmaf(beta, p[t], r[t]);
  rsold = rsnew;
  return true;
}

// Writes x to xr (k floats) when every component is finite; a row that diverged keeps its
// old factors. Every lane of the warp must call it; only a `writer` warp stores.
template <int KPL>
__device__ __forceinline__ void store_if_finite(const float (&x)[KPL], float* xr, int k, int lane, bool writer) {
  bool finite = true;
#pragma unroll
  for (int t = 0; t < KPL; ++t) finite = finite && isfinite(x[t]);
  if (__all_sync(kFullMask, finite) && writer) {
#pragma unroll
    for (int t = 0; t < KPL; ++t) {
      const int c = lane + 32 * t;
      if (c < k) xr[c] = x[t];
    }
  }
}

// One warp per row (warps stride over rows). All reductions are butterflies, so every
// lane holds the same scalars and the control flow stays uniform across the warp.
// Rows with more than long_row_entries entries are left to als_cg_long_kernel.
template <int KPL>
__global__ void __launch_bounds__(kThreads) als_cg_kernel(DeviceCsrView m, const float* __restrict__ other,
                                                          const float* __restrict__ gram, float* __restrict__ factors,
                                                          int k, int cg_steps, std::int64_t long_row_entries) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kWarpsPerBlock;
  for (std::int64_t row = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32; row < m.rows;
       row += warps) {
    if (m.indptr[row + 1] - m.indptr[row] > long_row_entries) continue;
    float* xr = factors + row * k;
    float x[KPL], r[KPL], p[KPL], ap[KPL];
#pragma unroll
    for (int t = 0; t < KPL; ++t) {
      const int c = lane + 32 * t;
      x[t] = c < k ? xr[c] : 0.0f;
    }
    const std::int64_t begin = m.indptr[row], end = m.indptr[row + 1];

    // r = b - A x = sum_i c y_i - gram x - sum_i (c - 1)(y_i . x) y_i
    gram_matvec<KPL>(gram, x, lane, ap);
#pragma unroll
    for (int t = 0; t < KPL; ++t) r[t] = -ap[t];
    ResidualVisitor<KPL> residual{r};
    visit_row<KPL>(m.indices, m.values, begin, end, other, k, lane, x, residual);
#pragma unroll
    for (int t = 0; t < KPL; ++t) p[t] = r[t];
    float rsold = warp_sum(dot_lane<KPL>(r, r));
    if (!(rsold >= kResidualFloor)) continue;  // converged (or NaN residual): keep x

    for (int step = 0; step < cg_steps; ++step) {
      gram_matvec<KPL>(gram, p, lane, ap);
      ProductVisitor<KPL> product{ap};
      visit_row<KPL>(m.indices, m.values, begin, end, other, k, lane, p, product);
      if (!cg_advance<KPL>(ap, x, r, p, rsold)) break;
    }

    store_if_finite<KPL>(x, xr, k, lane, /*writer=*/true);
  }
}

// Sums v over the block's warps: every warp ends with the same totals (same order of
// additions in each), so scalars computed from them agree bit for bit across warps.
template <int KPL>
__device__ __forceinline__ void block_allreduce(float (&v)[KPL], float* part, int lane, int warp) {
#pragma unroll
  for (int t = 0; t < KPL; ++t) part[(warp * KPL + t) * 32 + lane] = v[t];
  __syncthreads();
#pragma unroll
  for (int t = 0; t < KPL; ++t) {
    float s = 0.0f;
    for (int w = 0; w < kWarpsPerBlock; ++w) s += part[(w * KPL + t) * 32 + lane];
    v[t] = s;
  }
  __syncthreads();  // part is reused by the next reduction
}

// The same CG for rows longer than long_row_entries (the catalogue's popular items on the
// item side): one block per row, its warps taking the row's 32-entry chunks round robin,
// their partial sums met in shared memory. Every warp then holds the same x, r, p and
// computes the same scalars, so every branch is taken by the whole block and every
// __syncthreads is reached by all threads. With one warp per row, the most popular item
// (a row as long as the user count) set the whole half-step's time.
template <int KPL>
__global__ void __launch_bounds__(kThreads) als_cg_long_kernel(DeviceCsrView m, const std::int32_t* __restrict__ rows,
                                                               std::int32_t n_rows, const float* __restrict__ other,
                                                               const float* __restrict__ gram,
                                                               float* __restrict__ factors, int k, int cg_steps) {
  __shared__ float part[kWarpsPerBlock * KPL * 32];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x / 32;
  constexpr std::int64_t kChunkStride = 32 * kWarpsPerBlock;
  for (std::int32_t i = blockIdx.x; i < n_rows; i += gridDim.x) {
    const std::int64_t row = rows[i];
    float* xr = factors + row * k;
    float x[KPL], r[KPL], p[KPL], ap[KPL], acc[KPL];
#pragma unroll
    for (int t = 0; t < KPL; ++t) {
      const int c = lane + 32 * t;
      x[t] = c < k ? xr[c] : 0.0f;
      acc[t] = 0.0f;
    }
    const std::int64_t first = m.indptr[row] + 32 * warp, end = m.indptr[row + 1];

    // r = b - A x = sum_i c y_i - sum_i (c - 1)(y_i . x) y_i - gram x
    ResidualVisitor<KPL> residual{acc};
    visit_row<KPL>(m.indices, m.values, first, end, other, k, lane, x, residual, kChunkStride);
    block_allreduce<KPL>(acc, part, lane, warp);
    gram_matvec<KPL>(gram, x, lane, ap);
#pragma unroll
    for (int t = 0; t < KPL; ++t) {
      r[t] = acc[t] - ap[t];
      p[t] = r[t];
    }
    float rsold = warp_sum(dot_lane<KPL>(r, r));
    if (!(rsold >= kResidualFloor)) continue;  // converged (or NaN residual): keep x

    for (int step = 0; step < cg_steps; ++step) {
#pragma unroll
      for (int t = 0; t < KPL; ++t) acc[t] = 0.0f;
      ProductVisitor<KPL> product{acc};
      visit_row<KPL>(m.indices, m.values, first, end, other, k, lane, p, product, kChunkStride);
      block_allreduce<KPL>(acc, part, lane, warp);
      gram_matvec<KPL>(gram, p, lane, ap);
#pragma unroll
      for (int t = 0; t < KPL; ++t) ap[t] += acc[t];
      if (!cg_advance<KPL>(ap, x, r, p, rsold)) break;
    }

    store_if_finite<KPL>(x, xr, k, lane, /*writer=*/warp == 0);  // one copy is enough
  }
}

struct RowLongerThan {
  const std::int64_t* indptr;
  std::int64_t entries;
  __device__ bool operator()(std::int32_t row) const { return indptr[row + 1] - indptr[row] > entries; }
};

// Exact solve, one block (16 x 16 threads) per row. Thread (ty, tx) accumulates the
// entries (ty + 16 a, tx + 16 b) of sum_i (c - 1) y_i y_i^T in registers over tiles of
// 32 gathered item vectors; the system then goes to shared memory, is factorised in place
// (right-looking, a column per step) and solved by warp 0.
constexpr int kCholTile = 32;

template <int M>
struct CholLayout {
  static constexpr int kp = 16 * M;      // padded system size
  static constexpr int lda = kp + 1;     // odd stride: column walks hit distinct banks
  static constexpr int a_floats = kp * lda;
  static constexpr int y_floats = kCholTile * kp;
  static constexpr std::size_t bytes =
      sizeof(float) * (a_floats + y_floats + kp + 2 * kCholTile) + sizeof(std::int32_t) * kCholTile;
};

template <int M>
__global__ void __launch_bounds__(kThreads) als_cholesky_kernel(DeviceCsrView m, const float* __restrict__ other,
                                                                const float* __restrict__ gram,
                                                                float* __restrict__ factors, int k) {
  using L = CholLayout<M>;
  constexpr int kp = L::kp;
  constexpr int lda = L::lda;
  const int ld = (k + 31) / 32 * 32;  // gram_stride(k), spelled out for device code
  extern __shared__ float smem[];
  float* A = smem;
  float* ys = A + L::a_floats;
  float* bvec = ys + L::y_floats;
  float* wts = bvec + kp;
  float* cs = wts + kCholTile;
  std::int32_t* items = reinterpret_cast<std::int32_t*>(cs + kCholTile);

  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int lane = tid & 31, warp = tid / 32;

  for (std::int64_t row = blockIdx.x; row < m.rows; row += gridDim.x) {
    const std::int64_t begin = m.indptr[row], end = m.indptr[row + 1];
    float acc[M][M];
#pragma unroll
    for (int a = 0; a < M; ++a)
#pragma unroll
      for (int b = 0; b < M; ++b) acc[a][b] = 0.0f;
    float bacc = 0.0f;

    for (std::int64_t base = begin; base < end; base += kCholTile) {
      const int n = static_cast<int>(end - base < kCholTile ? end - base : kCholTile);
      if (tid < kCholTile) {
        const bool live = tid < n;
        const float c = live ? m.values[base + tid] : 0.0f;
        items[tid] = live ? m.indices[base + tid] : 0;
        cs[tid] = c;
        wts[tid] = live ? fmaxf(c - 1.0f, 0.0f) : 0.0f;  // as the CPU's exact solver
      }
      __syncthreads();
      for (int i = tid; i < kCholTile * kp; i += kThreads) {
        const int e = i / kp, col = i % kp;
        ys[i] = (e < n && col < k) ? __ldg(other + static_cast<std::int64_t>(items[e]) * k + col) : 0.0f;
      }
      __syncthreads();
      if (tid < kp) {
        for (int e = 0; e < n; ++e) bacc = fmaf(cs[e], ys[e * kp + tid], bacc);
      }
      for (int e = 0; e < n; ++e) {
        const float w = wts[e];
        float ya[M], yb[M];
#pragma unroll
        for (int a = 0; a < M; ++a) ya[a] = w * ys[e * kp + ty + 16 * a];
#pragma unroll
        for (int b = 0; b < M; ++b) yb[b] = ys[e * kp + tx + 16 * b];
#pragma unroll
        for (int a = 0; a < M; ++a)
#pragma unroll
          for (int b = 0; b < M; ++b) acc[a][b] = fmaf(ya[a], yb[b], acc[a][b]);
      }
      __syncthreads();  // ys/items are overwritten by the next tile
    }

#pragma unroll
    for (int a = 0; a < M; ++a) {
#pragma unroll
      for (int b = 0; b < M; ++b) {
        const int r = ty + 16 * a, c = tx + 16 * b;
        // Padding rows/cols get the identity, so the padded system stays positive definite
        // and its padded unknowns come out zero.
        const float g = (r < k && c < k) ? gram[r * ld + c] : (r == c ? 1.0f : 0.0f);
        A[r * lda + c] = g + acc[a][b];
      }
    }
    if (tid < kp) bvec[tid] = bacc;
    __syncthreads();

    bool ok = true;
    for (int j = 0; j < kp; ++j) {
      const float d = A[j * lda + j];
      __syncthreads();  // everyone has read the pivot before it is overwritten
      if (!(d > 0.0f) || !isfinite(d)) {  // same value on every thread: a uniform exit
        ok = false;
        break;
      }
      const float s = sqrtf(d);
      for (int i = j + tid; i < kp; i += kThreads) A[i * lda + j] = (i == j) ? s : A[i * lda + j] / s;
      __syncthreads();
      for (int i = j + 1 + ty; i < kp; i += 16) {
        const float lij = A[i * lda + j];
        for (int l = j + 1 + tx; l <= i; l += 16) A[i * lda + l] = fmaf(-lij, A[l * lda + j], A[i * lda + l]);
      }
      __syncthreads();
    }

    if (ok && warp == 0) {
      // Forward: L z = b (z overwrites bvec).
      for (int j = 0; j < kp; ++j) {
        const float zj = bvec[j] / A[j * lda + j];
        __syncwarp();
        for (int i = j + 1 + lane; i < kp; i += 32) bvec[i] = fmaf(-A[i * lda + j], zj, bvec[i]);
        if (lane == 0) bvec[j] = zj;
        __syncwarp();
      }
      // Backward: L^T x = z.
      for (int j = kp - 1; j >= 0; --j) {
        const float xj = bvec[j] / A[j * lda + j];
        __syncwarp();
        for (int i = lane; i < j; i += 32) bvec[i] = fmaf(-A[j * lda + i], xj, bvec[i]);
        if (lane == 0) bvec[j] = xj;
        __syncwarp();
      }
      bool finite = true;
      for (int c = lane; c < k; c += 32) finite = finite && isfinite(bvec[c]);
      if (__all_sync(kFullMask, finite)) {
        for (int c = lane; c < k; c += 32) factors[row * k + c] = bvec[c];
      }
    }
    __syncthreads();  // shared memory is reused by the next row
  }
}

template <int KPL>
__global__ void __launch_bounds__(kThreads) als_loss_kernel(DeviceCsrView m, const float* __restrict__ x_all,
                                                            const float* __restrict__ other,
                                                            const float* __restrict__ gram, int k,
                                                            double* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kWarpsPerBlock;
  LossVisitor visit;
  double quad = 0.0;
  for (std::int64_t row = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32; row < m.rows;
       row += warps) {
    float x[KPL], gx[KPL];
    load_row<KPL>(x_all + row * k, k, lane, x);
    gram_matvec<KPL>(gram, x, lane, gx);
    quad += warp_sum(dot_lane<KPL>(x, gx));
    visit_row<KPL>(m.indices, m.values, m.indptr[row], m.indptr[row + 1], other, k, lane, x, visit);
  }
  if (lane == 0) {
    atomicAdd(out, quad + visit.loss);
    atomicAdd(out + 1, visit.confidence);
  }
}

unsigned warp_grid(GpuResources& res, std::int64_t rows) {
  const std::int64_t cap = static_cast<std::int64_t>(res.multiprocessors()) * 16;
  const std::int64_t want = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return static_cast<unsigned>(want < 1 ? 1 : (want < cap ? want : cap));
}

template <template <int> class Launch, class... Args>
void dispatch_kpl(int k, Args&&... args) {
  switch ((k + 31) / 32) {
    case 1: Launch<1>::run(args...); break;
    case 2: Launch<2>::run(args...); break;
    case 3: Launch<3>::run(args...); break;
    case 4: Launch<4>::run(args...); break;
    case 5: Launch<5>::run(args...); break;
    case 6: Launch<6>::run(args...); break;
    case 7: Launch<7>::run(args...); break;
    case 8: Launch<8>::run(args...); break;
    default: FRESHREC_ASSERT(k >= 1 && k <= kCudaMaxFactors);
  }
}

template <int KPL>
struct LaunchCg {
  static void run(GpuResources& res, DeviceCsrView m, const float* other, const float* gram, float* factors, int k,
                  int steps, std::int64_t long_row_entries, const std::int32_t* long_rows, std::int32_t n_long) {
    als_cg_kernel<KPL><<<warp_grid(res, m.rows), kThreads, 0, res.stream()>>>(m, other, gram, factors, k, steps,
                                                                              long_row_entries);
    FRESHREC_CHECK_LAUNCH(res.stream());
    if (n_long == 0) return;
    const std::int64_t cap = static_cast<std::int64_t>(res.multiprocessors()) * 8;
    const auto grid = static_cast<unsigned>(n_long < cap ? n_long : cap);
    als_cg_long_kernel<KPL><<<grid, kThreads, 0, res.stream()>>>(m, long_rows, n_long, other, gram, factors, k,
                                                                 steps);
    FRESHREC_CHECK_LAUNCH(res.stream());
  }
};

template <int KPL>
struct LaunchLoss {
  static void run(GpuResources& res, DeviceCsrView m, const float* x, const float* y, const float* gram, int k,
                  double* out) {
    als_loss_kernel<KPL><<<warp_grid(res, m.rows), kThreads, 0, res.stream()>>>(m, x, y, gram, k, out);
    FRESHREC_CHECK_LAUNCH(res.stream());
  }
};

template <int M>
void launch_cholesky(GpuResources& res, DeviceCsrView m, const float* other, const float* gram, float* factors,
                     int k) {
  const std::size_t bytes = CholLayout<M>::bytes;
  FRESHREC_ASSERT(bytes <= res.max_shared_per_block_optin());
  if (bytes > 48u * 1024u) {
    CUDA_CHECK(cudaFuncSetAttribute(als_cholesky_kernel<M>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(bytes)));
  }
  const std::int64_t cap = static_cast<std::int64_t>(res.multiprocessors()) * 8;
  const unsigned grid = static_cast<unsigned>(m.rows < cap ? (m.rows < 1 ? 1 : m.rows) : cap);
  als_cholesky_kernel<M><<<grid, kThreads, bytes, res.stream()>>>(m, other, gram, factors, k);
  FRESHREC_CHECK_LAUNCH(res.stream());
}

struct Square {
  __host__ __device__ double operator()(float v) const { return static_cast<double>(v) * v; }
};

}  // namespace

void compute_gram(GpuResources& res, const float* factors, std::int32_t n, int k, float reg, float* gram) {
  FRESHREC_ASSERT(k >= 1 && k <= kCudaMaxFactors);
  const int ld = gram_stride(k);
  CUDA_CHECK(cudaMemsetAsync(gram, 0, sizeof(float) * ld * ld, res.stream()));
  if (n > 0) {
    // Row-major F (n x k) is column-major F^T (k x n, lda = k): gram = F^T (F^T)^T.
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(res.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, k, k, n, &one, factors, k, factors, k, &zero,
                             gram, ld));
  }
  add_diagonal_kernel<<<(k + 127) / 128, 128, 0, res.stream()>>>(gram, ld, k, reg);
  FRESHREC_CHECK_LAUNCH(res.stream());
}

CgLongRows list_cg_long_rows(GpuResources& res, DeviceCsrView m, std::int64_t threshold) {
  FRESHREC_ASSERT(threshold >= 0);
  CgLongRows out;
  out.threshold = threshold;
  if (m.rows == 0) return out;
  out.rows = DeviceBuffer<std::int32_t>(res, static_cast<std::size_t>(m.rows));
  ThrustAllocator alloc(res);
  const thrust::counting_iterator<std::int32_t> first(0);
  const thrust::device_ptr<std::int32_t> dst(out.rows.data());
  // copy_if reads its count back (it synchronises even under par_nosync).
  const auto last =
      thrust::copy_if(thrust_policy(res, alloc), first, first + m.rows, dst, RowLongerThan{m.indptr, threshold});
  out.count = static_cast<std::int32_t>(last - dst);
  return out;
}

void als_cg_update(GpuResources& res, DeviceCsrView m, const CgLongRows& long_rows, const float* other,
                   const float* gram, float* factors, int k, int cg_steps) {
  if (m.rows == 0) return;
  dispatch_kpl<LaunchCg>(k, res, m, other, gram, factors, k, cg_steps, long_rows.threshold, long_rows.rows.data(),
                         long_rows.count);
}

void als_cg_update(GpuResources& res, DeviceCsrView m, const float* other, const float* gram, float* factors, int k,
                   int cg_steps, std::int64_t long_row_entries) {
  if (m.rows == 0) return;
  const CgLongRows long_rows = list_cg_long_rows(res, m, long_row_entries);
  als_cg_update(res, m, long_rows, other, gram, factors, k, cg_steps);
}

void als_cholesky_update(GpuResources& res, DeviceCsrView m, const float* other, const float* gram, float* factors,
                         int k) {
  FRESHREC_ASSERT(k >= 1 && k <= kCudaMaxCholeskyFactors);
  if (m.rows == 0) return;
  switch ((k + 15) / 16) {
    case 1: launch_cholesky<1>(res, m, other, gram, factors, k); break;
    case 2: launch_cholesky<2>(res, m, other, gram, factors, k); break;
    case 3: launch_cholesky<3>(res, m, other, gram, factors, k); break;
    case 4: launch_cholesky<4>(res, m, other, gram, factors, k); break;
    case 5: launch_cholesky<5>(res, m, other, gram, factors, k); break;
    case 6: launch_cholesky<6>(res, m, other, gram, factors, k); break;
    case 7: launch_cholesky<7>(res, m, other, gram, factors, k); break;
    case 8: launch_cholesky<8>(res, m, other, gram, factors, k); break;
    default: FRESHREC_ASSERT(false);
  }
}

void als_loss_terms(GpuResources& res, DeviceCsrView m, const float* x, const float* y, const float* gram, int k,
                    double* out) {
  CUDA_CHECK(cudaMemsetAsync(out, 0, 2 * sizeof(double), res.stream()));
  if (m.rows == 0) return;
  dispatch_kpl<LaunchLoss>(k, res, m, x, y, gram, k, out);
}

double sum_of_squares(GpuResources& res, const float* data, std::int64_t n) {
  if (n == 0) return 0.0;
  ThrustAllocator alloc(res);
  thrust::device_ptr<const float> p(data);
  return thrust::transform_reduce(thrust_policy(res, alloc), p, p + n, Square{}, 0.0, thrust::plus<double>());
}

}  // namespace freshrec
