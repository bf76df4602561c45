#pragma once
// Shared by the serving tests (serve_test.cpp, serve_faults_test.cpp, replay_test.cpp): a
// temp dir, free ports, a real redis-server of our own, librdkafka's mock cluster (with a
// plain consumer to read a topic back), the Serve fixture (a nightly model trained once per
// test binary) and an in-process StreamService runner.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <httplib.h>
#undef _res  // <resolv.h> (via httplib) defines it; Eigen uses the name
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <nlohmann/json.hpp>

#include "cpu/config/nightly_config.hpp"
#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/data/generator.hpp"
#include "cpu/io/redis_feature_store.hpp"
#include "cpu/nightly/nightly_job.hpp"
#include "cpu/serve/stream_service.hpp"

namespace freshrec {
namespace {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/freshrec_test_XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { if (!std::getenv("KEEP")) std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Polls `done` every 10 ms until it holds or `timeout` seconds pass.
inline bool eventually(double timeout, const std::function<bool()>& done) {
  const auto t0 = Clock::now();
  while (seconds_since(t0) < timeout) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

inline bool have_binary(const char* name) {
  return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

inline pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // One open file for both streams (one offset): stdout's writes cannot overwrite stderr's.
    std::freopen(log.c_str(), "w", stdout);
    ::dup2(::fileno(stdout), ::fileno(stderr));
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

inline int stop_and_wait(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// A redis-server of our own on a free loopback port, without persistence. kill() is a
// SIGKILL (no shutdown, no save); start() brings a fresh, empty one up on the same port.
class RedisServer {
 public:
  explicit RedisServer(const TempDir& dir) : dir_(dir), port_(free_port()) { start(); }
  ~RedisServer() {
    if (pid_ > 0) stop_and_wait(pid_);
  }
  int port() const { return port_; }
  // Starts redis-server (again) on port(); true once it answers.
  bool start() {
    pid_ = spawn({"/bin/sh", "-c",
                  "exec redis-server --port " + std::to_string(port_) +
                      " --bind 127.0.0.1 --save '' --appendonly no --dir " + dir_.file("")},
                 dir_.file("redis-" + std::to_string(port_) + "-" + std::to_string(++starts_) + ".log"));
    return eventually(10, [&] { return get("ping-probe").second; });
  }
  // SIGKILL of the server process, reaped; the port stops answering at once.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // (value, reachable)
  std::pair<std::string, bool> get(const std::string& key) const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (!c || c->err) {
      if (c) redisFree(c);
      return {"", false};
    }
    auto* r = static_cast<redisReply*>(redisCommand(c, "GET %s", key.c_str()));
    std::pair<std::string, bool> out{"", r != nullptr};
    if (r && r->type == REDIS_REPLY_STRING) out.first.assign(r->str, r->len);
    if (r) freeReplyObject(r);
    redisFree(c);
    return out;
  }

 private:
  const TempDir& dir_;
  int port_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

// librdkafka's mock cluster lives in this handle (a producer we also produce with).
class MockKafka {
 public:
  MockKafka(const std::string& topic, int partitions) : topic_(topic), partitions_(partitions) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk_) throw std::runtime_error(err);
    rd_kafka_mock_cluster_t* mc = rd_kafka_handle_mock_cluster(rk_);
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(mc);
    rd_kafka_mock_topic_create(mc, topic.c_str(), partitions, 1);
  }
  ~MockKafka() {
    rd_kafka_flush(rk_, 5000);
    rd_kafka_destroy(rk_);
  }
  const std::string& bootstraps() const { return bootstraps_; }
  rd_kafka_mock_cluster_t* cluster() const { return rd_kafka_handle_mock_cluster(rk_); }
  void create_topic(const std::string& topic, int partitions) {
    rd_kafka_mock_topic_create(cluster(), topic.c_str(), partitions, 1);
  }
  // Key = user_id, value = the NDJSON line; the default partitioner hashes the key.
  void produce(const std::string& user, const std::string& line) {
    const rd_kafka_resp_err_t e =
        rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_KEY(user.data(), user.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(line.data()), line.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ASSERT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(e);
  }
  void flush() { ASSERT_EQ(rd_kafka_flush(rk_, 10000), RD_KAFKA_RESP_ERR_NO_ERROR); }

  struct Message {
    int partition;
    std::string key, value;
  };
  // Reads the topic from the beginning until `n` messages came or `timeout` seconds passed.
  std::vector<Message> consume(std::size_t n, double timeout) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "test-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions_);
    for (int p = 0; p < partitions_; ++p)
      rd_kafka_topic_partition_list_add(parts, topic_.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    std::vector<Message> out;
    const auto t0 = Clock::now();
    while (out.size() < n && std::chrono::duration<double>(Clock::now() - t0).count() < timeout) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
      if (!m) continue;
      if (!m->err)
        out.push_back({m->partition, std::string(static_cast<const char*>(m->key), m->key_len),
                       std::string(static_cast<const char*>(m->payload), m->len)});
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return out;
  }

 private:
  std::string topic_;
  int partitions_ = 1;
  rd_kafka_t* rk_ = nullptr;
  std::string bootstraps_;
};

inline std::string event_line(const std::string& user, const std::string& item, const char* type, double t,
                       const std::string& extra = "") {
  nlohmann::json j = {{"user_id", user}, {"event_type", type}, {"timestamp", t}};
  if (!item.empty()) j["item_id"] = item;
  if (!extra.empty()) j["properties"] = nlohmann::json::parse("{" + extra + "}");  // the shared schema
  return j.dump();
}

inline double metric(const std::string& text, const std::string& name) {
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + name.size() + 2, nullptr);
}

// The shared world: a generated shop, a nightly model trained on it by the nightly job.
class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    gen_.events = 30000;
    gen_.users = 400;
    gen_.items = 300;
    gen_.categories = 10;
    gen_.days = 5;
    gen_.seed = 5;
    NightlyConfig n = parse_nightly_config("{}", "test");
    n.data.format = DataFormat::kGenerated;
    n.data.generator = gen_;
    n.train.factors = 16;
    n.train.iterations = 6;
    n.train.threads = 1;
    n.train.backend = Backend::kCpu;
    n.eval.enabled = false;
    n.output.dir = dir_->file("models");
    n.output.version = "v1";
    run_nightly_job(n, nullptr);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static StreamProcessConfig base_config(const std::string& tag) {
    StreamProcessConfig c = parse_stream_config("source: {type: stdin}", "test");
    c.model.dir = dir_->file("models");
    c.model.poll_ms = 0;
    c.checkpoint.dir = dir_->file("ck-" + tag);
    c.checkpoint.every_seconds = 0;
    c.dead_letter.path = dir_->file("dl-" + tag + ".ndjson");
    c.stats.interval_seconds = 0;
    c.http.enabled = true;
    c.http.port = 0;
    c.http.threads = 2;
    c.source.poll_ms = 50;
    return c;
  }

  static UpdaterOptions quiet() {
    UpdaterOptions o;
    o.log = nullptr;
    o.warn = nullptr;
    return o;
  }

  static double data_end() { return gen_.start_time + gen_.days * 86400.0 + 3600.0; }

  inline static TempDir* dir_ = nullptr;
  inline static GeneratorConfig gen_;
};

// Runs a StreamService on a thread; stops it (like SIGTERM) on destruction.
class RunningService {
 public:
  /// Without options: no log or warning output.
  explicit RunningService(const StreamProcessConfig& c) : RunningService(c, silent()) {}
  RunningService(const StreamProcessConfig& c, const UpdaterOptions& o) : service_(c, o) {
    thread_ = std::thread([this] {
      try {
        stats_ = service_.run(stop_);
      } catch (const std::exception& e) {
        error_ = e.what();
      }
    });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_.http_port());
    client_->set_read_timeout(10, 0);
  }
  ~RunningService() { stop(); }
  nlohmann::json stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return stats_;
  }
  bool ready() {
    auto r = client_->Get("/readyz");
    return r && r->status == 200;
  }
  httplib::Client& http() { return *client_; }
  StreamService& service() { return service_; }
  const std::string& error() const { return error_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(service_.http_port()); }
  /// freshrec_events_applied_total from /metrics (-1 when unreachable).
  double applied() {
    auto r = client_->Get("/metrics");
    if (!r) return -1;
    const std::string name = "\nfreshrec_events_applied_total ";
    const std::size_t at = r->body.find(name);
    return at == std::string::npos ? -1 : std::strtod(r->body.c_str() + at + name.size(), nullptr);
  }
  nlohmann::json features(const std::string& user) {
    auto r = client_->Get(("/v1/features/" + user).c_str());
    return r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
  }

 private:
  static UpdaterOptions silent() {
    UpdaterOptions o;
    o.log = nullptr;
    o.warn = nullptr;
    return o;
  }
  StreamService service_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  nlohmann::json stats_;
  std::string error_;
  std::unique_ptr<httplib::Client> client_;
};

inline nlohmann::json get_json(httplib::Client& c, const std::string& path, int* status = nullptr) {
  auto r = c.Get(path.c_str());
  if (!r) return nullptr;
  if (status) *status = r->status;
  return nlohmann::json::parse(r->body, nullptr, false);
}

}  // namespace
}  // namespace freshrec
