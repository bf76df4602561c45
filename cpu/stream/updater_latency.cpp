#include "cpu/stream/updater_latency.hpp"

#include <cmath>

namespace freshrec {

std::uint32_t LatencyHistogram::index_of(std::uint64_t ns) noexcept {
  if (ns < kExact) return static_cast<std::uint32_t>(ns);
  const int e = 63 - __builtin_clzll(ns);  // >= 7
  const auto sub = static_cast<std::uint32_t>((ns >> (e - 6)) & (kSubBuckets - 1));
  return kExact + static_cast<std::uint32_t>(e - 7) * kSubBuckets + sub;
}

void LatencyHistogram::bounds(std::uint32_t index, std::uint64_t& lower, std::uint64_t& upper) noexcept {
  if (index < kExact) {
    lower = index;
    upper = index + 1;
    return;
  }
  const std::uint32_t e = 7 + (index - kExact) / kSubBuckets;
  const std::uint64_t sub = (index - kExact) % kSubBuckets;
  lower = (kSubBuckets + sub) << (e - 6);
  upper = lower + (std::uint64_t{1} << (e - 6));
}

double LatencyHistogram::quantile_ns(double q) const noexcept {
  if (count_ == 0) return 0.0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  const std::uint64_t target = rank == 0 ? 1 : rank;
  std::uint64_t seen = 0;
  for (std::uint32_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= target) {
      std::uint64_t lo = 0, hi = 0;
      bounds(i, lo, hi);
      if (i < kExact) return static_cast<double>(lo);
      return 0.5 * static_cast<double>(lo + hi);
    }
  }
  return static_cast<double>(max_);
}

void LatencyHistogram::clear() noexcept {
  buckets_.fill(0);
  count_ = 0;
  max_ = 0;
}

}  // namespace freshrec
