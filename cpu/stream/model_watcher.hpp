#pragma once
/// Watches models/LATEST for a new nightly version and loads it on a background thread,
/// fully verified, so the updater only has to swap it in between two events.
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cpu/model/factor_model.hpp"
#include "cpu/model/snapshot.hpp"

namespace freshrec {

/// A verified snapshot waiting to be swapped in.
struct LoadedSnapshot {
  std::shared_ptr<const FactorModel> model;  ///< host memory, immutable once loaded
  SnapshotInfo info;
};

class ModelWatcher {
 public:
  /// Polls `models_dir`/LATEST every `poll_ms` (> 0) milliseconds on its own thread. A
  /// version other than `current_version` is loaded with load_snapshot (every checksum);
  /// a bad one is refused with one line on `log` (may be nullptr) and not retried until
  /// LATEST names something else.
  ModelWatcher(std::string models_dir, std::string current_version, int poll_ms, std::FILE* log);
  /// Stops and joins the thread (never throws).
  ~ModelWatcher();
  ModelWatcher(const ModelWatcher&) = delete;
  ModelWatcher& operator=(const ModelWatcher&) = delete;

  /// Cheap (one atomic load): whether a verified snapshot is waiting.
  bool has_pending() const noexcept { return has_pending_.load(std::memory_order_acquire); }
  /// Takes the waiting snapshot (nullopt-like empty model when none) and makes its
  /// version the current one.
  LoadedSnapshot take_pending();
  /// Versions refused so far (bad checksum, unreadable) and loaded so far.
  std::uint64_t refused() const noexcept { return refused_.load(); }
  std::uint64_t loaded() const noexcept { return loaded_.load(); }
  /// The caller swapped to `version` by itself (an admin reload): it becomes the current
  /// one, and a waiting snapshot of that version is dropped (not swapped in twice).
  void set_current(const std::string& version);
  /// Checks LATEST once on the calling thread (tests; the thread does the same).
  void poll_now();

 private:
  void run();

  std::string dir_;
  int poll_ms_;
  std::FILE* log_;
  std::mutex mutex_;               // guards everything below but the atomics
  std::condition_variable wake_;
  bool stop_ = false;
  std::string current_;            // version in use (or loaded and waiting)
  std::string last_refused_;       // not retried while LATEST still names it
  LoadedSnapshot pending_;
  std::atomic<bool> has_pending_{false};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> loaded_{0};
  std::mutex poll_mutex_;          // one poll at a time (thread vs poll_now)
  std::thread thread_;
};

}  // namespace freshrec
