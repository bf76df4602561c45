#pragma once
/// The streaming updater's process loop: source → parse → engine.apply → dead letters,
/// with checkpoints (state + source offset as one atomic file), hot swap of the nightly
/// model, periodic stats lines and the final stats document. pipelines/stream_main.cpp
/// is a thin CLI around it; tests drive it in-process.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/data/ndjson_event_parser.hpp"
#include "cpu/stream/checkpoint.hpp"
#include "cpu/stream/dead_letter.hpp"
#include "cpu/stream/model_watcher.hpp"
#include "cpu/stream/source.hpp"
#include "cpu/stream/stream_engine.hpp"
#include "cpu/stream/updater_config.hpp"
#include "cpu/stream/updater_latency.hpp"

namespace freshrec {

/// How one run of the updater behaves beyond its config.
struct UpdaterOptions {
  /// A followed file: stop at its current end instead of waiting for more (a file
  /// source and stdin always stop at EOF).
  bool until_eof = false;
  /// Test hook: stop after this many lines read in this run (0 = never)…
  std::uint64_t stop_after_lines = 0;
  /// …and then die with SIGKILL (no final checkpoint, no flush), like `kill -9`.
  bool crash = false;
  /// Progress and stats lines (nullptr = none).
  std::FILE* log = stderr;
  /// Warnings: refused checkpoints and snapshots, source resume problems (nullptr = none).
  std::FILE* warn = stderr;

  // Hooks of the serving layer (cpu/serve/); all are called on the updater's thread and
  // must be cheap: they sit on the per-event path.
  /// Opens the sources this library cannot (http, kafka); nullptr = file/follow/stdin only.
  std::function<std::unique_ptr<EventSource>(const StreamProcessConfig&)> open_source;
  /// After each event handed to the engine: the event, whether it was accepted, and the
  /// apply time in nanoseconds.
  std::function<void(const Event&, bool accepted, std::uint64_t apply_ns)> on_event;
  /// After each line written to the dead letters (parse error, oversized, rejected).
  std::function<void()> on_dead_letter;
  /// After each durable checkpoint (wall-clock epoch seconds of the write).
  std::function<void(double wall_time)> on_checkpoint;
  /// After each checkpoint that could not be written (full disk, read-only directory):
  /// this process's failures so far and the error, naming the file. The next
  /// on_checkpoint means checkpoints work again.
  std::function<void(std::uint64_t failures, const std::string& error)> on_checkpoint_failure;
  /// When the dead-letter file's health changes: this process's failed write attempts
  /// so far, whether the latest attempt failed, and its error naming the file ("" when
  /// not failing). Called at most once per failed attempt, which DeadLetterWriter retries
  /// at most once a second and at each checkpoint.
  std::function<void(std::uint64_t failures, bool failing, const std::string& error)> on_dead_letter_writes;
  /// When a baseline is in use: at start and after each swap (version, its data cutoff).
  std::function<void(const std::string& version, double data_cutoff)> on_baseline;
};

class StreamUpdater {
 public:
  /// Loads models/LATEST (every checksum; IntegrityError when corrupt, InputError when
  /// there is none), opens the source and the dead-letter file, and restores the newest
  /// valid checkpoint when the config names a checkpoint dir: a corrupt one is refused
  /// on `log` (naming the file and the checksum mismatch) and the previous one is tried.
  /// A checkpoint of an older baseline version is restored on that version (when it is
  /// still on disk) and then hot-swapped to LATEST.
  StreamUpdater(const StreamProcessConfig& config, const UpdaterOptions& options);
  ~StreamUpdater();
  StreamUpdater(const StreamUpdater&) = delete;
  StreamUpdater& operator=(const StreamUpdater&) = delete;

  /// Processes lines until the source ends, `stop` becomes true (SIGTERM: the current
  /// event is finished), or the stop_after hook fires; then checkpoints (if configured),
  /// syncs the dead letters and returns the final stats (see stats()).
  nlohmann::json run(const std::atomic<bool>& stop);

  /// The stats document: "events" (accepted, cumulative over restarts), "events_per_s"
  /// (this run), "apply_p50_us", "apply_p99_us" (this run), "dead_letters" (cumulative),
  /// "state_digest", guard accepts/rollbacks, every counter (among them this process's
  /// "checkpoint_failures" and "dead_letter_write_failures") and "degraded" (see degraded()).
  nlohmann::json stats() const;
  /// What is failing now while ingestion goes on: "checkpoint writes failing: <error>"
  /// while the latest checkpoint attempt failed, "dead-letter writes failing: <error>"
  /// while the latest dead-letter write failed; empty when healthy. Updater thread only.
  std::vector<std::string> degraded() const;

  /// Runs `task` on the updater's thread between two events (the next loop turn, at most
  /// one source poll later) and returns its result; the way admin requests reach state
  /// that only the writer may touch. A task posted after run() returned gets an error.
  std::future<nlohmann::json> post(std::function<nlohmann::json()> task);
  /// Writes a checkpoint now (no-op without checkpoint.dir, returns its path or "").
  /// Updater thread only (use post() from elsewhere).
  std::string checkpoint_now();
  /// Re-reads models/LATEST now and hot-swaps when it names another version; returns
  /// {"version", "swapped"}. Throws like load_latest on a corrupt snapshot (the current
  /// model stays). Updater thread only (use post()).
  nlohmann::json reload_now();

