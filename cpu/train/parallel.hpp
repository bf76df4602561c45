#pragma once
/// Thread-count resolution and the small dense kernels the CPU trainers share.
#include <cstdint>

namespace freshrec {

/// The number of OpenMP threads a trainer uses for TrainConfig::threads (0 = all).
int resolve_threads(int requested) noexcept;

/// x . y over n floats (vectorised; the summation order is fixed for a given build).
inline float dot_n(const float* x, const float* y, int n) noexcept {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < n; ++j) s += x[j] * y[j];
  return s;
}

/// y += a * x over n floats.
inline void axpy_n(float a, const float* x, float* y, int n) noexcept {
#pragma omp simd
  for (int j = 0; j < n; ++j) y[j] += a * x[j];
}

}  // namespace freshrec
