#pragma once
/// Deterministic random numbers for the streaming state. Written here (not <random>'s
/// distributions) so the draws are the same on every standard library and the whole
/// generator state fits in a checkpoint.
#include <array>
#include <cstdint>

#include "cpu/util/xoshiro.hpp"

namespace freshrec::stream {

/// splitmix64 step: seeds xoshiro and hashes integers into well-mixed 64-bit values.
inline std::uint64_t splitmix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// xoshiro256** seeded through splitmix64. State: four 64-bit words, saved verbatim in
/// checkpoints.
class Xoshiro256 : public Xoshiro256StarStar {
 public:
  explicit Xoshiro256(std::uint64_t seed = 0) noexcept { reseed(seed); }
  void reseed(std::uint64_t seed) noexcept {
    std::uint64_t x = seed;
    std::array<std::uint64_t, 4> s;
    for (auto& w : s) w = splitmix64(x);
    set_state(s);
  }
};

}  // namespace freshrec::stream
