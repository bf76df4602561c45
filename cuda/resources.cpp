#include "cuda/resources.hpp"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "cuda/check.hpp"

namespace freshrec {

struct GpuResources::Impl {
  int device = 0;
  std::string name;
  int sms = 0;
  std::size_t smem_optin = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  std::atomic<std::size_t> in_use{0};
  std::atomic<std::size_t> peak{0};

  ~Impl() {
    if (cublas != nullptr) CUBLAS_CHECK_NO_THROW(cublasDestroy(cublas));
    if (stream != nullptr) {
      CUDA_CHECK_NO_THROW(cudaStreamSynchronize(stream));
      CUDA_CHECK_NO_THROW(cudaStreamDestroy(stream));
    }
  }
};

GpuResources::GpuResources(int device) : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  impl_->name = prop.name;
  impl_->sms = prop.multiProcessorCount;
  impl_->smem_optin = prop.sharedMemPerBlockOptin;
  // Non-blocking: never serialises with the legacy default stream.
  CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&impl_->cublas));
  CUBLAS_CHECK(cublasSetStream(impl_->cublas, impl_->stream));
  // Plain FP32 (no TF32) so the Gram matrix matches the CPU reference to float rounding.
  CUBLAS_CHECK(cublasSetMathMode(impl_->cublas, CUBLAS_DEFAULT_MATH));
}

GpuResources::~GpuResources() = default;

int GpuResources::device() const noexcept { return impl_->device; }
const std::string& GpuResources::device_name() const noexcept { return impl_->name; }
int GpuResources::multiprocessors() const noexcept { return impl_->sms; }
std::size_t GpuResources::max_shared_per_block_optin() const noexcept { return impl_->smem_optin; }
CUstream_st* GpuResources::stream() const noexcept { return impl_->stream; }
cublasContext* GpuResources::cublas() const noexcept { return impl_->cublas; }

void GpuResources::synchronize() const { CUDA_CHECK(cudaStreamSynchronize(impl_->stream)); }

void GpuResources::memory_info(std::size_t* free_bytes, std::size_t* total_bytes) const {
  CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

void GpuResources::require_free(std::size_t bytes, const std::string& who) const {
  std::size_t free_b = 0, total_b = 0;
  memory_info(&free_b, &total_b);
  if (bytes <= free_b) return;
  auto gib = [](std::size_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0));
    return std::string(buf);
  };
  throw CudaError(who + ": needs " + gib(bytes) + " GiB of device memory, " + gib(free_b) + " GiB free (of " +
                  gib(total_b) + " GiB on " + impl_->name + ")");
}

void* GpuResources::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  const cudaError_t err = cudaMalloc(&ptr, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free allocation error
    std::size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw CudaError("cudaMalloc of " + std::to_string(bytes) + " bytes failed (" + cudaGetErrorString(err) +
                    "); " + std::to_string(free_b) + " of " + std::to_string(total_b) + " bytes free, " +
                    std::to_string(impl_->in_use.load()) + " held by this trainer");
  }
  const std::size_t now = impl_->in_use.fetch_add(bytes) + bytes;
  std::size_t prev = impl_->peak.load();
  while (now > prev && !impl_->peak.compare_exchange_weak(prev, now)) {
  }
  return ptr;
}

void GpuResources::deallocate(void* ptr, std::size_t bytes) noexcept {
  if (ptr == nullptr) return;
  CUDA_CHECK_NO_THROW(cudaFree(ptr));
  impl_->in_use.fetch_sub(bytes);
}

std::size_t GpuResources::bytes_in_use() const noexcept { return impl_->in_use.load(); }
std::size_t GpuResources::peak_bytes() const noexcept { return impl_->peak.load(); }
void GpuResources::reset_peak() noexcept { impl_->peak.store(impl_->in_use.load()); }

}  // namespace freshrec
