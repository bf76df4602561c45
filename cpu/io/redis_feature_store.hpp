#pragma once
/// The real-time feature store: after each event the user's session features are written
/// to Redis as `rt_features:{user_id}` (JSON, SETEX with a TTL), for other services.
///
/// Ingestion never waits on Redis: the updater only marks the user dirty in a bounded
/// queue (a user already waiting is not queued twice — the write reads the features when
/// it is sent, so it carries the newest state). One thread drains the queue, reads each
/// user's features from the engine (a reader, like an HTTP request) and pipelines
/// `batch` writes per round trip. When Redis is down the thread reconnects with
/// exponential backoff; the queue keeps the users (bounded: beyond queue_capacity new
/// users are dropped and counted), ingestion goes on.
///
/// Idempotent, newest event time wins: each write is a Lua script (EVALSHA) that compares
/// the stored value's "event_time" with the new one and leaves a newer value alone, so a
/// retried, duplicated or reordered write (two processes after a rebalance, a replay
/// after a restart) never overwrites fresher features with older ones.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "cpu/stream/stream_engine.hpp"
#include "cpu/stream/updater_config.hpp"

namespace freshrec {

/// host/port/password/db parsed from redis://[[user]:password@]host[:port][/db].
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int db = 0;
};

/// Parses `url` (InputError naming redis.url when malformed), then applies the explicit
/// redis.password / redis.db settings over it.
RedisEndpoint parse_redis_endpoint(const RedisSettings& settings);

/// The JSON value written for a user (the brief's feature names, plus user_id and
/// event_time = the user's last event time, the idempotency version).
nlohmann::json features_json(std::string_view user_id, const SessionFeatures& f);

/// Counters of the store (thread-safe reads).
struct RedisStoreStats {
  std::uint64_t written = 0;        ///< values stored
  std::uint64_t stale_skipped = 0;  ///< writes refused because Redis held a newer event time
  std::uint64_t dropped = 0;        ///< updates dropped because the queue was full
  std::uint64_t errors = 0;         ///< failed round trips (connection, reply errors)
  std::uint64_t reconnects = 0;     ///< successful (re)connections
  std::uint64_t queued = 0;         ///< users waiting now
  bool connected = false;
};

class RedisFeatureStore {
 public:
  /// Starts the writer thread; connects lazily (a Redis that is down at start is retried).
  /// `engine` must outlive the store. `warn` gets one line per state change (nullptr = none).
  RedisFeatureStore(const RedisSettings& settings, const StreamEngine& engine, std::FILE* warn);
  /// Stops and joins the thread (never throws); call flush() first to drain.
  ~RedisFeatureStore();
  RedisFeatureStore(const RedisFeatureStore&) = delete;
  RedisFeatureStore& operator=(const RedisFeatureStore&) = delete;

  /// Marks `user_id` dirty (cheap; the updater's per-event hook). Never blocks on Redis.
  void notify(std::string_view user_id);
  /// Waits up to `timeout_seconds` until the queue is empty and written; true when it is.
  bool flush(double timeout_seconds);
  RedisStoreStats stats() const;

 private:
  void run();
  bool connect();
  bool write_batch(const std::vector<std::string>& users);

  RedisSettings settings_;
  RedisEndpoint endpoint_;
  const StreamEngine& engine_;
  std::FILE* warn_;
  void* context_ = nullptr;  // redisContext*, owned; only the writer thread touches it
  std::string script_sha_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string> queued_;
  std::size_t in_flight_ = 0;
  bool stop_ = false;
  RedisStoreStats stats_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace freshrec
