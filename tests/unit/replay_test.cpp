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

#include "tests/unit/serve_fixture.hpp"

namespace freshrec {
namespace {

constexpr double kT0 = 1.7e9;  // the model's data cutoff; events come after it

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

// Backpressure: while the updater is behind (stalled here for 0.6 s by the first event)
// the service answers 503 + Retry-After; the replay waits as asked, without using up its
// retries, and every event still arrives once.
TEST_F(Replay, HttpBackpressureIsWaitedOutAndEveryEventArrivesOnce) {
  StreamProcessConfig c = http_config("backpressure");
  c.http.max_backlog_bytes = 300;
  UpdaterOptions o;
  o.log = nullptr;
  o.warn = nullptr;
  std::atomic<bool> stalled_once{false};
  o.on_event = [&](const Event&, bool, std::uint64_t) {
    if (!stalled_once.exchange(true)) std::this_thread::sleep_for(std::chrono::milliseconds(600));
  };
  RunningService svc(c, o);
  ASSERT_TRUE(eventually(20, [&] { return svc.ready(); })) << svc.error();
  const std::string path = write_lines(*dir_, "backpressure.ndjson", make_events(50));
  const ReplayRun r = replay(*dir_, {path, "--http", svc.url(), "--batch", "5", "--retries", "1", "--quiet"});
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.summary["sent"], 50) << r.summary.dump();
  EXPECT_EQ(r.summary["failed"], 0);
  EXPECT_GE(r.summary["throttled"].get<int>(), 1) << r.summary.dump();
  ASSERT_TRUE(eventually(5, [&] { return svc.applied() == 50; })) << svc.applied();
  const nlohmann::json stats = svc.stop();
  EXPECT_EQ(stats["events"], 50);
  EXPECT_EQ(stats["http"]["posts_throttled"], r.summary["throttled"]);
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
