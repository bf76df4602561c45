#include "cuda/check.hpp"

namespace freshrec {
namespace cuda_detail {

const char* cublas_status_name(cublasStatus_t status) noexcept {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_<unknown>";
  }
}

static std::string cuda_message(cudaError_t err, const char* call, const char* file, int line) {
  return std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") in `" + call +
         "` at " + file + ":" + std::to_string(line);
}

static std::string cublas_message(cublasStatus_t status, const char* call, const char* file, int line) {
  return std::string("cuBLAS error ") + cublas_status_name(status) + " in `" + call + "` at " + file + ":" +
         std::to_string(line);
}

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  throw CudaError(cuda_message(err, call, file, line));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw CudaError(cublas_message(status, call, file, line));
}

void log_cuda_error(cudaError_t err, const char* call, const char* file, int line) noexcept {
  std::fprintf(stderr, "freshrec: %s:%d: CUDA error %s in `%s` (ignored: no-throw path)\n", file, line,
               cudaGetErrorName(err), call);
}

void log_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) noexcept {
  std::fprintf(stderr, "freshrec: %s:%d: cuBLAS error %s in `%s` (ignored: no-throw path)\n", file, line,
               cublas_status_name(status), call);
}

}  // namespace cuda_detail
}  // namespace freshrec
