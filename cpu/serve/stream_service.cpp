#include "cpu/serve/stream_service.hpp"

#include <chrono>
#include <cstdlib>

#include <httplib.h>
// <resolv.h> (pulled in by httplib) defines _res as a macro; Eigen uses it as a name.
#undef _res

#include "cpu/io/http_journal.hpp"
#include "cpu/io/kafka_source.hpp"
#include "cpu/io/redis_feature_store.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/thread_priority.hpp"

namespace freshrec {
namespace {

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// cpp-httplib's pool with each worker's priority lowered by `nice` on its first task
// (http.reader_nice): the workers are created inside ThreadPool, so the task does it.
class NiceThreadPool final : public httplib::TaskQueue {
 public:
  NiceThreadPool(std::size_t threads, int nice) : pool_(threads), nice_(nice) {}
  void enqueue(std::function<void()> fn) override {
    pool_.enqueue([fn = std::move(fn), nice = nice_] {
      thread_local bool lowered = false;
      if (!lowered) {
        lower_current_thread_priority(nice);  // best effort: refused means the default priority
        lowered = true;
      }
      fn();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  int nice_;
};
}  // namespace

StreamService::StreamService(const StreamProcessConfig& config, const UpdaterOptions& options)
    : config_(config),
      options_(options),
      fetcher_(4, 2, [nice = config.http.reader_nice] { lower_current_thread_priority(nice); }),
      started_wall_(wall_now()) {
  if (!config_.redis.url.empty()) parse_redis_endpoint(config_.redis);  // fail on a bad URL before serving
  if (config_.source.type == SourceType::kHttp) journal_ = std::make_shared<HttpJournal>(config_.http.journal);
  if (config_.source.type == SourceType::kKafka) kafka_stats_ = std::make_unique<KafkaSourceStats>();
  if (!config_.http.enabled) return;

  server_ = std::make_unique<httplib::Server>();
  const int threads = config_.http.threads;
  const int nice = config_.http.reader_nice;
  server_->new_task_queue = [threads, nice]() -> httplib::TaskQueue* {
    if (nice <= 0) return new httplib::ThreadPool(static_cast<std::size_t>(threads));
    return new NiceThreadPool(static_cast<std::size_t>(threads), nice);
  };
  server_->set_payload_max_length(config_.http.max_body_bytes);
  const auto timeout = std::chrono::duration<double>(config_.http.request_timeout_seconds);
  server_->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  server_->set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  // Answers go out as headers then body; with Nagle on, a keep-alive client waits out its
  // peer's delayed ACK (~40 ms) on every request.
  server_->set_tcp_nodelay(true);
  install_routes();
  if (config_.http.port == 0) {
    port_ = server_->bind_to_any_port(config_.http.host);
  } else {
    port_ = server_->bind_to_port(config_.http.host, config_.http.port) ? config_.http.port : -1;
  }
  if (port_ <= 0)
    throw IoError("http: cannot bind " + config_.http.host + ":" + std::to_string(config_.http.port) +
                  " (in use, or not a local address)");
  server_thread_ = std::thread([this] { server_->listen_after_bind(); });
  if (options_.log)
    std::fprintf(options_.log, "freshrec-stream: http listening on %s:%d\n", config_.http.host.c_str(), port_);
}

StreamService::~StreamService() {
  if (server_) server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
  redis_.reset();
}

std::string StreamService::admin_token() const {
  if (!config_.http.admin_token.empty()) return config_.http.admin_token;
  if (config_.http.admin_token_env.empty()) return "";
  const char* env = std::getenv(config_.http.admin_token_env.c_str());
  return env ? env : "";
}

nlohmann::json StreamService::run(const std::atomic<bool>& stop) {
  UpdaterOptions o = options_;
  const std::size_t max_line = config_.source.max_line_bytes;
  o.open_source = [this, max_line](const StreamProcessConfig& c) -> std::unique_ptr<EventSource> {
    if (c.source.type == SourceType::kHttp) return open_journal_source(journal_, max_line);
    // --until-eof: a bounded replay of the topic in a fixed order, ending at its end.
    if (c.source.type == SourceType::kKafka)
      return open_kafka_source(c.kafka, max_line, options_.warn, kafka_stats_.get(), options_.until_eof);
    throw InputError("source.type: no serving-layer source for this type");
  };
  o.on_event = [this, caller = options_.on_event](const Event& e, bool accepted, std::uint64_t ns) {
    apply_latency_.record(static_cast<double>(ns) * 1e-9);
    (accepted ? events_accepted_ : events_rejected_).fetch_add(1, std::memory_order_relaxed);
    if (accepted && redis_) redis_->notify(e.user_id);
    if (caller) caller(e, accepted, ns);  // the embedding program's own hook, after ours
  };
  o.on_dead_letter = [this] { dead_letters_.fetch_add(1, std::memory_order_relaxed); };
  o.on_checkpoint = [this](double wall) {
    last_checkpoint_wall_.store(wall);
    std::lock_guard<std::mutex> lock(health_mutex_);
    checkpoint_error_.clear();
  };
  o.on_checkpoint_failure = [this](std::uint64_t failures, const std::string& error) {
    checkpoint_failures_.store(failures);
    std::lock_guard<std::mutex> lock(health_mutex_);
    checkpoint_error_ = error;
  };
  o.on_dead_letter_writes = [this](std::uint64_t failures, bool failing, const std::string& error) {
    dead_letter_write_failures_.store(failures);
    std::lock_guard<std::mutex> lock(health_mutex_);
    dead_letter_error_ = failing ? error : std::string();
  };
  o.on_baseline = [this](const std::string& version, double cutoff) {
    std::lock_guard<std::mutex> lock(version_mutex_);
    model_version_ = version;
    model_data_cutoff_.store(cutoff);
    model_loaded_wall_.store(wall_now());
  };

  StreamUpdater updater(config_, o);
  if (!config_.redis.url.empty()) redis_ = std::make_unique<RedisFeatureStore>(config_.redis, updater.engine(), o.warn);
  updater_.store(&updater, std::memory_order_release);  // /readyz turns 200
  nlohmann::json stats;
  try {
    stats = updater.run(stop);
  } catch (...) {
    updater_.store(nullptr, std::memory_order_release);
    if (server_) server_->stop();
    if (server_thread_.joinable()) server_thread_.join();
    fetcher_.wait_idle();  // late recommend fetches read the engine
    redis_.reset();
    throw;
  }
  // Requests in flight finish against a consistent engine; then nothing reads it.
  if (server_) server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
  fetcher_.wait_idle();  // late recommend fetches read the engine
  updater_.store(nullptr, std::memory_order_release);
  if (redis_) {
    const bool drained = redis_->flush(2.0);
    const RedisStoreStats r = redis_->stats();
    stats["redis"] = {{"written", r.written}, {"stale_skipped", r.stale_skipped}, {"dropped", r.dropped},
                      {"errors", r.errors},   {"reconnects", r.reconnects},       {"queued", r.queued},
                      {"drained", drained}};
    redis_.reset();
  }
  stats["http"] = {{"events_accepted", http_events_accepted_.load()},
                   {"events_rejected", http_events_rejected_.load()},
                   {"posts_throttled", http_events_throttled_.load()},
                   {"recommend_requests", recommend_latency_.count()}};
  return stats;
}

}  // namespace freshrec
