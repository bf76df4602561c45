// freshrec-replay against real targets: librdkafka's mock cluster (a Kafka protocol
// endpoint on loopback, read back with a plain consumer) and a running StreamService with
// the HTTP source. The binary is run as a child process, exactly as a user would.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>
#undef _res  // <resolv.h> (via httplib) defines it; Eigen uses the name
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <nlohmann/json.hpp>

#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/model/snapshot.hpp"
#include "cpu/serve/event_replay.hpp"
#include "cpu/serve/stream_service.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kT0 = 1.7e9;  // the model's data cutoff; events come after it

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/freshrec_replay_XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { if (!std::getenv("KEEP")) std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool eventually(double timeout, const std::function<bool()>& done) {
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < timeout) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

struct ReplayRun {
  int rc = -1;
  std::string output;  // stdout and stderr together
  nlohmann::json summary;
  double wall = 0;
};

// Runs freshrec-replay with `args`; the summary JSON is read back from --summary-json.
ReplayRun replay(const TempDir& dir, const std::vector<std::string>& args) {
  static int n = 0;
  const std::string tag = std::to_string(++n);
  const std::string log = dir.file("replay-" + tag + ".log"), json = dir.file("replay-" + tag + ".json");
  std::string cmd = std::string(FRESHREC_REPLAY_BIN) + " --summary-json '" + json + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " >'" + log + "' 2>&1";
  ReplayRun r;
  const auto t0 = Clock::now();
  const int status = std::system(cmd.c_str());
  r.wall = std::chrono::duration<double>(Clock::now() - t0).count();
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  std::ifstream js(json);
  if (js) r.summary = nlohmann::json::parse(js, nullptr, false);
  return r;
}

std::string event_line(const std::string& user, const std::string& item, const char* type, double t) {
  return nlohmann::json{{"user_id", user}, {"item_id", item}, {"event_type", type}, {"timestamp", t}}.dump();
}

// `n` click events of users u0..u9 on items i0..i49, one event-time second apart.
std::vector<std::string> make_events(int n, double t_start = kT0 + 10) {
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i)
    lines.push_back(event_line("u" + std::to_string(i % 10), "i" + std::to_string((i * 7) % 50), "click", t_start + i));
  return lines;
}

std::string write_lines(const TempDir& dir, const std::string& name, const std::vector<std::string>& lines) {
  const std::string path = dir.file(name);
  std::ofstream out(path);
  for (const auto& l : lines) out << l << "\n";
  return path;
}

class Replay : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    // A small random model is all the HTTP source needs to be ready.
    FactorModel m;
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0.f, 0.1f);
    m.user_factors = FactorMatrix::NullaryExpr(20, 8, [&] { return g(rng); });
    m.item_factors = FactorMatrix::NullaryExpr(50, 8, [&] { return g(rng); });
    for (int u = 0; u < 20; ++u) m.user_ids.intern("u" + std::to_string(u));
    for (int i = 0; i < 50; ++i) m.item_ids.intern("i" + std::to_string(i));
    m.data_cutoff = kT0;
    write_snapshot(m, dir_->file("models"), "v1");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static StreamProcessConfig http_config(const std::string& tag) {
    StreamProcessConfig c = parse_stream_config("source: {type: http}\nhttp: {enabled: true}", "test");
    c.model.dir = dir_->file("models");
    c.model.poll_ms = 0;
    c.checkpoint.dir = "";
    c.dead_letter.path = dir_->file("dl-" + tag + ".ndjson");
    c.stats.interval_seconds = 0;
    c.http.enabled = true;
    c.http.port = 0;
    c.http.threads = 2;
    c.http.journal = dir_->file("journal-" + tag + ".ndjson");
    return c;
  }

  static TempDir* dir_;
};
TempDir* Replay::dir_ = nullptr;

// A StreamService on a thread, stopped like by SIGTERM on destruction.
class RunningService {
 public:
  explicit RunningService(const StreamProcessConfig& c) : service_(c, quiet()) {
    thread_ = std::thread([this] {
      try {
        stats_ = service_.run(stop_);
      } catch (const std::exception& e) {
        error_ = e.what();
      }
    });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_.http_port());
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
  std::string url() const { return "http://127.0.0.1:" + std::to_string(service_.http_port()); }
  const std::string& error() const { return error_; }

