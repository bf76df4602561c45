#include "cpu/stream/latency_budget.hpp"

#include <algorithm>
#include <exception>
#include <type_traits>

#include "cpu/util/error.hpp"

namespace freshrec::stream {

const char* signal_name(Signal s) noexcept {
  switch (s) {
    case Signal::kNightly: return "nightly";
    case Signal::kRealtime: return "realtime";
    case Signal::kContext: return "context";
    case Signal::kRemote: return "remote";
  }
  return "unknown";
}

std::vector<std::string> GatherReport::signal_names() const {
  std::vector<std::string> out;
  for (int s = 0; s < kNumSignals; ++s)
    if (ready[static_cast<std::size_t>(s)]) out.emplace_back(signal_name(static_cast<Signal>(s)));
  return out;
}

RankingMode ranking_mode(const GatherReport& r) noexcept {
  // Everything asked for arrived (a hedge that was not needed is not asked for): full.
  bool all = true;
  for (int s = 0; s < kNumSignals; ++s)
    all = all && (!r.requested[static_cast<std::size_t>(s)] || r.ready[static_cast<std::size_t>(s)]);
  if (all) return RankingMode::kFull;
  return r.ready[static_cast<std::size_t>(Signal::kNightly)] ? RankingMode::kNightlyOnly : RankingMode::kPopularity;
}

namespace {
using Clock = std::chrono::steady_clock;
// t + d saturated at the clock's end: a budget of nanoseconds::max() ("no deadline") must not
// overflow the time point (signed overflow). d >= 0 (gather clamps negative budgets to 0).
Clock::time_point saturating_after(Clock::time_point t, std::chrono::nanoseconds d) {
  static_assert(std::is_same_v<Clock::duration, std::chrono::nanoseconds>);
  // Before the epoch (never on Linux) t + d cannot overflow; after it, max - t cannot.
  if (t.time_since_epoch().count() >= 0 && d >= Clock::time_point::max() - t) return Clock::time_point::max();
  return t + d;
}
}  // namespace

/// One gather's completion state, shared with its fetches (which may outlive the gather).
struct ParallelFeatureFetcher::Batch {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t remaining = 0;   // started tasks not finished
  std::size_t primaries = 0;   // started primary tasks not finished
  std::array<std::uint8_t, kNumSignals> state{};  // 0 running, 1 done, 2 threw
  std::array<bool, kNumSignals> primary{};
  bool primary_shed = false;   // a primary was never started (bulkhead)
  // Every primary arrived: a hedge still running is not needed. (One that threw or was shed
  // leaves the hedge to answer, up to the deadline.)
  bool primaries_ok() const {
    if (primaries != 0 || primary_shed) return false;
    for (std::size_t s = 0; s < state.size(); ++s)
      if (primary[s] && state[s] != 1) return false;
    return true;
  }
};

ParallelFeatureFetcher::ParallelFeatureFetcher(std::size_t threads, std::size_t max_in_flight,
                                               std::function<void()> on_thread_start)
    : max_in_flight_(std::max<std::size_t>(max_in_flight, 1)) {
  const std::size_t n = std::max<std::size_t>(threads, 1);
  threads_.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    threads_.emplace_back([this, on_thread_start] {
      if (on_thread_start) on_thread_start();
      worker();
    });
}

ParallelFeatureFetcher::~ParallelFeatureFetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void ParallelFeatureFetcher::worker() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained: queued fetches still run, so their captures are released
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    job();
    job = nullptr;  // release the fetch's captures before reporting idle
    {
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
      if (running_ == 0 && queue_.empty()) idle_cv_.notify_all();
    }
  }
}

void ParallelFeatureFetcher::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return running_ == 0 && queue_.empty(); });
}

