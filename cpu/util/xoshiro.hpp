#pragma once
/// The one xoshiro256** generator (Blackman & Vigna) behind every seeded draw in
/// freshrec. Hand-written rather than <random>'s distributions so a seed gives the same
/// numbers with any standard library. How the state is seeded stays with each user
/// (trainers and streaming state seed it differently, and their outputs are pinned).
#include <array>
#include <cstdint>

namespace freshrec {

class Xoshiro256StarStar {
 public:
  /// Next 64 uniform random bits.
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-32
  /// for n < 2^32).
  std::uint32_t below(std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>(((next() >> 32) * static_cast<std::uint64_t>(n)) >> 32);
  }
  /// The four state words (saved verbatim in stream checkpoints).
  const std::array<std::uint64_t, 4>& state() const noexcept { return s_; }
  void set_state(const std::array<std::uint64_t, 4>& s) noexcept { s_ = s; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

}  // namespace freshrec
