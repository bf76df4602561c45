#pragma once
// Thrust runs on the owner's stream, and its temporary storage comes from the owner's
// counted allocator, so sorts show up in the peak-memory figure and never touch the
// default stream. nvcc only.
#include <cstddef>

#include <thrust/execution_policy.h>
#include <thrust/system/cuda/execution_policy.h>

#include "cuda/resources.hpp"

namespace freshrec {

/// Thrust's allocator concept over GpuResources (device memory).
class ThrustAllocator {
 public:
  using value_type = char;
  explicit ThrustAllocator(GpuResources& res) : res_(&res) {}
  char* allocate(std::ptrdiff_t n) { return static_cast<char*>(res_->allocate(static_cast<std::size_t>(n))); }
  void deallocate(char* ptr, std::size_t n) noexcept { res_->deallocate(ptr, n); }

 private:
  GpuResources* res_;
};

/// The execution policy for `res`: its stream, its allocator, no implicit synchronisation.
inline auto thrust_policy(GpuResources& res, ThrustAllocator& alloc) {
  return thrust::cuda::par_nosync(alloc).on(res.stream());
}

}  // namespace freshrec
