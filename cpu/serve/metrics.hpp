#pragma once
/// Prometheus text exposition (version 0.0.4) for the updater: lock-free counters and
/// fixed-bucket histograms written on hot paths, rendered on GET /metrics.
#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace freshrec {

/// A cumulative histogram over fixed upper bounds (seconds). record() is wait-free
/// (relaxed atomics): safe from the updater thread and every HTTP worker at once.
class LatencyBuckets {
 public:
  /// `bounds`: ascending upper bounds in seconds (+Inf is implied).
  explicit LatencyBuckets(std::vector<double> bounds);
  /// Counts one observation of `seconds`.
  void record(double seconds) noexcept;
  /// Appends the _bucket/_sum/_count lines of metric `name` with `help` to `out`.
  void render(const std::string& name, const std::string& help, std::string& out) const;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<std::uint64_t>> counts_;  // one per bound, then +Inf
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

/// Bounds for per-event apply latency: 1 µs … 10 ms.
std::vector<double> apply_latency_bounds();
/// Bounds for request latency: 50 µs … 1 s.
std::vector<double> request_latency_bounds();

/// Appends one sample line "name{labels} value" with its HELP/TYPE header to `out`.
void render_metric(std::string& out, const std::string& name, const std::string& type, const std::string& help,
                   double value, const std::string& labels = "");

}  // namespace freshrec