void ParallelFeatureFetcher::start(std::vector<Task*>& tasks, const std::shared_ptr<Batch>& batch, GatherReport& report,
                                   std::array<bool, kNumSignals>& shed) {
  std::vector<std::function<void()>> jobs;
  for (Task* t : tasks) {
    const auto s = static_cast<std::size_t>(t->signal);
    report.requested[s] = true;
    // Bulkhead: a source already at its cap (usually because it is slow) is not queued again.
    if (in_flight_[s].fetch_add(1, std::memory_order_acq_rel) >= max_in_flight_) {
      in_flight_[s].fetch_sub(1, std::memory_order_acq_rel);
      shed[s] = true;
      counters_.shed[s].fetch_add(1, std::memory_order_relaxed);
      if (!t->fallback) {
        std::lock_guard<std::mutex> lock(batch->mu);
        batch->primary_shed = true;
      }
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(batch->mu);
      ++batch->remaining;
      if (!t->fallback) {
        ++batch->primaries;
        batch->primary[s] = true;
      }
    }
    jobs.push_back([this, batch, s, primary = !t->fallback, fn = std::move(t->fn)] {
      std::uint8_t outcome = 1;
      try {
        fn();
      } catch (...) {
        outcome = 2;
      }
      in_flight_[s].fetch_sub(1, std::memory_order_acq_rel);
      {
        std::lock_guard<std::mutex> lock(batch->mu);
        batch->state[s] = outcome;
        --batch->remaining;
        if (primary) --batch->primaries;
      }
      batch->cv.notify_all();
    });
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& j : jobs) queue_.push_back(std::move(j));
  }
  cv_.notify_all();
}

GatherReport ParallelFeatureFetcher::gather(std::vector<Task> tasks, std::chrono::nanoseconds budget,
                                            std::chrono::nanoseconds hedge) {
  const auto start_time = Clock::now();
  // A budget or hedge of 0 or less: at once.
  budget = std::max(budget, std::chrono::nanoseconds::zero());
  hedge = std::max(hedge, std::chrono::nanoseconds::zero());
  const auto deadline = saturating_after(start_time, budget);
  GatherReport report;
  counters_.requests.fetch_add(1, std::memory_order_relaxed);
  auto batch = std::make_shared<Batch>();
  std::array<bool, kNumSignals> shed{};
  std::array<bool, kNumSignals> seen{};
  std::vector<Task*> primaries, fallbacks;
  std::array<bool, kNumSignals> is_fallback{};
  for (Task& t : tasks) {
    const auto s = static_cast<std::size_t>(t.signal);
    FRESHREC_ASSERT(s < static_cast<std::size_t>(kNumSignals) && !seen[s]);
    seen[s] = true;
    is_fallback[s] = t.fallback;
    (t.fallback ? fallbacks : primaries).push_back(&t);  // start() marks what it starts as requested
  }
  start(primaries, batch, report, shed);
  if (!fallbacks.empty()) {
    bool primaries_ok = false;
    if (hedge > std::chrono::nanoseconds::zero()) {
      std::unique_lock<std::mutex> lock(batch->mu);
      // Until the hedge time, or sooner when a primary was shed or all finished.
      batch->cv.wait_until(lock, std::min(deadline, saturating_after(start_time, hedge)), [&] { return batch->primaries == 0 || batch->primary_shed; });
      primaries_ok = batch->primaries_ok();
    }
    if (!primaries_ok) start(fallbacks, batch, report, shed);
  }
  {
    std::unique_lock<std::mutex> lock(batch->mu);
    batch->cv.wait_until(lock, deadline, [&] { return batch->remaining == 0 || batch->primaries_ok(); });
    // Every primary arrived: a hedge still running was not needed (not a degradation).
    const bool primaries_ok = batch->primaries_ok();
    for (std::size_t s = 0; s < static_cast<std::size_t>(kNumSignals); ++s) {
      if (!report.requested[s]) continue;
      if (shed[s]) {
        if (is_fallback[s] && primaries_ok) report.requested[s] = false;  // (shed, so counted as such already)
        continue;
      }
      if (batch->state[s] == 1) {
        report.ready[s] = true;
      } else if (batch->state[s] == 2) {
        counters_.failed[s].fetch_add(1, std::memory_order_relaxed);
      } else if (is_fallback[s] && primaries_ok) {
        report.requested[s] = false;
      } else {
        counters_.late[s].fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  for (std::size_t s = 0; s < static_cast<std::size_t>(kNumSignals); ++s)
    if (report.requested[s] && !report.ready[s]) report.degraded = true;
  if (report.degraded) counters_.degraded.fetch_add(1, std::memory_order_relaxed);
  if (ranking_mode(report) == RankingMode::kPopularity) counters_.popularity_fallbacks.fetch_add(1, std::memory_order_relaxed);
  report.elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start_time).count();
  return report;
}

}  // namespace freshrec::stream
