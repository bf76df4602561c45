#pragma once
/// The production streaming process: the StreamUpdater (cpu/stream/updater.hpp) plus the
/// HTTP API, the Redis feature store, the HTTP-journal and Kafka sources and the
/// Prometheus metrics. pipelines/stream_main.cpp is a thin CLI around it; tests drive it
/// in-process or as a child process.
///
/// Threads: the updater loop (the single engine writer, on the caller of run()); HTTP
/// workers (engine readers; admin requests are posted to the updater loop); the Redis
/// writer (an engine reader). HTTP answers /healthz at once and /readyz 503 until the
/// model and the checkpoint are loaded; after that 200, its body listing under
/// "degraded" what is failing while serving and ingestion go on (checkpoint writes,
/// dead-letter writes).
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cpu/serve/metrics.hpp"
#include "cpu/stream/latency_budget.hpp"
#include "cpu/stream/updater.hpp"
#include "cpu/stream/updater_config.hpp"

namespace httplib {
class Server;
}

namespace freshrec {

class HttpJournal;
class RedisFeatureStore;
struct KafkaSourceStats;

class StreamService {
 public:
  /// Validates the serving settings (InputError naming the key), starts the HTTP server
  /// when http.enabled (IoError when the port cannot be bound). The model is loaded by run().
  StreamService(const StreamProcessConfig& config, const UpdaterOptions& options);
  /// Stops the HTTP server and the Redis writer (never throws).
  ~StreamService();
  StreamService(const StreamService&) = delete;
  StreamService& operator=(const StreamService&) = delete;

  /// Loads the model and checkpoint (the updater), serves and ingests until the source
  /// ends or `stop` becomes true, then checkpoints, drains Redis (bounded) and returns
  /// the updater's stats plus "redis" and "http" sections.
  nlohmann::json run(const std::atomic<bool>& stop);

  /// The bound HTTP port (useful with http.port = 0); 0 when HTTP is off.
  int http_port() const noexcept { return port_; }
  /// The Prometheus text of /metrics.
  std::string metrics_text() const;
  /// The /readyz body once ready: {"status":"ready","ready":true,"model_version",
  /// "degraded":["checkpoint writes failing: <path>: <reason>", …]} ("degraded" empty
  /// when healthy).
  nlohmann::json readiness() const;

 private:
  void install_routes();
  std::string admin_token() const;
  StreamUpdater* updater() const noexcept { return updater_.load(std::memory_order_acquire); }

  StreamProcessConfig config_;
  UpdaterOptions options_;
  std::shared_ptr<HttpJournal> journal_;
  std::unique_ptr<KafkaSourceStats> kafka_stats_;
  std::unique_ptr<RedisFeatureStore> redis_;
  std::unique_ptr<httplib::Server> server_;
  std::thread server_thread_;
  int port_ = 0;
  std::atomic<StreamUpdater*> updater_{nullptr};

  // Metrics written by the updater's hooks and the HTTP workers.
  LatencyBuckets apply_latency_{apply_latency_bounds()};
  LatencyBuckets recommend_latency_{request_latency_bounds()};
  /// Gathers a recommend's signals under http.recommend_budget_ms (issue 8's latency budget).
  /// Constructed with the config (its threads take http.reader_nice).
  stream::ParallelFeatureFetcher fetcher_;
  std::atomic<std::uint64_t> events_accepted_{0};
  std::atomic<std::uint64_t> events_rejected_{0};
  std::atomic<std::uint64_t> dead_letters_{0};
  std::atomic<std::uint64_t> http_events_accepted_{0};
  std::atomic<std::uint64_t> http_events_rejected_{0};
  std::atomic<std::uint64_t> http_events_throttled_{0};  ///< POSTs refused by the backlog limit
  std::atomic<std::uint64_t> http_errors_{0};
  std::atomic<double> last_checkpoint_wall_{0.0};
  std::atomic<std::uint64_t> checkpoint_failures_{0};
  std::atomic<std::uint64_t> dead_letter_write_failures_{0};
  mutable std::mutex health_mutex_;
  std::string checkpoint_error_;   // guarded by health_mutex_; "" while checkpoints work
  std::string dead_letter_error_;  // guarded by health_mutex_; "" while dead-letter writes work
  std::atomic<double> model_loaded_wall_{0.0};
  std::atomic<double> model_data_cutoff_{0.0};
  mutable std::mutex version_mutex_;
  std::string model_version_;  // guarded by version_mutex_
  double started_wall_ = 0.0;
};

}  // namespace freshrec
