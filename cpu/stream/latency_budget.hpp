#pragma once
/// The brief's ParallelFeatureFetcher: every signal of a recommendation (nightly factors,
/// the user's real-time state, request context, remote features) is fetched in parallel
/// under one deadline; a source that misses it is dropped and the answer falls back
/// (nightly only, then popularity). A slow source cannot starve the others: each source
/// has a cap on fetches in flight, and a fetch over the cap is dropped at once instead of
/// queueing behind the slow ones (a bulkhead).
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace freshrec::stream {

/// The signals a recommendation can use, in fallback order of importance.
enum class Signal : std::uint8_t {
  kNightly = 0,   ///< nightly factors p_u, q_i, b_i
  kRealtime = 1,  ///< the user's streaming state (delta, session embedding, bandit posterior)
  kContext = 2,   ///< request context (page item, device, time)
  kRemote = 3,    ///< remote features (Redis rt_features), optional
};
inline constexpr int kNumSignals = 4;
/// "nightly", "realtime", "context", "remote".
const char* signal_name(Signal s) noexcept;

/// Per-source degradation counters (monotonic; read them from any thread).
struct DegradationCounters {
  std::array<std::atomic<std::uint64_t>, kNumSignals> late{};      ///< fetches that missed the deadline
  std::array<std::atomic<std::uint64_t>, kNumSignals> shed{};      ///< not started: the source's in-flight cap was full
  std::array<std::atomic<std::uint64_t>, kNumSignals> failed{};    ///< fetches that threw
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> degraded{0};                          ///< requests answered without every requested signal
  std::atomic<std::uint64_t> popularity_fallbacks{0};              ///< requests answered by popularity alone
};

/// What one budgeted gather used.
struct GatherReport {
  std::array<bool, kNumSignals> requested{};  ///< asked for
  std::array<bool, kNumSignals> ready{};      ///< arrived before the deadline (and did not throw)
  bool degraded = false;                      ///< some requested signal is missing
  double elapsed_ms = 0.0;                    ///< wall time of the gather
  /// Names of the ready signals, in Signal order (the HTTP answer's "signals").
  std::vector<std::string> signal_names() const;
};

/// Runs fetches on a fixed pool of threads under a deadline. A fetch that misses the deadline
/// keeps running to its end on its pool thread (C++ threads cannot be cancelled) but its result
/// is discarded: a fetch must therefore own, through shared_ptr captures, everything it writes.
class ParallelFeatureFetcher {
 public:
  /// `threads` pool threads (>= 1); `max_in_flight` fetches per source at once (>= 1);
  /// `on_thread_start` (optional) runs first on each pool thread (e.g. to lower its priority).
  ParallelFeatureFetcher(std::size_t threads, std::size_t max_in_flight = 2, std::function<void()> on_thread_start = {});
  ~ParallelFeatureFetcher();  ///< waits for running fetches to finish; never throws
  ParallelFeatureFetcher(const ParallelFeatureFetcher&) = delete;
  ParallelFeatureFetcher& operator=(const ParallelFeatureFetcher&) = delete;

  /// One fetch: `fn` fills its own output (owned by shared_ptr) and returns normally when done.
  struct Task {
    Signal signal = Signal::kNightly;
    std::function<void()> fn;
    /// A hedge: started only if the other (primary) tasks are not all done `hedge` after the
    /// gather began (see gather). A hedge that was not needed is not started, not requested
    /// and not a degradation.
    bool fallback = false;
  };
  /// Starts every primary task (one per signal), waits until all are done or `budget` has
  /// passed since the call, and reports which arrived; the counters are updated. Fallback
  /// tasks start only when the primaries are still running `hedge` after the call (hedge 0:
  /// at once, with the primaries); once started, the gather ends when the primaries are all
  /// done, or every started task is, or at the budget. Hedging halves the work of a request
  /// whose full answer is fast (the usual case) and still has the fallback in time when it is
  /// not. Thread-safe: any number of callers may gather at once.
  GatherReport gather(std::vector<Task> tasks, std::chrono::nanoseconds budget,
                      std::chrono::nanoseconds hedge = std::chrono::nanoseconds::zero());

  /// Blocks until no fetch is queued or running (late ones included): call before tearing
  /// down what the fetches read (the engine), after the last gather has returned.
  void wait_idle();

  const DegradationCounters& counters() const noexcept { return counters_; }
  DegradationCounters& counters() noexcept { return counters_; }

 private:
  struct Batch;
  void worker();
  /// Queues `tasks` (bulkhead first) into `batch`; returns how many were queued.
  void start(std::vector<Task*>& tasks, const std::shared_ptr<Batch>& batch, GatherReport& report,
             std::array<bool, kNumSignals>& shed);

  std::size_t max_in_flight_;
  std::array<std::atomic<std::size_t>, kNumSignals> in_flight_{};
  DegradationCounters counters_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::size_t running_ = 0;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

/// Which ranking the gathered signals allow, with the fallback order of the brief:
/// everything requested ready -> full blend (a hedge that was not needed is not requested);
/// otherwise nightly ready -> nightly only (plus whatever else arrived); else popularity.
enum class RankingMode : std::uint8_t { kFull = 0, kNightlyOnly = 1, kPopularity = 2 };
RankingMode ranking_mode(const GatherReport& report) noexcept;

}  // namespace freshrec::stream
