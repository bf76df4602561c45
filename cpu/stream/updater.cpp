#include "cpu/stream/updater.hpp"

#include <chrono>
#include <csignal>
#include <cstring>
#include <sstream>
#include <thread>

#include "cpu/model/snapshot.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"

namespace freshrec {
namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool all_blank(std::string_view text) {
  for (const char c : text)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

std::unique_ptr<EventSource> open_source(const StreamProcessConfig& c, const UpdaterOptions& o) {
  const SourceSettings& s = c.source;
  switch (s.type) {
    case SourceType::kFile: return open_file_source(s.path, s.max_line_bytes);
    case SourceType::kFollow: return open_follow_source(s.path, s.max_line_bytes);
    case SourceType::kStdin: return open_stdin_source(s.max_line_bytes);
    case SourceType::kHttp:
    case SourceType::kKafka:
      // Those need the serving layer (cpu/serve/stream_service.hpp), which passes a factory.
      if (o.open_source) return o.open_source(c);
      throw InputError("source.type: 'http' and 'kafka' need the serving layer (freshrec-stream provides it)");
  }
  throw InputError("source.type: unknown source type");
}

std::uint64_t counter(const std::map<std::string, std::uint64_t>& m, const char* key) {
  const auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

std::atomic<bool>* g_stop = nullptr;
extern "C" void on_stop_signal(int) {
  if (g_stop) g_stop->store(true);
}

}  // namespace

StreamUpdater::StreamUpdater(const StreamProcessConfig& config, const UpdaterOptions& options)
    : config_(config), options_(options) {
  // Guard decisions (stream.guard.log_decisions) go to this process's log, prefixed like
  // its other lines; --quiet (no log) silences them too.
  if (!options_.log) {
    config_.stream.guard.log_decisions = false;
  } else if (!config_.stream.guard.decision_log) {
    std::FILE* log = options_.log;
    config_.stream.guard.decision_log = [log](const char* line) { std::fprintf(log, "freshrec-stream: %s\n", line); };
  }
  SnapshotInfo info;
  auto latest = std::make_shared<const FactorModel>(load_latest(config_.model.dir, &info));
  version_ = info.version;
  log_line("baseline " + version_ + " (" + std::to_string(info.n_users) + " users, " + std::to_string(info.n_items) +
           " items, k=" + std::to_string(info.factors) + ")");

  source_ = open_source(config_, options_);
  dead_letters_ = std::make_unique<DeadLetterWriter>(config_.dead_letter.path, config_.dead_letter.max_raw_bytes);
  note_dead_letters();  // an unwritable dead-letter path is reported, and ingestion goes on

  bool restored = false;
  if (!config_.checkpoint.dir.empty()) {
    store_ = std::make_unique<CheckpointStore>(config_.checkpoint.dir, config_.checkpoint.keep);
    // Newest first; a file that fails verification or that the engine refuses is
    // skipped with its reason, and the previous one is tried.
    for (const std::string& path : store_->list()) {
      try {
        const CheckpointRecord record = read_checkpoint(path);
        if (restore_from(record, latest)) {
          restored = true;
          break;
        }
      } catch (const IntegrityError& e) {
        warn_line(std::string("refusing checkpoint: ") + e.what() + "; falling back to the previous checkpoint");
      } catch (const IoError& e) {
        warn_line(std::string("refusing checkpoint: ") + e.what() + "; falling back to the previous checkpoint");
      }
    }
    if (!restored && !store_->list().empty()) warn_line("no valid checkpoint left: starting from the beginning");
  }
  if (!restored) {
    engine_ = std::make_unique<StreamEngine>(config_.stream, latest);
    // The dead letters of an earlier run without a usable checkpoint are kept as they are.
  }
  if (config_.model.poll_ms > 0)
    watcher_ = std::make_unique<ModelWatcher>(config_.model.dir, version_, config_.model.poll_ms, options_.warn);
  // A rebalance asks for a checkpoint from inside next(): state and offsets are then
  // consistent (no event is half applied between two next() calls).
  source_->set_checkpoint_request([this] {
    flush_batch();  // every line next() returned is applied before offsets are acknowledged
    if (store_)
      checkpoint();
    else
      source_->on_checkpoint(source_->offset());
  });
  if (options_.on_baseline) options_.on_baseline(version_, engine_->baseline()->data_cutoff);
}

StreamUpdater::~StreamUpdater() {
  // Whoever still waits on a posted task gets an error, not a hang.
  std::lock_guard<std::mutex> lock(posted_mutex_);
  finished_ = true;
  posted_.clear();  // a dropped packaged_task makes its future report broken_promise
}

std::future<nlohmann::json> StreamUpdater::post(std::function<nlohmann::json()> task) {
  std::packaged_task<nlohmann::json()> packaged(std::move(task));
  std::future<nlohmann::json> result = packaged.get_future();
  std::lock_guard<std::mutex> lock(posted_mutex_);
  if (finished_) return result;  // broken promise right away
  posted_.push_back(std::move(packaged));
  has_posted_.store(true, std::memory_order_release);
  return result;
}

void StreamUpdater::run_posted() {
  std::deque<std::packaged_task<nlohmann::json()>> tasks;
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    tasks.swap(posted_);
    has_posted_.store(false, std::memory_order_release);
  }
  for (auto& task : tasks) task();  // exceptions land in the task's future
}

std::string StreamUpdater::checkpoint_now() {
  if (!store_) return "";
  checkpoint();
  return last_checkpoint_path_;
}

nlohmann::json StreamUpdater::reload_now() {
  SnapshotInfo info;
  auto next = std::make_shared<const FactorModel>(load_latest(config_.model.dir, &info));
  nlohmann::json result = {{"previous_version", version_}, {"version", info.version}, {"swapped", false}};
  if (info.version == version_) return result;
  const double t0 = steady_seconds();
  engine_->swap_baseline(next);
  version_ = info.version;
  ++swaps_;
  if (watcher_) watcher_->set_current(version_);  // or it loads and swaps the same version again
  log_line("reloaded baseline " + version_ + " in " + std::to_string(steady_seconds() - t0) + " s");
  if (options_.on_baseline) options_.on_baseline(version_, next->data_cutoff);
  checkpoint();
  result["swapped"] = true;
  return result;
}

bool StreamUpdater::restore_from(const CheckpointRecord& record, const std::shared_ptr<const FactorModel>& latest) {
  std::shared_ptr<const FactorModel> base = latest;
  bool exact = true;
  if (record.baseline_version != version_) {
    // The state was learned on an older nightly model: rebuild it on that one, then
    // hot-swap to LATEST as a running process would have.
    try {
      base = std::make_shared<const FactorModel>(load_snapshot(join_path(config_.model.dir, record.baseline_version)));
    } catch (const std::exception& e) {
      warn_line("checkpoint " + record.path + " was taken on baseline " + record.baseline_version +
               ", which cannot be loaded (" + e.what() + "): starting fresh on " + version_ +
               " from the checkpoint's source offset");
      base = latest;
      exact = false;
    }
  }
  auto engine = std::make_unique<StreamEngine>(config_.stream, base);
  if (exact) {
    std::istringstream in(record.engine_state);
    try {
      engine->restore(in);
    } catch (const IntegrityError& e) {
      warn_line("refusing checkpoint " + record.path + ": " + e.what() + "; falling back to the previous checkpoint");
      return false;
    }
    if (base != latest) {
      engine->swap_baseline(latest);
      ++swaps_;
    }
  }
  const std::string warning = source_->seek(record.source);
  if (!warning.empty()) warn_line("source: " + warning);
  if (!dead_letters_->truncate_to(record.dead_letter_bytes))
    warn_line("dead-letter file " + dead_letters_->path() + " is shorter than the checkpoint recorded (" +
             std::to_string(record.dead_letter_bytes) + " bytes): appending after what is there");
  note_dead_letters();
  lines_ = counter(record.counters, "lines");
  blank_lines_ = counter(record.counters, "blank_lines");
  parse_errors_ = counter(record.counters, "parse_errors");
  oversized_ = counter(record.counters, "oversized");
  engine_errors_ = counter(record.counters, "engine_errors");
  dead_letters_total_ = counter(record.counters, "dead_letters");
  engine_ = std::move(engine);
  restored_from_ = record.path;
  log_line("restored checkpoint " + record.path + " (line " + std::to_string(record.source.line) + ", byte " +
           std::to_string(record.source.byte_offset) + ", " + std::to_string(engine_->counters().events) + " events)");
  return true;
}

void StreamUpdater::log_line(const std::string& text) const {
  if (options_.log) std::fprintf(options_.log, "freshrec-stream: %s\n", text.c_str());
}

void StreamUpdater::warn_line(const std::string& text) const {
  if (options_.warn) std::fprintf(options_.warn, "freshrec-stream: warning: %s\n", text.c_str());
}

std::map<std::string, std::uint64_t> StreamUpdater::counter_map() const {
  return {{"lines", lines_},
          {"blank_lines", blank_lines_},
          {"parse_errors", parse_errors_},
          {"oversized", oversized_},
          {"engine_errors", engine_errors_},
          {"dead_letters", dead_letters_total_}};
}

void StreamUpdater::dead_letter(const SourceLine& line, const std::string& reason) {
  ++dead_letters_total_;  // counted whether or not the file can take it
  dead_letters_->write(line.line, line.byte_offset, reason, line.text);
  note_dead_letters();
  if (options_.on_dead_letter) options_.on_dead_letter();
}

void StreamUpdater::note_dead_letters() {
  const DeadLetterWriter& dl = *dead_letters_;
  const std::uint64_t failures = dl.failures();
  const bool failing = dl.failing();
  if (failures == dl_failures_seen_ && failing == dl_failing_seen_) return;
  if (failures > dl_failures_seen_ && !dl_failing_seen_) {
    // A new failure episode (possibly already over: failed, then a retry in the same call
    // worked). Logged once, and at most once a minute however often the file flaps.
    const double now = steady_seconds();
    dl_episode_logged_ = dl_last_warned_ == 0.0 || now - dl_last_warned_ >= 60.0;
    if (dl_episode_logged_) {
      dl_last_warned_ = now;
      warn_line("dead-letter write failed (ingestion goes on; bad lines are still counted and the file is retried "
                "every second and at each checkpoint): " + dl.last_error());
    }
  }
  if (!failing && dl_episode_logged_) {
    warn_line("dead-letter file " + dl.path() + " is written again (" + std::to_string(failures) +
              " failed attempts in this process, " + std::to_string(dl.unwritten()) + " dead letters not in the file)");
    dl_episode_logged_ = false;
  }
  dl_failures_seen_ = failures;
  dl_failing_seen_ = failing;
  if (options_.on_dead_letter_writes) options_.on_dead_letter_writes(failures, failing, failing ? dl.last_error() : "");
}

std::vector<std::string> StreamUpdater::degraded() const {
  std::vector<std::string> out;
  if (!checkpoint_error_.empty()) out.push_back("checkpoint writes failing: " + checkpoint_error_);
  if (dead_letters_->failing()) out.push_back("dead-letter writes failing: " + dead_letters_->last_error());
  return out;
}

void StreamUpdater::process_line(const SourceLine& line) {
  ++lines_;
  if (line.truncated) {
    flush_batch();  // dead letters stay in line order
    ++oversized_;
    dead_letter(line, "line longer than " + std::to_string(config_.source.max_line_bytes) + " bytes");
    return;
  }
  if (all_blank(line.text)) {
    ++blank_lines_;
    return;
  }
  if (!parser_.parse_padded(line.text, line.text.size() + kSourcePadding, view_, reason_)) {
    flush_batch();  // dead letters stay in line order
    ++parse_errors_;
    dead_letter(line, reason_);
    return;
  }
  const std::size_t capacity = std::max<std::size_t>(config_.source.apply_batch, 1);
  if (batch_events_.size() < capacity) {
    batch_events_.resize(capacity);
    batch_lines_.resize(capacity);
    batch_results_.resize(capacity);
    batch_ns_.resize(capacity);
  }
  assign_event(view_, batch_events_[batch_size_]);
  BatchedLine& b = batch_lines_[batch_size_];
  b.line = line.line;
  b.byte_offset = line.byte_offset;
  b.text.assign(line.text.data(), line.text.size());
  if (++batch_size_ >= capacity) flush_batch();
}

void StreamUpdater::flush_batch() {
  if (batch_size_ == 0) return;
  const std::size_t n = batch_size_;
  batch_size_ = 0;
  // Under one engine lock at a time, each held at most source.apply_hold_ms: a backlog is
  // applied in large batches (one lock hand-over per batch, not per 64 events) while a
  // recommend waits at most one hold.
  const auto hold_ns = static_cast<std::uint64_t>(config_.source.apply_hold_ms * 1e6);
  for (std::size_t done = 0; done < n; ++apply_holds_)
    done += engine_->apply_batch(batch_events_.data() + done, n - done, batch_results_.data() + done, batch_ns_.data() + done,
                                 hold_ns);
  for (std::size_t j = 0; j < n; ++j) {
    const ApplyResult& result = batch_results_[j];
    if (result.engine_error) ++engine_errors_;
    latency_.record(batch_ns_[j]);
    if (options_.on_event) options_.on_event(batch_events_[j], result.accepted, batch_ns_[j]);
    if (!result.accepted) {
      const BatchedLine& b = batch_lines_[j];
      SourceLine line;
      line.text = b.text;
      line.line = b.line;
      line.byte_offset = b.byte_offset;
      dead_letter(line, result.reason.empty() ? std::string("rejected by the engine") : result.reason);
    }
  }
}

CheckpointRecord StreamUpdater::checkpoint_record() {
  flush_batch();  // the state must cover every line up to the recorded source offset
  CheckpointRecord record;
  // Only the dead-letter bytes really on disk: a failing dead-letter file never fails the
  // checkpoint, and what it still buffers is not recorded.
  record.dead_letter_bytes = dead_letters_->sync();
  note_dead_letters();
  std::ostringstream out;
  engine_->save(out);
  record.engine_state = std::move(out).str();
  record.baseline_version = version_;
  record.source = source_->offset();
  record.counters = counter_map();
  lines_since_checkpoint_ = 0;
  last_checkpoint_ = steady_seconds();
  return record;
}

void StreamUpdater::checkpoint_written(const std::string& path, const SourceOffset& source) {
  last_checkpoint_path_ = path;
  checkpoint_error_.clear();
  ++checkpoints_written_;
  // Only now that the state is durable may the source acknowledge upstream (Kafka commit).
  source_->on_checkpoint(source);
  if (options_.on_checkpoint) options_.on_checkpoint(wall_seconds());
}

void StreamUpdater::checkpoint_failed(const std::string& error) {
  ++checkpoint_failures_;
  checkpoint_error_ = error;
  if (options_.on_checkpoint_failure) options_.on_checkpoint_failure(checkpoint_failures_, checkpoint_error_);
}

void StreamUpdater::checkpoint() {
  collect_checkpoint(/*wait=*/true);  // one writer of the store at a time, in order
  if (!store_) {
    flush_batch();
    return;
  }
  CheckpointRecord record = checkpoint_record();
  try {
    checkpoint_written(store_->write(record), record.source);
  } catch (const IoError& e) {
    checkpoint_failed(e.what());
    throw;
  }
}

void StreamUpdater::collect_checkpoint(bool wait) {
  if (!in_flight_.valid()) return;
  if (!wait && in_flight_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
  try {
    const std::string path = in_flight_.get();
    checkpoint_written(path, in_flight_source_);
  } catch (const IoError& e) {
    checkpoint_failed(e.what());
    warn_line(std::string("checkpoint failed (ingestion goes on): ") + e.what());
  }
}

void StreamUpdater::checkpoint_periodic() {
  // A full or read-only checkpoint disk must not stop ingestion: the failure is counted and
  // reported, the next attempt comes at the next interval, and the source acknowledges
  // nothing upstream until a checkpoint is durable again.
  // The state is serialised here, where it is consistent; hashing and writing it (a
  // second or more for a large state: SHA-256, write, fdatasync, rename) run on a
  // background thread while ingestion goes on. One at a time: a trigger while the
  // previous write runs waits for the next trigger after it.
  collect_checkpoint(/*wait=*/false);
  if (in_flight_.valid() || !store_) return;
  CheckpointRecord record = checkpoint_record();
  in_flight_source_ = record.source;
  in_flight_ = std::async(std::launch::async,
                          [store = store_.get(), r = std::move(record)]() mutable { return store->write(r); });
}

void StreamUpdater::checkpoint_or_warn() {
  try {
    checkpoint();
  } catch (const IoError& e) {
    // Counted (checkpoint_failures) and reported to the hook by checkpoint().
    warn_line(std::string("checkpoint failed (ingestion goes on): ") + e.what());
  }
}

void StreamUpdater::maybe_swap() {
  LoadedSnapshot next = watcher_->take_pending();
  // Already in use: an admin reload swapped to it while the watcher was loading it.
  if (!next.model || next.info.version == version_) return;
  const auto t0 = steady_seconds();
  engine_->swap_baseline(next.model);
  version_ = next.info.version;
  ++swaps_;
  if (options_.on_baseline) options_.on_baseline(version_, next.model->data_cutoff);
  log_line("swapped to baseline " + version_ + " in " + std::to_string(steady_seconds() - t0) + " s");
  // The new baseline is part of what a restart must reproduce: checkpoint right away. A
  // failing disk does not stop ingestion here either (a restart from the previous
  // checkpoint swaps again). Written on this thread: swaps are rare, and "right away" must
  // not wait for a later trigger when a periodic write is still running.
  checkpoint_or_warn();
}

void StreamUpdater::periodic(bool force_stats) {
  collect_checkpoint(/*wait=*/false);  // idle too: a finished write is acknowledged upstream at once
  const double now = steady_seconds();
  if (store_ && config_.checkpoint.every_seconds > 0 && lines_since_checkpoint_ > 0 &&
      now - last_checkpoint_ >= config_.checkpoint.every_seconds)
    checkpoint_periodic();
  const double interval = config_.stats.interval_seconds;
  if (!options_.log || ((interval <= 0 || now - last_stats_ < interval) && !force_stats)) return;
  const StreamCounters c = engine_->counters();
  const double dt = now - last_stats_;
  const double rate = dt > 0 ? static_cast<double>(c.events - last_stats_events_) / dt : 0.0;
  const double watermark = engine_->watermark();
  const double lag = watermark > 0 ? wall_seconds() - watermark : 0.0;
  std::fprintf(options_.log,
               "freshrec-stream: events %llu (%.0f/s) dead_letters %llu guard accepts %llu rollbacks %llu "
               "lag %.1fs apply p50 %.2fus p99 %.2fus checkpoint_failures %llu dead_letter_write_failures %llu%s\n",
               static_cast<unsigned long long>(c.events), rate,
               static_cast<unsigned long long>(dead_letters_total_), static_cast<unsigned long long>(c.guard_accepts),
               static_cast<unsigned long long>(c.guard_rollbacks), lag, latency_.quantile_ns(0.5) / 1e3,
               latency_.quantile_ns(0.99) / 1e3, static_cast<unsigned long long>(checkpoint_failures_),
               static_cast<unsigned long long>(dead_letters_->failures()),
               degraded().empty() ? "" : " DEGRADED");
  std::fflush(options_.log);
  last_stats_ = now;
  last_stats_events_ = c.events;
}

nlohmann::json StreamUpdater::run(const std::atomic<bool>& stop) {
  run_started_ = steady_seconds();
  last_checkpoint_ = last_stats_ = run_started_;
  run_start_events_ = last_stats_events_ = engine_->counters().events;
  const bool follow_to_eof = options_.until_eof && config_.source.type == SourceType::kFollow;
  SourceLine line;
  stopped_by_ = "eof";
  for (;;) {
    if (stop.load(std::memory_order_relaxed)) {
      stopped_by_ = "signal";
      // Acknowledged events (the HTTP journal) are applied before the final checkpoint, so a
      // client that got 200 and then stopped the service finds them in this run's state too
      // (they would survive a restart either way). Bounded: clients still posting during
      // the shutdown cannot keep it from ending.
      std::uint64_t drained = 0;
      if (source_->backlog_acknowledged())
        while (drained++ < 1'000'000 && source_->next(line) == SourceStatus::kLine) {
          process_line(line);
          ++run_lines_;
          ++lines_since_checkpoint_;
        }
      break;
    }
    if (watcher_ && watcher_->has_pending()) {
      flush_batch();
      maybe_swap();
    }
    if (has_posted_.load(std::memory_order_acquire)) {
      flush_batch();  // admin tasks see every line read so far applied
      run_posted();
    }
    const SourceStatus status = source_->next(line);
    if (status == SourceStatus::kLine) {
      process_line(line);
      ++run_lines_;
      ++lines_since_checkpoint_;
      // Only with a store (without one nothing is written and the count never resets, so
      // every later line would flush the apply batch on its own: one engine lock per event),
      // and not while a write is in flight (periodic() collects it within 1024 lines).
      if (store_ && !in_flight_.valid() && config_.checkpoint.every_events > 0 &&
          lines_since_checkpoint_ >= config_.checkpoint.every_events)
        checkpoint_periodic();
      if (options_.stop_after_lines > 0 && run_lines_ >= options_.stop_after_lines) {
        flush_batch();
        // Test hook: die as `kill -9` would, at a point where no background checkpoint write
        // is in flight, so the checkpoints on disk are those of the lines before it (a kill
        // during a write is what tests/fault/kill_restart.sh's random kills exercise).
        if (options_.crash) {
          if (in_flight_.valid()) in_flight_.wait();
          std::raise(SIGKILL);
        }
        stopped_by_ = "stop-after";
        break;
      }
      if ((run_lines_ & 1023) == 0) periodic(false);
      continue;
    }
    flush_batch();  // nothing more right now: make what was read visible at once
    if (status == SourceStatus::kEnd || follow_to_eof) break;
    periodic(false);
    dead_letters_->flush();  // idle: let operators see the dead letters now
    note_dead_letters();
    // Wait in short slices so SIGTERM and posted tasks are honoured promptly; a source
    // that can be woken (HTTP journal, Kafka) returns as soon as data arrives.
    for (int slept = 0; slept < config_.source.poll_ms && !stop.load(std::memory_order_relaxed) &&
                        !has_posted_.load(std::memory_order_acquire);
         slept += 20) {
      if (source_->wait(std::min(20, config_.source.poll_ms - slept))) break;
    }
  }
  flush_batch();
  run_elapsed_ = steady_seconds() - run_started_;
  // The last checkpoint may fail like any other (disk full): counted in the stats
  // ("checkpoint_failures") and logged, and the run still ends with its stats.
  collect_checkpoint(/*wait=*/true);
  if (store_ && (lines_since_checkpoint_ > 0 || checkpoints_written_ == 0)) checkpoint_or_warn();
  dead_letters_->sync();
  note_dead_letters();
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    finished_ = true;  // later posts fail at once instead of waiting for a loop that is gone
  }
  run_posted();  // admin requests that raced the stop still get an answer
  periodic(true);
  return stats();
}

nlohmann::json StreamUpdater::stats() const {
  const StreamCounters c = engine_->counters();
  const double elapsed = run_elapsed_ > 0 ? run_elapsed_ : steady_seconds() - run_started_;
  const std::uint64_t run_events = c.events - run_start_events_;
  const SourceOffset offset = source_->offset();
  nlohmann::json j;
  j["events"] = c.events;
  j["events_this_run"] = run_events;
  j["lines_this_run"] = run_lines_;
  j["events_per_s"] = elapsed > 0 ? static_cast<double>(run_events) / elapsed : 0.0;
  j["elapsed_s"] = elapsed;
  j["apply_p50_us"] = latency_.quantile_ns(0.5) / 1e3;
  j["apply_p99_us"] = latency_.quantile_ns(0.99) / 1e3;
  j["apply_max_us"] = static_cast<double>(latency_.max_ns()) / 1e3;
  j["apply_holds"] = apply_holds_;  // engine lock holds this run (events / holds = the mean batch)
  j["dead_letters"] = dead_letters_total_;
  j["state_digest"] = engine_->state_digest();
  j["guard_accepts"] = c.guard_accepts;
  j["guard_rollbacks"] = c.guard_rollbacks;
  j["last_guard_loss"] = c.last_guard_loss;
  j["explore"] = {{"impressions", c.impressions},
                  {"rewards", c.impression_rewards},
                  {"weak_negatives", c.weak_negatives},
                  {"users", c.explored_users}};
  j["counters"] = {{"lines", lines_},
                   {"blank_lines", blank_lines_},
                   {"parse_errors", parse_errors_},
                   {"oversized", oversized_},
                   {"engine_errors", engine_errors_},
                   {"rejected", c.rejected},
                   {"sgd_updates", c.sgd_updates},
                   {"non_finite_skipped", c.non_finite_skipped},
                   {"foldins", c.foldins},
                   {"evicted_users", c.evicted_users},
                   {"new_users", c.new_users},
                   {"new_items", c.new_items},
                   {"checkpoints_written", checkpoints_written_},
                   {"checkpoint_failures", checkpoint_failures_},
                   {"dead_letter_write_failures", dead_letters_->failures()},
                   {"dead_letters_unwritten", dead_letters_->unwritten()},
                   {"swaps", swaps_},
                   {"swaps_refused", watcher_ ? watcher_->refused() : 0}};
  j["watermark"] = engine_->watermark();
  j["baseline_version"] = version_;
  j["restored_from"] = restored_from_.empty() ? nlohmann::json(nullptr) : nlohmann::json(restored_from_);
  j["source"] = {{"name", source_->describe()}, {"line", offset.line}, {"byte_offset", offset.byte_offset}};
  j["stopped_by"] = stopped_by_;
  j["degraded"] = degraded();
  return j;
}

void install_stop_signals(std::atomic<bool>& stop) {
  g_stop = &stop;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR and the loop checks the flag
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

}  // namespace freshrec