  StreamEngine& engine() noexcept { return *engine_; }
  /// The checkpoint restored at start ("" when none).
  const std::string& restored_from() const noexcept { return restored_from_; }
  /// The baseline version in use.
  const std::string& baseline_version() const noexcept { return version_; }

 private:
  void process_line(const SourceLine& line);
  void dead_letter(const SourceLine& line, const std::string& reason);
  /// After each call into the dead-letter writer: logs the start and end of a failure
  /// episode (rate-limited) and tells the on_dead_letter_writes hook.
  void note_dead_letters();
  /// Writes a checkpoint on this thread (after any write in flight); throws IoError.
  void checkpoint();
  /// The periodic triggers: serialises the state now and writes it on a background thread
  /// (collected by collect_checkpoint); an I/O failure is counted and logged, not thrown.
  void checkpoint_periodic();
  /// checkpoint(), with an I/O failure counted and logged instead of thrown.
  void checkpoint_or_warn();
  /// The state and source offset as of now (applies the pending batch first).
  CheckpointRecord checkpoint_record();
  /// Takes the result of the background write, if any (`wait`: blocks until it is done).
  void collect_checkpoint(bool wait);
  void checkpoint_written(const std::string& path, const SourceOffset& source);
  void checkpoint_failed(const std::string& error);
  void maybe_swap();
  void run_posted();
  void periodic(bool force_stats);
  bool restore_from(const CheckpointRecord& record, const std::shared_ptr<const FactorModel>& latest);
  std::map<std::string, std::uint64_t> counter_map() const;
  void log_line(const std::string& text) const;
  void warn_line(const std::string& text) const;

  StreamProcessConfig config_;
  UpdaterOptions options_;
  std::string version_;
  std::unique_ptr<StreamEngine> engine_;
  std::unique_ptr<EventSource> source_;
  std::unique_ptr<DeadLetterWriter> dead_letters_;
  std::unique_ptr<CheckpointStore> store_;
  std::unique_ptr<ModelWatcher> watcher_;
  NdjsonEventParser parser_;
  EventView view_;
  std::string reason_;
  // Parsed events not yet applied: applied together under one engine lock (apply_batch)
  // when the batch is full, the source has nothing more right now, or before anything that
  // reads or records the state (checkpoint, stats, swap, posted tasks, stop).
  struct BatchedLine {
    std::uint64_t line = 0, byte_offset = 0;
    std::string text;  ///< the raw line, for its dead letter if the engine rejects it
  };
  std::vector<Event> batch_events_;
  std::vector<BatchedLine> batch_lines_;
  std::vector<ApplyResult> batch_results_;
  std::vector<std::uint64_t> batch_ns_;
  std::size_t batch_size_ = 0;
  void flush_batch();
  LatencyHistogram latency_;
  std::string restored_from_;
  std::string last_checkpoint_path_;
  std::mutex posted_mutex_;
  std::deque<std::packaged_task<nlohmann::json()>> posted_;
  std::atomic<bool> has_posted_{false};
  bool finished_ = false;  // guarded by posted_mutex_

  // Checkpointed counters (cumulative over restarts).
  std::uint64_t lines_ = 0;
  std::uint64_t blank_lines_ = 0;
  std::uint64_t parse_errors_ = 0;
  std::uint64_t oversized_ = 0;
  std::uint64_t engine_errors_ = 0;
  std::uint64_t dead_letters_total_ = 0;
  // This process only.
  std::uint64_t apply_holds_ = 0;  ///< engine lock holds by flush_batch
  std::uint64_t run_lines_ = 0;
  std::uint64_t run_start_events_ = 0;
  std::uint64_t lines_since_checkpoint_ = 0;
  std::uint64_t checkpoints_written_ = 0;
  std::uint64_t checkpoint_failures_ = 0;  ///< checkpoints that failed (disk full, read-only)
  std::string checkpoint_error_;           ///< the latest attempt's error; "" once one succeeds
  std::uint64_t dl_failures_seen_ = 0;     ///< dead-letter writer state at the last note_dead_letters()
  bool dl_failing_seen_ = false;
  bool dl_episode_logged_ = false;
  double dl_last_warned_ = 0.0;            ///< steady seconds of the last "failing" warning (0 = none)
  std::uint64_t swaps_ = 0;
  std::string stopped_by_;
  double run_started_ = 0.0;     // steady seconds
  double run_elapsed_ = 0.0;
  double last_checkpoint_ = 0.0;
  double last_stats_ = 0.0;
  std::uint64_t last_stats_events_ = 0;
  // The periodic checkpoint being written in the background (declared last: its destructor
  // waits for the write, which uses store_).
  std::future<std::string> in_flight_;
  SourceOffset in_flight_source_;
};

/// Routes SIGTERM and SIGINT to `stop` (set to true; without SA_RESTART, so a blocked
/// read of stdin returns and the loop sees the flag). Call once per process.
void install_stop_signals(std::atomic<bool>& stop);

}  // namespace freshrec
