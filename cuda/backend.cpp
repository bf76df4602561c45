// Device discovery and the NVTX hook for CPU code. This object file is always linked when
// the factory references cuda_device_available, so its static initialiser runs too.
#include <cuda_runtime_api.h>

#include "cpu/util/trace.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/nvtx.hpp"

namespace freshrec {
namespace {

void nvtx_push(const char* name) { nvtxRangePushA(name); }
void nvtx_pop() { nvtxRangePop(); }
const TraceHooks kNvtxHooks{&nvtx_push, &nvtx_pop};

// Installed at static-init time; set_trace_hooks only stores an atomic pointer whose
// storage is constant-initialised, so the order of static initialisers does not matter.
const bool kNvtxInstalled = (install_nvtx_hooks(), true);

}  // namespace

void install_nvtx_hooks() noexcept { set_trace_hooks(&kNvtxHooks); }

bool cuda_device_available(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // do not leave the error for the next caller to trip on
    if (reason != nullptr) *reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    return false;
  }
  if (count == 0) {
    if (reason != nullptr) *reason = "the CUDA runtime reports no device";
    return false;
  }
  if (reason != nullptr) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
      *reason = std::string(prop.name) + " (compute " + std::to_string(prop.major) + "." +
                std::to_string(prop.minor) + ")";
    } else {
      cudaGetLastError();
      *reason = "device 0";
    }
  }
  return true;
}

}  // namespace freshrec
