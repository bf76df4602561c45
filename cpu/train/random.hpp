#pragma once
/// Deterministic random numbers for the trainers. Hand-written (not <random>'s
/// distributions) because the standard leaves their algorithms to the library, and a
/// seed must give the same factors with any standard library.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cpu/util/xoshiro.hpp"

namespace freshrec {

/// SplitMix64 finaliser: a bijective 64-bit mix, used to derive independent seeds.
inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// Seed for stream `a`/`b` of `seed` (e.g. side and row), so every row has its own
/// stream and its numbers do not depend on how many rows or threads there are.
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) noexcept {
  return mix64(mix64(mix64(seed) ^ a) ^ (b * 0xD1B54A32D192ED03ULL));
}

/// xoshiro256** (cpu/util/xoshiro.hpp) seeded the trainers' way, plus a normal draw.
class Rng : public Xoshiro256StarStar {
 public:
  /// State from `seed` through SplitMix64, as the authors recommend.
  explicit Rng(std::uint64_t seed) noexcept {
    std::array<std::uint64_t, 4> s;
    for (auto& w : s) {
      seed += 0x9E3779B97F4A7C15ULL;
      w = mix64(seed);
    }
    set_state(s);
  }

  /// Standard normal N(0, 1) by Box-Muller (one draw per call; the spare is dropped
  /// so a value depends only on the call count, never on cached state).
  double normal() noexcept {
    const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

/// Fisher-Yates shuffle of [first, first + n) driven by `rng`.
template <typename T>
void shuffle_in_place(T* first, std::size_t n, Rng& rng) {
  for (std::size_t i = n; i > 1; --i) {
    const std::size_t j = i <= 0xFFFFFFFFu ? rng.below(static_cast<std::uint32_t>(i)) : rng.next() % i;
    T tmp = first[i - 1];
    first[i - 1] = first[j];
    first[j] = tmp;
  }
}

}  // namespace freshrec