 private:
  static UpdaterOptions quiet() {
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

// ------------------------------------------------------------------ pacing

TEST(ReplayPacer, RateSpacesEventsEvenly) {
  ReplayPacer p(100, 0);
  EXPECT_DOUBLE_EQ(p.next_due(5), 0.0);
  EXPECT_DOUBLE_EQ(p.next_due(1), 0.01);  // event time is irrelevant under --rate
  EXPECT_DOUBLE_EQ(p.next_due(9), 0.02);
}

TEST(ReplayPacer, SpeedupFollowsEventTimeAndNeverGoesBack) {
  ReplayPacer p(0, 10);
  EXPECT_DOUBLE_EQ(p.next_due(100), 0.0);
  EXPECT_DOUBLE_EQ(p.next_due(110), 1.0);
  EXPECT_DOUBLE_EQ(p.next_due(105), 1.0);  // out of order: due with its predecessor, no burst later
  EXPECT_DOUBLE_EQ(p.next_due(130), 3.0);
}

TEST(ReplayPacer, UnpacedAndBadSettings) {
  ReplayPacer p(0, 0);
  EXPECT_DOUBLE_EQ(p.next_due(100), 0.0);
  EXPECT_DOUBLE_EQ(p.next_due(1e9), 0.0);
  EXPECT_THROW(ReplayPacer(10, 10), InputError);
  EXPECT_THROW(ReplayPacer(-1, 0), InputError);
  EXPECT_THROW(ReplayPacer(0, std::nan("")), InputError);
}

// ------------------------------------------------------------------ Kafka

// The mock cluster lives in this handle; the consumer reads the topic back from offset 0.
class MockKafka {
 public:
  MockKafka(const std::string& topic, int partitions) : topic_(topic), partitions_(partitions) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk_) throw std::runtime_error(err);
    rd_kafka_mock_cluster_t* mc = rd_kafka_handle_mock_cluster(rk_);
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(mc);
    rd_kafka_mock_topic_create(mc, topic.c_str(), partitions, 1);
  }
  ~MockKafka() { rd_kafka_destroy(rk_); }
  const std::string& bootstraps() const { return bootstraps_; }

  struct Message {
    int partition;
    std::string key, value;
  };
  // Reads until `n` messages came or `timeout` seconds passed.
  std::vector<Message> consume(std::size_t n, double timeout) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "replay-test-reader", err, sizeof err);
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
  int partitions_;
  rd_kafka_t* rk_ = nullptr;
  std::string bootstraps_;
};

