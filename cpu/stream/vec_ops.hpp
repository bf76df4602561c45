#pragma once
/// Internal: the small float kernels of the streaming state (k-length rows, host memory).
/// Fixed summation orders, so results are the same on every run and every machine with the
/// same instruction set; no -ffast-math needed for them to vectorise.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace freshrec::stream {

/// Calls f(k) with k = 64 as a compile-time constant (std::integral_constant) when k_runtime
/// is 64, else with the runtime int: the k-loops inside f are unrolled and kept in registers
/// for the common size, with one generic instantiation for every other.
template <typename F>
inline decltype(auto) with_k(int k_runtime, F&& f) {
  if (k_runtime == 64) return f(std::integral_constant<int, 64>{});
  return f(k_runtime);
}

/// Starts loading every cache line of [p, p + bytes) (a hint; changes nothing).
inline void prefetch_bytes(const void* p, std::size_t bytes) noexcept {
  const char* c = static_cast<const char*>(p);
  for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off);
}

/// a·b over k floats: eight independent partial sums (one SIMD register), fixed order.
inline float dot(const float* a, const float* b, int k) noexcept {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int d = 0;
  for (; d + 8 <= k; d += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[d + l] * b[d + l];
  for (; d < k; ++d) acc[d & 7] += a[d] * b[d];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/// ++c that stops at the type's maximum: the lifetime counters (an item's events, a user's
/// updates) live as long as the process and its checkpoints, and a popular item can pass
/// 2^32 events; wrapping to 0 would make it the least popular item.
inline std::uint32_t saturating_increment(std::uint32_t& c) noexcept {
  c += c != UINT32_MAX;
  return c;
}

/// Symmetric int8 quantisation of one row: q8[d] = round(q[d] / scale), scale = max|q| / 127
/// (0 for a zero row, then q8 = 0). |q[d] - scale * q8[d]| <= scale / 2 (plus float rounding
/// of the division, covered by the slack of the bound in recommend.cpp). Returns scale.
inline float quantise_row(const float* q, int k, std::int8_t* q8) noexcept {
  // Plain comparisons, not std::fmax/fmin: those are library calls under strict IEEE
  // semantics and this runs on every item update. The SIMD paths give the same bytes as the
  // scalar loop: max is exact in any order (a NaN lane is skipped by both, as max_ps returns
  // its second operand then), and cvtps_epi32 rounds to nearest-even in the default mode,
  // as nearbyint does (nearbyint itself is a library call per element without -ffast-math).
  float m = 0.0f;
  int d = 0;
#if defined(__AVX512F__)
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 vm = _mm512_setzero_ps();
  for (; d + 16 <= k; d += 16) vm = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(q + d), abs_mask), vm);
  m = _mm512_reduce_max_ps(vm);
#endif
  for (; d < k; ++d) {
    const float a = std::fabs(q[d]);
    m = a > m ? a : m;
  }
  if (!(m > 0.0f) || !(m < INFINITY)) {
    for (int j = 0; j < k; ++j) q8[j] = 0;
    // A non-finite row never reaches items_ (finite checks); a zero row scores 0 exactly.
    return m > 0.0f ? INFINITY : 0.0f;
  }
  const float scale = m / 127.0f;
  const float inv = 127.0f / m;
  d = 0;
#if defined(__AVX512F__)
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (; d + 16 <= k; d += 16) {
    __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(q + d), vinv));
    r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q8 + d), _mm512_cvtepi32_epi8(r));
  }
#endif
  for (; d < k; ++d) {
    float r = std::nearbyint(q[d] * inv);
    r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
    q8[d] = static_cast<std::int8_t>(r);
  }
  return scale;
}

/// Σ_d q8[d] * u[d] over k (int8 row, float vector), fixed order. The caller multiplies by
/// the row's scale.
inline float dot_q8(const std::int8_t* q8, const float* u, int k) noexcept {
  int d = 0;
  float s = 0.0f;
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  for (; d + 16 <= k; d += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q8 + d));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), _mm512_loadu_ps(u + d), acc);
  }
  s = _mm512_reduce_add_ps(acc);
#elif defined(__AVX2__)
  __m256 acc = _mm256_setzero_ps();
  for (; d + 8 <= k; d += 8) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q8 + d));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), _mm256_loadu_ps(u + d), acc);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
#endif
  for (; d < k; ++d) s += static_cast<float>(q8[d]) * u[d];
  return s;
}

/// Both Σ q8·u and Σ q8·v in one read of the row (the user and the page item).
inline void dot2_q8(const std::int8_t* q8, const float* u, const float* v, int k, float* du, float* dv) noexcept {
  int d = 0;
  float su = 0.0f, sv = 0.0f;
#if defined(__AVX512F__)
  __m512 au = _mm512_setzero_ps(), av = _mm512_setzero_ps();
  for (; d + 16 <= k; d += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q8 + d));
    const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
    au = _mm512_fmadd_ps(f, _mm512_loadu_ps(u + d), au);
    av = _mm512_fmadd_ps(f, _mm512_loadu_ps(v + d), av);
  }
  su = _mm512_reduce_add_ps(au);
  sv = _mm512_reduce_add_ps(av);
#endif
  for (; d < k; ++d) {
    su += static_cast<float>(q8[d]) * u[d];
    sv += static_cast<float>(q8[d]) * v[d];
  }
  *du = su;
  *dv = sv;
}

}  // namespace freshrec::stream

#include <sys/mman.h>

#include <vector>

namespace freshrec::stream {

/// Asks the kernel for transparent huge pages on the 2 MiB-aligned part of [p, p + bytes): the
/// per-event path reads rows at random from arrays of tens of MB, where 4 KiB pages cost a
/// TLB miss (and a page walk that itself misses) per row. Advice only: ignored where THP is
/// off, effective at once for pages not yet touched, later (khugepaged) for touched ones.
inline void advise_huge_pages(const void* p, std::size_t bytes) noexcept {
#if defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t{1} << 21;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

/// reserve() with huge-page advice on the new block (before its pages are first touched when
/// `v` was empty).
template <typename T, typename A>
inline void reserve_huge(std::vector<T, A>& v, std::size_t n) {
  if (n <= v.capacity()) return;
  v.reserve(n);
  advise_huge_pages(v.data(), v.capacity() * sizeof(T));
}

}  // namespace freshrec::stream
