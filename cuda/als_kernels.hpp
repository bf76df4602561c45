#pragma once
/// Implicit ALS on the device (Hu, Koren, Volinsky 2008, solved as `implicit` does):
/// the Gram matrix with cuBLAS, a warp-cooperative conjugate-gradient solve per row that
/// never forms Y^T C_u Y, an exact batched Cholesky solve (k <= 128), and the loss.
/// Host-callable launchers; every pointer is device memory, every call runs on
/// res.stream(). Factor matrices are row-major n x k (row r = factors of row r).
#include <cstdint>

#include "cuda/device_csr.hpp"

namespace freshrec {

/// Largest factor count the CUDA kernels take (a warp holds k/32 floats a lane).
constexpr int kCudaMaxFactors = 256;
/// Largest factor count of the exact Cholesky kernel (the k x k system sits in shared memory).
constexpr int kCudaMaxCholeskyFactors = 128;

/// Rows longer than this get a block instead of a warp in the CG solve: a warp streams a
/// row's entries one 4-entry group at a time, so a row of the user count's length (the
/// most popular item) would take as long as the whole rest of the half-step.
constexpr std::int64_t kCgLongRowEntries = 4096;

/// Row stride (floats) of the Gram matrix for k factors: k rounded up to 32.
constexpr int gram_stride(int k) noexcept { return (k + 31) / 32 * 32; }

/// gram (ld x ld, ld = gram_stride(k)) = F^T F + reg I for F = `factors` (n x k), with
/// zeros in the padding. FP32 cuBLAS (no TF32).
void compute_gram(GpuResources& res, const float* factors, std::int32_t n, int k, float reg, float* gram);

/// One CG half-step: for every row r of `m` (confidences c as values, preference 1 where
/// stored) improves factors[r] toward the solution of
///   (gram + sum_i (c_ri - 1) y_i y_i^T) x = sum_i c_ri y_i,   y_i = other[i],
/// starting from factors[r] (warm start) for `cg_steps` steps (stops early once the
/// residual's squared norm drops under 1e-20). A row whose result is not finite is left
/// as it was. `gram` must already include the regularisation.
/// A warp solves each row; a row with more than `long_row_entries` entries gets a whole
/// block, its warps splitting the entries (tests pass 0 to send every row that way). This
/// form lists those rows first (4 bytes per row of device memory during the call, one
/// count read back); the overload below takes a list made once.
void als_cg_update(GpuResources& res, DeviceCsrView m, const float* other, const float* gram, float* factors, int k,
                   int cg_steps, std::int64_t long_row_entries = kCgLongRowEntries);

/// The rows of a matrix longer than `threshold` entries, listed on the device: they depend
/// only on the matrix, so a trainer lists them once instead of at every half-step.
/// Device memory: 4 bytes per row of the matrix.
struct CgLongRows {
  std::int64_t threshold = kCgLongRowEntries;
  DeviceBuffer<std::int32_t> rows;  ///< device, `count` row indices (capacity: the matrix's rows)
  std::int32_t count = 0;
};
CgLongRows list_cg_long_rows(GpuResources& res, DeviceCsrView m, std::int64_t threshold = kCgLongRowEntries);

/// als_cg_update with the long rows of `m` listed already (by list_cg_long_rows on `m`).
void als_cg_update(GpuResources& res, DeviceCsrView m, const CgLongRows& long_rows, const float* other,
                   const float* gram, float* factors, int k, int cg_steps);

/// The same system solved exactly: builds it per row in shared memory and factorises it
/// with a block-wide Cholesky (k <= kCudaMaxCholeskyFactors). A row whose system is not
/// positive definite, or whose result is not finite, is left as it was.
void als_cholesky_update(GpuResources& res, DeviceCsrView m, const float* other, const float* gram, float* factors,
                         int k);

/// Sums over the rows of `m` (users x items):  x_u^T gram x_u + sum_i (c - 2 c d + (c - 1) d^2),
/// d = x_u . y_i, into out[0], and the total confidence into out[1] (double, device,
/// overwritten). With gram = Y^T Y + reg I this is the numerator of implicit's loss
/// except reg * |Y|^2.
void als_loss_terms(GpuResources& res, DeviceCsrView m, const float* x, const float* y, const float* gram, int k,
                    double* out);

/// Sum of squares of `n` floats (device) accumulated in double; returns to the host.
double sum_of_squares(GpuResources& res, const float* data, std::int64_t n);

}  // namespace freshrec
