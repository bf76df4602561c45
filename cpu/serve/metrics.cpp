#include "cpu/serve/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace freshrec {
namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

LatencyBuckets::LatencyBuckets(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
}

void LatencyBuckets::record(double seconds) noexcept {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);
  counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max(0.0, seconds) * 1e9), std::memory_order_relaxed);
}

void LatencyBuckets::render(const std::string& name, const std::string& help, std::string& out) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum " + number(static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9) + "\n";
  // The count is the +Inf bucket so the three agree even while others record.
  out += name + "_count " + std::to_string(cumulative) + "\n";
}

std::vector<double> apply_latency_bounds() {
  return {1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 1e-2};
}

std::vector<double> request_latency_bounds() {
  // 20 ms: the default recommend budget, so "answered within budget" reads off one bucket.
  return {5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 1.5e-2, 2e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0};
}

void render_metric(std::string& out, const std::string& name, const std::string& type, const std::string& help,
                   double value, const std::string& labels) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(value) + "\n";
}

}  // namespace freshrec