TEST_F(Replay, KafkaGetsEveryEventKeyedByUserInFileOrder) {
  MockKafka kafka("replay-events", 3);
  std::vector<std::string> lines = make_events(60);
  std::vector<std::string> file = lines;
  file.insert(file.begin() + 10, "this is not json");
  file.insert(file.begin() + 20, "");
  const std::string path = write_lines(*dir_, "kafka.ndjson", file);

  const ReplayRun r = replay(*dir_, {path, "--brokers", kafka.bootstraps(), "--topic", "replay-events", "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.summary["sent"], 60) << r.summary.dump();
  EXPECT_EQ(r.summary["failed"], 0);
  EXPECT_EQ(r.summary["invalid"], 1);
  EXPECT_EQ(r.summary["lines"], 62);
  EXPECT_NE(r.output.find("sent 60  failed 0  invalid 1"), std::string::npos) << r.output;

  const std::vector<MockKafka::Message> got = kafka.consume(60, 20);
  ASSERT_EQ(got.size(), 60u);
  std::map<std::string, std::vector<std::string>> by_key;  // key -> values in partition order
  std::map<std::string, int> partition_of;
  for (const auto& m : got) {
    const nlohmann::json j = nlohmann::json::parse(m.value);
    EXPECT_EQ(m.key, j["user_id"]) << "key must be the user_id";
    by_key[m.key].push_back(m.value);
    const auto [it, fresh] = partition_of.emplace(m.key, m.partition);
    EXPECT_EQ(it->second, m.partition) << "one user's events on one partition";
  }
  std::set<int> partitions;
  for (const auto& [k, p] : partition_of) partitions.insert(p);
  EXPECT_GT(partitions.size(), 1u) << "keys should spread over the partitions";
  // Each user's events arrive byte-for-byte and in file order.
  std::map<std::string, std::vector<std::string>> want;
  for (const auto& l : lines) want[nlohmann::json::parse(l)["user_id"]].push_back(l);
  EXPECT_EQ(by_key, want);
}

TEST_F(Replay, KafkaWithoutABrokerFailsEveryEventWithExit5) {
  const std::string path = write_lines(*dir_, "kafka-down.ndjson", make_events(5));
  const ReplayRun r = replay(*dir_, {path, "--brokers", "127.0.0.1:" + std::to_string(free_port()), "--delivery-timeout-ms",
                               "1000", "--quiet"});
  EXPECT_EQ(r.rc, 5) << r.output;
  EXPECT_EQ(r.summary["sent"], 0) << r.summary.dump();
  EXPECT_EQ(r.summary["failed"], 5);
  EXPECT_FALSE(r.summary["error"].is_null());
}

// ------------------------------------------------------------------ HTTP

TEST_F(Replay, HttpSourceAppliesEveryEventAtTheChosenRate) {
  RunningService svc(http_config("rate"));
  ASSERT_TRUE(eventually(20, [&] { return svc.ready(); })) << svc.error();
  const std::string path = write_lines(*dir_, "http.ndjson", make_events(50));
  const ReplayRun r = replay(*dir_, {path, "--http", svc.url() + "/", "--batch", "7", "--rate", "200", "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.summary["sent"], 50) << r.summary.dump();
  EXPECT_EQ(r.summary["failed"], 0);
  // The 50th event is due 49/200 s after the first; sleeping never ends early.
  EXPECT_GE(r.summary["elapsed_seconds"].get<double>(), 49.0 / 200);
  EXPECT_LE(r.summary["achieved_rate"].get<double>(), 50 / (49.0 / 200));
  EXPECT_GE(r.summary["requests"].get<int>(), 8);  // at least ceil(50/7) POSTs
  ASSERT_TRUE(eventually(5, [&] { return svc.applied() == 50; })) << svc.applied();
  EXPECT_EQ(svc.features("u3")["session_click_count"], 5);
  EXPECT_EQ(svc.stop()["events"], 50);
}

TEST_F(Replay, HttpSpeedupCompressesEventTime) {
  RunningService svc(http_config("speedup"));
  ASSERT_TRUE(eventually(20, [&] { return svc.ready(); })) << svc.error();
  // 21 events over 20 s of event time at 40x: at least half a second of wall time.
  const std::string path = write_lines(*dir_, "speedup.ndjson", make_events(21));
  const ReplayRun r = replay(*dir_, {path, "--http", svc.url(), "--speedup", "40", "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.summary["sent"], 21);
  EXPECT_DOUBLE_EQ(r.summary["event_time_span"].get<double>(), 20.0);
  EXPECT_GE(r.summary["elapsed_seconds"].get<double>(), 0.5);
  ASSERT_TRUE(eventually(5, [&] { return svc.applied() == 21; })) << svc.applied();
}

TEST_F(Replay, HttpBearerTokenAndRejectedLines) {
  StreamProcessConfig c = http_config("token");
  c.http.admin_token = "s3cret";
  c.http.require_token_for_events = true;
  RunningService svc(c);
  ASSERT_TRUE(eventually(20, [&] { return svc.ready(); })) << svc.error();
  const std::string path = write_lines(*dir_, "token.ndjson", make_events(10));

  ReplayRun r = replay(*dir_, {path, "--http", svc.url(), "--batch", "4", "--quiet"});
  EXPECT_EQ(r.rc, 5) << r.output;
  EXPECT_NE(r.summary["error"].get<std::string>().find("HTTP 401"), std::string::npos) << r.summary.dump();
  EXPECT_EQ(r.summary["sent"], 0);
  EXPECT_EQ(r.summary["requests"], 1) << "a refused token is not retried";

  ::setenv("REPLAY_TEST_TOKEN", "s3cret", 1);
  r = replay(*dir_, {path, "--http", svc.url(), "--batch", "4", "--token-env", "REPLAY_TEST_TOKEN", "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.summary["sent"], 10);
  ASSERT_TRUE(eventually(5, [&] { return svc.applied() == 10; })) << svc.applied();

  // A line the replay's parser takes but the server refuses (lines over the server's
  // limit) counts as failed: exit 5, the rest still delivered.
  svc.stop();
  StreamProcessConfig small = http_config("small");
  small.source.max_line_bytes = 256;
  RunningService svc2(small);
  ASSERT_TRUE(eventually(20, [&] { return svc2.ready(); })) << svc2.error();
  std::vector<std::string> lines = make_events(6);
  lines[2] = nlohmann::json{{"user_id", "u1"}, {"item_id", "i1"}, {"event_type", "click"}, {"timestamp", kT0 + 100},
                            {"properties", {{"category", std::string(300, 'x')}}}}
                 .dump();
  r = replay(*dir_, {write_lines(*dir_, "long.ndjson", lines), "--http", svc2.url(), "--batch", "3", "--quiet"});
  EXPECT_EQ(r.rc, 5) << r.output;
  EXPECT_EQ(r.summary["sent"], 5) << r.summary.dump();
  EXPECT_EQ(r.summary["failed"], 1);
}

TEST_F(Replay, HttpTargetDownIsReportedAfterTheRetries) {
  const std::string path = write_lines(*dir_, "down.ndjson", make_events(3));
  const ReplayRun r = replay(*dir_, {path, "--http", "http://127.0.0.1:" + std::to_string(free_port()), "--retries", "1",
                               "--http-timeout", "1", "--quiet"});
  EXPECT_EQ(r.rc, 5) << r.output;
  EXPECT_EQ(r.summary["failed"], 3) << r.summary.dump();
  EXPECT_EQ(r.summary["requests"], 2);
  EXPECT_NE(r.summary["error"].get<std::string>().find("after 2 tries"), std::string::npos) << r.summary.dump();
}

// ------------------------------------------------------------------ arguments and input

TEST_F(Replay, BadArgumentsAndInputHaveTheirExitCodes) {
  const std::string path = write_lines(*dir_, "args.ndjson", make_events(3));
  EXPECT_EQ(replay(*dir_, {path}).rc, 2) << "no target";
  EXPECT_EQ(replay(*dir_, {path, "--http", "http://127.0.0.1:1", "--brokers", "x:1"}).rc, 2) << "two targets";
  ReplayRun r = replay(*dir_, {path, "--http", "http://127.0.0.1:1", "--rate", "10", "--speedup", "2"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("--rate and --speedup"), std::string::npos) << r.output;
  EXPECT_EQ(replay(*dir_, {path, "--http", "ftp://x"}).rc, 2);
  EXPECT_EQ(replay(*dir_, {path, "--http", "http://127.0.0.1:1", "--batch", "0"}).rc, 2);
  EXPECT_EQ(replay(*dir_, {path, "--brokers", "127.0.0.1:1", "--kafka-property", "no.such.property=1"}).rc, 2);

  r = replay(*dir_, {dir_->file("missing.ndjson"), "--http", "http://127.0.0.1:1"});
  EXPECT_EQ(r.rc, 3);
  EXPECT_NE(r.output.find("missing.ndjson"), std::string::npos) << r.output;
  const std::string bad = write_lines(*dir_, "bad.ndjson", {make_events(1)[0], "{\"user_id\": 1"});
  r = replay(*dir_, {bad, "--http", "http://127.0.0.1:1", "--strict"});
  EXPECT_EQ(r.rc, 3);
  EXPECT_NE(r.output.find("bad.ndjson:2"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace freshrec
