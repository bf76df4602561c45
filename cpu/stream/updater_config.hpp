#pragma once
/// Settings of the streaming updater process (configs/stream.yaml): where the model,
/// the events, the checkpoints and the dead letters live, and the engine's StreamConfig.
/// Plain structs with defaults; cpu/config/stream_config_yaml.cpp maps YAML onto them.
#include <cstdint>
#include <map>
#include <string>

#include "cpu/stream/stream_config.hpp"

namespace freshrec {

/// Where events come from.
enum class SourceType : std::uint8_t {
  kFile = 0,    ///< an NDJSON file read once to its end
  kFollow = 1,  ///< an NDJSON file followed as it grows, surviving rotation (tail -F)
  kStdin = 2,   ///< NDJSON on standard input
  kHttp = 3,    ///< POST /v1/events: lines appended durably to http.journal, followed like kFollow
  kKafka = 4,   ///< a Kafka topic in a consumer group (kafka:), offsets in our checkpoints
};

/// "model:" — the nightly snapshots the engine runs on.
struct ModelSettings {
  std::string dir = "models";  ///< the directory holding LATEST and <version>/
  int poll_ms = 1000;          ///< how often the watcher re-reads LATEST for a hot swap (0 = never)
};

/// "source:" — the event stream.
struct SourceSettings {
  SourceType type = SourceType::kFile;
  std::string path;            ///< NDJSON file (file, follow); ignored for stdin
  int poll_ms = 200;           ///< follow/stdin: sleep between polls when no new line is there
  std::size_t max_line_bytes = std::size_t{1} << 20;  ///< longer lines are dead-lettered, not buffered
  /// Parsed events applied together under one engine lock (at most this many; fewer when
  /// the source has nothing more right now, so a trickle is applied at once).
  std::size_t apply_batch = 512;
  /// Longest hold of the engine lock by one batch, milliseconds (0 = the whole batch): what a
  /// recommend may wait for the writer. Each hold lasts as long as the writer waited for the
  /// lock (at least 0.1 ms, at most this); a batch that takes longer is applied in several.
  double apply_hold_ms = 2.0;
};

/// "checkpoint:" — durable state + source offset as one atomic file.
struct CheckpointSettings {
  std::string dir;                         ///< empty = no checkpoints (and no recovery)
  std::uint64_t every_events = 100000;     ///< lines consumed between checkpoints (0 = off)
  double every_seconds = 60.0;             ///< wall seconds between checkpoints (0 = off)
  int keep = 2;                            ///< checkpoints kept (the newest ones)
};

/// "dead_letter:" — where bad lines go.
struct DeadLetterSettings {
  std::string path = "stream-dead-letters.ndjson";  ///< appended JSON lines; empty = count only
  std::size_t max_raw_bytes = 4096;                 ///< a bad line's text is cut to this many bytes
};

/// "stats:" — observability.
struct StatsSettings {
  double interval_seconds = 10.0;  ///< one stats line on stderr this often (0 = never)
};

/// "http:" — the serving API (cpu/serve/http_api.hpp).
struct HttpSettings {
  bool enabled = false;                   ///< serve at all
  std::string host = "127.0.0.1";         ///< bind address; loopback unless deliberately opened
  int port = 8080;                        ///< TCP port (0 = any free port, see the log line)
  int threads = 8;                        ///< worker threads answering requests
  /// Nice value added to the threads that answer requests (HTTP workers and the recommend
  /// fetchers), 0-19: on a machine short of cores, readers then yield CPU to the single
  /// writer thread that applies events (freshness first). 0 = same priority as the writer.
  /// Measured on 2 cores under wrk + 100K events/s offered: 0 / 10 applied 79.8K / 99.8K
  /// events/s.
  int reader_nice = 10;
  std::size_t max_body_bytes = std::size_t{16} << 20;  ///< larger bodies get 413
  double request_timeout_seconds = 5.0;   ///< read/write timeout of one request
  std::string admin_token;                ///< bearer token of /v1/admin/*; "" = read admin_token_env
  std::string admin_token_env = "FRESHREC_ADMIN_TOKEN";  ///< env var holding the token when admin_token is ""
  bool require_token_for_events = false;  ///< POST /v1/events needs the token too
  std::string journal = "stream-http-journal.ndjson";  ///< where accepted POSTed lines are appended (fsync before 200)
  /// Backpressure: POST /v1/events answers 503 (Retry-After: 1) while the journal holds more
  /// than this many bytes the updater has not read yet, so a sustained overload makes
  /// clients back off instead of growing the journal and the freshness lag without bound.
  /// 256 MiB is ~2M events, ~20 s of 100K events/s. 0 = no limit.
  std::size_t max_backlog_bytes = std::size_t{256} << 20;
  int max_k = 1000;                       ///< largest k a recommend request may ask for
  double recommend_budget_ms = 20.0;      ///< deadline of one recommend's signal gathering (late signals are dropped)
  /// The nightly-only fallback ranking starts only when the full blend is still running this
  /// long after the request began (0: both at once). Not above the budget.
  double recommend_hedge_ms = 5.0;
  /// Fault injection for benchmarks and tests, never for production: every full-blend fetch
  /// of a recommend first sleeps this long (a slow source, as issue 8's benchmark asks). 0 = off.
  double inject_realtime_delay_ms = 0.0;
};

/// "redis:" — the real-time feature store (cpu/io/redis_feature_store.hpp).
struct RedisSettings {
  std::string url;                        ///< redis://[:password@]host:port[/db]; "" = disabled
  std::string password;                   ///< AUTH password when the URL has none ("" = no AUTH)
  int db = -1;                            ///< SELECT db when >= 0 (overrides the URL's /db)
  int ttl_seconds = 86400;                ///< SETEX TTL of rt_features:{user}
  std::string key_prefix = "rt_features:";  ///< key = prefix + user_id
  std::size_t queue_capacity = 100000;    ///< distinct users waiting to be written; beyond it updates are dropped (counted)
  std::size_t batch = 256;                ///< writes per pipelined round trip
  double connect_timeout_seconds = 1.0;   ///< connect / command timeout
  double max_backoff_seconds = 5.0;       ///< reconnect backoff doubles from 50 ms up to this
};

/// "kafka:" — the Kafka source (cpu/io/kafka_source.hpp).
struct KafkaSettings {
  std::string brokers = "127.0.0.1:9092";  ///< bootstrap.servers
  std::string topic = "freshrec-events";   ///< key = user_id, value = one NDJSON event
  std::string group_id = "freshrec-stream";  ///< consumer group; every process of a scale-out shares it
  bool scale_out = false;                  ///< several processes share the group: item vectors frozen (see README)
  std::map<std::string, std::string> properties;  ///< extra librdkafka properties (e.g. security.protocol)
};

/// The whole updater process config.
struct StreamProcessConfig {
  ModelSettings model;
  SourceSettings source;
  CheckpointSettings checkpoint;
  DeadLetterSettings dead_letter;
  StatsSettings stats;
  HttpSettings http;
  RedisSettings redis;
  KafkaSettings kafka;
  StreamConfig stream;   ///< the engine's knobs ("stream:")
  std::string origin;    ///< the file it was read from (for messages)
};

}  // namespace freshrec
