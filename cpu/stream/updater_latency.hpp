#pragma once
/// Fixed-size latency histogram (log-linear buckets, ~1.6% relative resolution, 30 KiB
/// of host memory whatever the run length): percentiles of per-event apply time for a
/// process that may run for months.
#include <array>
#include <cstdint>

namespace freshrec {

class LatencyHistogram {
 public:
  /// Records one duration in nanoseconds.
  void record(std::uint64_t ns) noexcept {
    ++buckets_[index_of(ns)];
    ++count_;
    if (ns > max_) max_ = ns;
  }
  /// The q-quantile (0 < q <= 1) in nanoseconds: the middle of the bucket holding it
  /// (exact below 128 ns). 0 when empty.
  double quantile_ns(double q) const noexcept;
  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max_ns() const noexcept { return max_; }
  void clear() noexcept;

  /// Bucket of `ns` (exposed for tests).
  static std::uint32_t index_of(std::uint64_t ns) noexcept;
  /// [lower, upper) nanoseconds of bucket `index`.
  static void bounds(std::uint32_t index, std::uint64_t& lower, std::uint64_t& upper) noexcept;

  static constexpr std::uint32_t kExact = 128;      ///< values below are their own bucket
  static constexpr std::uint32_t kSubBuckets = 64;  ///< per power of two above kExact
  static constexpr std::uint32_t kBuckets = kExact + (64 - 7) * kSubBuckets;

 private:
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace freshrec
