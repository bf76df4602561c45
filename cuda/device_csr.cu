#include "cuda/device_csr.hpp"

#include <thrust/device_ptr.h>
#include <thrust/iterator/zip_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sort.h>
#include <thrust/transform.h>

#include "cuda/nvtx.hpp"
#include "cuda/thrust_policy.cuh"

namespace freshrec {
namespace {

constexpr int kThreads = 256;

// (row, col) packed so one radix sort orders rows and, within a row, columns.
__global__ void pack_keys_kernel(const std::int32_t* __restrict__ row, const std::int32_t* __restrict__ col,
                                 std::int64_t n, std::uint64_t* __restrict__ keys) {
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    keys[e] = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(row[e])) << 32) |
              static_cast<std::uint32_t>(col[e]);
  }
}

// Unpacks the column and counts each row (counts[r + 1]), ready for the scan.
__global__ void unpack_count_kernel(const std::uint64_t* __restrict__ keys, std::int64_t n,
                                    std::int32_t* __restrict__ col, unsigned long long* __restrict__ counts) {
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::uint64_t k = keys[e];
    col[e] = static_cast<std::int32_t>(k & 0xffffffffu);
    atomicAdd(counts + (k >> 32) + 1, 1ULL);
  }
}

// A warp per row writes the row's index over its entries (coalesced, balanced by rows).
__global__ void expand_rows_kernel(const std::int64_t* __restrict__ indptr, std::int32_t rows,
                                   std::int32_t* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  for (std::int64_t r = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32; r < rows;
       r += warps) {
    const std::int64_t end = indptr[r + 1];
    for (std::int64_t e = indptr[r] + lane; e < end; e += 32) out[e] = static_cast<std::int32_t>(r);
  }
}

unsigned grid_for(GpuResources& res, std::int64_t work_items) {
  const std::int64_t cap = static_cast<std::int64_t>(res.multiprocessors()) * 8;
  const std::int64_t want = (work_items + kThreads - 1) / kThreads;
  return static_cast<unsigned>(want < 1 ? 1 : (want < cap ? want : cap));
}

}  // namespace

std::size_t build_device_csr_bytes(std::int32_t rows, std::int64_t nnz) noexcept {
  const std::size_t n = static_cast<std::size_t>(nnz);
  // keys + values, the radix sort's double buffers (+ slack for its scratch), the reduced
  // keys + values, the counts and the result (indptr, indices, values).
  return n * (8 + 4) + n * (8 + 4) + (n * 12) / 8 + (32u << 20) + n * (8 + 4) +
         (static_cast<std::size_t>(rows) + 1) * 16 + n * (4 + 4);
}

void expand_csr_rows(GpuResources& res, const std::int64_t* d_indptr, std::int32_t rows, std::int32_t* d_rows) {
  if (rows == 0) return;
  expand_rows_kernel<<<grid_for(res, static_cast<std::int64_t>(rows) * 32), kThreads, 0, res.stream()>>>(
      d_indptr, rows, d_rows);
  FRESHREC_CHECK_LAUNCH(res.stream());
}

DeviceCsr build_device_csr(GpuResources& res, std::int32_t rows, std::int32_t cols, const std::int32_t* d_row,
                           const std::int32_t* d_col, const float* d_val, std::int64_t nnz) {
  NvtxRange range("cuda.build_csr");
  ThrustAllocator alloc(res);
  auto policy = thrust_policy(res, alloc);
  DeviceCsr out;
  out.rows = rows;
  out.cols = cols;
  out.indptr = DeviceBuffer<std::int64_t>(res, static_cast<std::size_t>(rows) + 1);
  if (nnz == 0) {
    out.indptr.zero();
    return out;
  }

  DeviceBuffer<std::uint64_t> keys(res, static_cast<std::size_t>(nnz));
  DeviceBuffer<float> vals(res, static_cast<std::size_t>(nnz));
  pack_keys_kernel<<<grid_for(res, nnz), kThreads, 0, res.stream()>>>(d_row, d_col, nnz, keys.data());
  FRESHREC_CHECK_LAUNCH(res.stream());
  CUDA_CHECK(cudaMemcpyAsync(vals.data(), d_val, vals.bytes(), cudaMemcpyDeviceToDevice, res.stream()));

  thrust::device_ptr<std::uint64_t> k0(keys.data());
  thrust::device_ptr<float> v0(vals.data());
  thrust::sort_by_key(policy, k0, k0 + nnz, v0);

  DeviceBuffer<std::uint64_t> ukeys(res, static_cast<std::size_t>(nnz));
  DeviceBuffer<float> uvals(res, static_cast<std::size_t>(nnz));
  thrust::device_ptr<std::uint64_t> k1(ukeys.data());
  thrust::device_ptr<float> v1(uvals.data());
  // Repeated (row, col) pairs are summed, as the CPU's DuplicatePolicy::kSum.
  const auto ends = thrust::reduce_by_key(policy, k0, k0 + nnz, v0, k1, v1);
  const std::int64_t unique = ends.first - k1;
  keys.reset();
  vals.reset();

  out.nnz = unique;
  out.indices = DeviceBuffer<std::int32_t>(res, static_cast<std::size_t>(unique));
  out.values = DeviceBuffer<float>(res, static_cast<std::size_t>(unique));
  DeviceBuffer<unsigned long long> counts(res, static_cast<std::size_t>(rows) + 1);
  counts.zero();
  unpack_count_kernel<<<grid_for(res, unique), kThreads, 0, res.stream()>>>(ukeys.data(), unique,
                                                                             out.indices.data(), counts.data());
  FRESHREC_CHECK_LAUNCH(res.stream());
  CUDA_CHECK(cudaMemcpyAsync(out.values.data(), uvals.data(), out.values.bytes(), cudaMemcpyDeviceToDevice,
                             res.stream()));
  thrust::device_ptr<unsigned long long> c0(counts.data());
  thrust::device_ptr<std::int64_t> p0(out.indptr.data());
  thrust::inclusive_scan(policy, c0, c0 + rows + 1, p0);
  // The temporaries are freed on return; cudaFree waits for the queued work using them.
  return out;
}

}  // namespace freshrec
