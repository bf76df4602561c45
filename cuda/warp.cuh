#pragma once
// Warp-level helpers shared by the kernel families. nvcc only.
#include <cstdint>

namespace freshrec {

constexpr unsigned kFullMask = 0xffffffffu;

/// Butterfly sum: every lane receives the total.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

/// Deterministic 64-bit mix (splitmix64's finaliser): a counter-based random source.
__host__ __device__ __forceinline__ std::uint64_t device_mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace freshrec
