#pragma once
/// Every CUDA and cuBLAS call is checked, with the call's text and file:line (as ggml's
/// CUDA_CHECK and raft's RAFT_CUDA_TRY). The _NO_THROW twins are for destructors: they
/// log and carry on, since a destructor must never throw.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <cublas_api.h>
#include <cuda_runtime_api.h>

namespace freshrec {

/// A CUDA runtime or cuBLAS call failed (device lost, out of memory, bad launch).
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace cuda_detail {

const char* cublas_status_name(cublasStatus_t status) noexcept;

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);
void log_cuda_error(cudaError_t err, const char* call, const char* file, int line) noexcept;
void log_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) noexcept;

}  // namespace cuda_detail
}  // namespace freshrec

/// Throws freshrec::CudaError naming the call and file:line when `call` fails.
#define CUDA_CHECK(call)                                                                 \
  do {                                                                                   \
    const cudaError_t freshrec_err_ = (call);                                            \
    if (freshrec_err_ != cudaSuccess)                                                    \
      ::freshrec::cuda_detail::throw_cuda_error(freshrec_err_, #call, __FILE__, __LINE__); \
  } while (0)

/// Logs to stderr instead of throwing (for destructors and other noexcept paths).
#define CUDA_CHECK_NO_THROW(call)                                                      \
  do {                                                                                 \
    const cudaError_t freshrec_err_ = (call);                                          \
    if (freshrec_err_ != cudaSuccess)                                                  \
      ::freshrec::cuda_detail::log_cuda_error(freshrec_err_, #call, __FILE__, __LINE__); \
  } while (0)

/// Throws freshrec::CudaError naming the cuBLAS call and file:line when it fails.
#define CUBLAS_CHECK(call)                                                                      \
  do {                                                                                          \
    const cublasStatus_t freshrec_status_ = (call);                                             \
    if (freshrec_status_ != CUBLAS_STATUS_SUCCESS)                                              \
      ::freshrec::cuda_detail::throw_cublas_error(freshrec_status_, #call, __FILE__, __LINE__); \
  } while (0)

/// cuBLAS twin of CUDA_CHECK_NO_THROW.
#define CUBLAS_CHECK_NO_THROW(call)                                                           \
  do {                                                                                        \
    const cublasStatus_t freshrec_status_ = (call);                                           \
    if (freshrec_status_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::freshrec::cuda_detail::log_cublas_error(freshrec_status_, #call, __FILE__, __LINE__); \
  } while (0)

/// After every kernel launch. Release: peeks at the launch error (cheap, asynchronous).
/// Debug: also synchronises `stream`, so a fault is reported at the launch that caused it.
#ifdef NDEBUG
#define FRESHREC_CHECK_LAUNCH(stream) CUDA_CHECK(cudaPeekAtLastError())
#else
#define FRESHREC_CHECK_LAUNCH(stream)     \
  do {                                    \
    CUDA_CHECK(cudaPeekAtLastError());    \
    CUDA_CHECK(cudaStreamSynchronize(stream)); \
  } while (0)
#endif
