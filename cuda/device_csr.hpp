#pragma once
/// Sparse matrices in device memory, and their construction on the GPU with Thrust from
/// COO triples (sort by key, reduce duplicates, scan the row counts).
#include <cstdint>

#include "cuda/device_buffer.hpp"

namespace freshrec {

/// Non-owning view of a device CSR matrix, passed by value to kernels.
struct DeviceCsrView {
  std::int32_t rows = 0;
  std::int32_t cols = 0;
  std::int64_t nnz = 0;
  const std::int64_t* indptr = nullptr;  ///< device, rows + 1
  const std::int32_t* indices = nullptr;  ///< device, nnz, sorted within a row
  const float* values = nullptr;          ///< device, nnz
};

/// Owning device CSR (float values, sorted unique columns per row).
struct DeviceCsr {
  std::int32_t rows = 0;
  std::int32_t cols = 0;
  std::int64_t nnz = 0;
  DeviceBuffer<std::int64_t> indptr;
  DeviceBuffer<std::int32_t> indices;
  DeviceBuffer<float> values;

  DeviceCsrView view() const noexcept { return {rows, cols, nnz, indptr.data(), indices.data(), values.data()}; }
};

/// Builds a rows x cols CSR on the device from `nnz` COO triples in device memory (any
/// order; duplicate (row, col) pairs are summed). Inputs are left untouched. Entries must
/// lie in range (the host side validated them). Runs on res.stream(); returns once queued
/// except for the one count Thrust must read back.
DeviceCsr build_device_csr(GpuResources& res, std::int32_t rows, std::int32_t cols, const std::int32_t* d_row,
                           const std::int32_t* d_col, const float* d_val, std::int64_t nnz);

/// Writes, for each stored entry of the CSR with row pointers `d_indptr` (device, rows+1),
/// its row index into `d_rows` (device, nnz): CSR -> COO rows.
void expand_csr_rows(GpuResources& res, const std::int64_t* d_indptr, std::int32_t rows, std::int32_t* d_rows);

/// Device bytes build_device_csr needs at its peak for `nnz` entries and `rows` rows,
/// beyond its inputs (result included); used by the up-front memory plan.
std::size_t build_device_csr_bytes(std::int32_t rows, std::int64_t nnz) noexcept;

}  // namespace freshrec
