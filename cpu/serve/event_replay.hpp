#pragma once
/// Replays an NDJSON event log into a running updater, for demos and load tests: into
/// Kafka (one message per line, key = user_id, value = the line as written) or into the
/// HTTP source (POST /v1/events, N lines a request), at a chosen rate (events/s) or a
/// speed-up of event time. pipelines/replay_main.cpp is the CLI around it.
///
/// Lines are sent in file order. Per user that order is kept end to end: one HTTP request
/// at a time on one keep-alive connection, and an idempotent Kafka producer (the default;
/// no reordering on retries) writing each user's events to one partition.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace freshrec {

/// Where the events go.
enum class ReplayTarget { kHttp, kKafka };

/// Everything one replay run needs; plain defaults, validated by replay_events().
struct ReplayOptions {
  std::string input;                ///< NDJSON file of the shared event schema
  ReplayTarget target = ReplayTarget::kHttp;

  // HTTP target.
  std::string http_url = "http://127.0.0.1:8080";  ///< base URL of freshrec-stream; POSTs to <url>/v1/events
  std::string token;                ///< bearer token (http.require_token_for_events); "" = none
  std::size_t batch_lines = 500;    ///< lines per POST (a partial batch goes out when pacing waits)
  double http_timeout_seconds = 10; ///< connect/read/write timeout of one request
  int retries = 5;                  ///< extra tries of a request on connection errors and 503/5xx

  // Kafka target.
  std::string brokers;              ///< bootstrap.servers
  std::string topic;                ///< the events topic
  std::map<std::string, std::string> kafka_properties;  ///< extra librdkafka producer properties (override ours)
  int delivery_timeout_ms = 30000;  ///< message.timeout.ms: an undelivered message counts as failed after this

  // Pacing: at most one of rate and speedup; neither = as fast as the target takes them.
  double rate = 0;                  ///< events per wall second (0 = off)
  double speedup = 0;               ///< event-time seconds per wall second, e.g. 60 = 1 h of log per minute (0 = off)
  double max_batch_delay_ms = 5;    ///< HTTP: a partial batch never waits longer than this for the next due event
  std::uint64_t limit = 0;          ///< send at most this many events (0 = the whole file)
  bool strict = false;              ///< a line that is not a valid event is an InputError instead of being skipped

  std::FILE* log = stderr;          ///< progress lines and the first few warnings (nullptr = silent)
  double progress_seconds = 5;      ///< a progress line this often (0 = never)
};

/// What a run did. `sent` counts events the target acknowledged (HTTP "accepted",
/// Kafka delivery reports), `failed` those it refused or never acknowledged.
struct ReplaySummary {
  std::uint64_t lines = 0;          ///< lines read from the file (blank ones included)
  std::uint64_t invalid = 0;        ///< lines skipped: not an event of the schema (never sent)
  std::uint64_t sent = 0;
  std::uint64_t failed = 0;
  std::uint64_t requests = 0;       ///< HTTP requests made (retries included); Kafka: 0
  std::uint64_t throttled = 0;      ///< HTTP 503 + Retry-After answers (backpressure) waited out
  double elapsed_seconds = 0;       ///< wall time from the first send to the last acknowledgement
  double event_time_span = 0;       ///< last minus first event time of the events sent (seconds)
  bool stopped = false;             ///< ended early by the stop flag
  std::string error;                ///< why the run was aborted (target refused or unreachable); "" = not aborted

  /// Acknowledged events per wall second.
  double achieved_rate() const noexcept { return elapsed_seconds > 0 ? static_cast<double>(sent) / elapsed_seconds : 0.0; }
  nlohmann::json to_json() const;
};

/// The schedule of a replay: when (wall seconds after the start) the n-th event is due.
/// Never earlier than the previous event, so out-of-order event times never burst.
class ReplayPacer {
 public:
  /// rate > 0: event n at n / rate; speedup > 0: at (t - t_first) / speedup;
  /// both 0: everything due at once. Throws InputError when both are set or either is
  /// negative or not finite.
  ReplayPacer(double rate, double speedup);
  /// Seconds after the start at which the next event (event time `event_time`) is due.
  double next_due(double event_time);

 private:
  double rate_;
  double speedup_;
  std::uint64_t index_ = 0;
  double first_time_ = 0;
  double last_due_ = 0;
};

/// Sends `options.input` to the target; returns once every sent event is acknowledged or
/// counted failed, the limit is reached or `stop` (may be null) becomes true.
/// Throws InputError for bad options (naming the option) or an unreadable input file
/// (naming it) and, with `strict`, for the first invalid line (naming file and line).
/// A target that refuses the requests (401/403/404/409/413) or stays unreachable after
/// the retries does not throw: the run stops, `error` says why and the unsent events of
/// the current batch count as failed.
ReplaySummary replay_events(const ReplayOptions& options, const std::atomic<bool>* stop = nullptr);

}  // namespace freshrec
