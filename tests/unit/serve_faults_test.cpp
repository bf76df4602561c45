// Fault injection against the serving layer's real dependencies (issue 7, "Hardening"):
// a real redis-server SIGKILLed and restarted on the same port while events keep flowing,
// and Kafka broker errors injected through librdkafka's mock cluster (Fetch and
// OffsetCommit errors, a forced rebalance while commits fail, the broker down past the
// session timeout; commits failing, then a SIGKILL of the updater, a restart while the
// broker is down and a restart from the checkpoint).
// Each test asserts the outcome: every event applied exactly once (counters and the final
// state_digest against a clean run), the failures counted, writes resumed, no crash.
// Waits are on conditions with generous deadlines; nothing asserts on timing.
#include "tests/unit/serve_fixture.hpp"

namespace freshrec {
namespace {

// Kafka protocol API keys (librdkafka's rdkafka_protocol.h is not installed).
constexpr std::int16_t kApiFetch = 1;
constexpr std::int16_t kApiOffsetCommit = 8;
constexpr std::int16_t kApiHeartbeat = 12;
constexpr std::int32_t kBroker = 1;  // the only broker of a test.mock.num.brokers=1 cluster

// A producer of its own on the mock cluster. Set down, the mock broker stops serving the
// connections of clients in this process without them noticing, so a Produce sent then is
// never answered: it times out after 2 s (socket.timeout.ms, default 60 s) and is retried
// on a new connection once the broker is back (reconnect backoff at most 0.2 s instead of
// 10 s); idempotence keeps a retried batch from landing twice in the log.
class Producer {
 public:
  explicit Producer(const std::string& bootstraps) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (const auto& [k, v] : std::vector<std::pair<const char*, std::string>>{
             {"bootstrap.servers", bootstraps}, {"linger.ms", "0"}, {"enable.idempotence", "true"},
             {"socket.timeout.ms", "2000"}, {"reconnect.backoff.max.ms", "200"}})
      if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) throw std::runtime_error(err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk_) throw std::runtime_error(err);
  }
  ~Producer() {
    rd_kafka_flush(rk_, 5000);
    rd_kafka_destroy(rk_);
  }
  void produce(const std::string& topic, const std::string& key, const std::string& value) {
    const rd_kafka_resp_err_t e =
        rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ASSERT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(e);
  }
  rd_kafka_resp_err_t flush(int timeout_ms) { return rd_kafka_flush(rk_, timeout_ms); }

 private:
  rd_kafka_t* rk_ = nullptr;
};

// The group's committed offset of partition 0 (-1001 when none), asked by a handle that
// does not join the group.
std::int64_t committed_offset(const std::string& bootstraps, const std::string& group, const std::string& topic) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(err);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0);
  const rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, 10000);
  const std::int64_t offset = e == RD_KAFKA_RESP_ERR_NO_ERROR ? parts->elems[0].offset : -2;
  rd_kafka_topic_partition_list_destroy(parts);
  rd_kafka_destroy(rk);
  return offset;
}

// The fields of rt_features:<user> that only the user's own events decide (the session
// embedding and window counts also move with other users' events and the watermark).
bool same_user_features(const nlohmann::json& stored, const nlohmann::json& engine) {
  if (!stored.is_object() || !engine.is_object()) return false;
  for (const char* key : {"user_id", "event_time", "session_view_count", "session_click_count", "session_cart_count",
                          "session_purchase_count", "session_search_count", "recent_clicked_items", "top_category",
                          "session_start"})
    if (stored[key] != engine[key]) return false;
  return true;
}

// ------------------------------------------------------------------ Redis killed mid-run

// Events keep arriving by POST while redis-server is SIGKILLed and, a while later, started
// again (empty) on the same port. Ingestion never waits on Redis: every accepted event is
// applied; the writer counts its failed round trips and retries with backoff (at most one
// attempt per 50 ms), the bounded queue overflows and the drops are counted; after the
// restart it reconnects and every user that got an event since holds correct features.
TEST_F(Serve, RedisKilledAndRestartedMidRunIngestionGoesOnAndWritesResume) {
  if (!have_binary("redis-server")) GTEST_SKIP() << "redis-server not installed (apt-get install redis-server)";
  RedisServer redis(*dir_);
  ASSERT_TRUE(redis.get("probe").second) << "redis-server did not come up on port " << redis.port();
  StreamProcessConfig c = base_config("redis-kill");
  c.source.type = SourceType::kHttp;
  c.http.journal = dir_->file("journal-redis-kill.ndjson");
  c.redis.url = "redis://127.0.0.1:" + std::to_string(redis.port());
  c.redis.queue_capacity = 64;  // fewer than the users posting: the outage overflows it
  c.redis.batch = 32;
  c.redis.connect_timeout_seconds = 0.5;
  c.redis.max_backoff_seconds = 0.4;
  RunningService svc(c, quiet());
  ASSERT_TRUE(eventually(20, [&] { return svc.ready(); })) << svc.error();
  auto m = [&](const char* name) { return metric(svc.service().metrics_text(), name); };

  // A client posting 25 events at a time for 300 users, without pause, for the whole test.
  constexpr int kUsers = 300;
  const double t = data_end();
  std::atomic<bool> posting{true};
  std::atomic<std::uint64_t> accepted{0}, lines_sent{0}, bad_answers{0};
  std::thread poster([&] {
    httplib::Client h("127.0.0.1", svc.service().http_port());
    h.set_read_timeout(10, 0);
    std::uint64_t n = 0;
    while (posting.load()) {
      std::string body;
      for (int i = 0; i < 25; ++i, ++n)
        body += event_line("rk" + std::to_string(n % kUsers), "i" + std::to_string(n % 97), n % 3 == 0 ? "view" : "click",
                           t + static_cast<double>(n) * 0.01) + "\n";
      auto r = h.Post("/v1/events", body, "application/x-ndjson");
      lines_sent += 25;
      if (r && r->status == 200)
        accepted += nlohmann::json::parse(r->body)["accepted"].get<std::uint64_t>();
      else
        ++bad_answers;
    }
  });
  struct StopPoster {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~StopPoster() {
      flag = false;
      if (thread.joinable()) thread.join();
    }
  } stop_poster{posting, poster};

  ASSERT_TRUE(eventually(20, [&] {
    return m("freshrec_redis_written_total") > 0 && m("freshrec_redis_connected") == 1 &&
           m("freshrec_events_applied_total") >= 1000;
  })) << svc.service().metrics_text();
  const double errors_before = m("freshrec_redis_errors_total");
  const double reconnects_before = m("freshrec_redis_reconnects_total");
  EXPECT_EQ(errors_before, 0);
  EXPECT_EQ(reconnects_before, 1);

  // SIGKILL: no shutdown, the connection just breaks.
  const auto killed_at = Clock::now();
  redis.kill();
  ASSERT_FALSE(redis.get("probe").second);
  ASSERT_TRUE(eventually(20, [&] {
    return m("freshrec_redis_connected") == 0 && m("freshrec_redis_errors_total") > errors_before;
  })) << "the writer never noticed the dead Redis: " << svc.service().metrics_text();
  // Ingestion goes on while Redis is down; the writer keeps retrying and the full queue
  // drops (and counts) what does not fit.
  const double applied_down = m("freshrec_events_applied_total");
  ASSERT_TRUE(eventually(20, [&] {
    return m("freshrec_events_applied_total") >= applied_down + 2000 && m("freshrec_redis_dropped_total") > 0 &&
           m("freshrec_redis_errors_total") >= errors_before + 6;
  })) << svc.service().metrics_text();
  const double applied_while_down = m("freshrec_events_applied_total") - applied_down;
  const double errors_down = m("freshrec_redis_errors_total") - errors_before;
  const double down_s = seconds_since(killed_at);
  // Backoff, not a busy loop: every failed attempt waits at least the initial 50 ms.
  EXPECT_LE(errors_down, down_s / 0.05 + 2) << down_s << " s down";
  EXPECT_LE(m("freshrec_redis_queue"), 64);
  const double written_down = m("freshrec_redis_written_total");

  // The same port again, empty (no persistence): the writer reconnects and writes resume.
  ASSERT_TRUE(redis.start()) << "redis-server did not come back on port " << redis.port();
  const std::uint64_t accepted_at_restart = accepted.load();
  ASSERT_TRUE(eventually(20, [&] {
    return m("freshrec_redis_connected") == 1 && m("freshrec_redis_reconnects_total") >= reconnects_before + 1 &&
           m("freshrec_redis_written_total") > written_down;
  })) << svc.service().metrics_text();
  // Every user gets new events after the restart (two full rounds), then the client stops.
  ASSERT_TRUE(eventually(20, [&] { return accepted.load() >= accepted_at_restart + 2 * kUsers; }));
  posting = false;
  poster.join();
  ASSERT_EQ(bad_answers.load(), 0u) << "POST /v1/events failed while Redis was down";
  ASSERT_EQ(accepted.load(), lines_sent.load());
  // The queue was kept full by the client; what did not fit was dropped (by design, and
  // counted). Let it drain first, or a burst's update could be the one dropped (a slow
  // writer, e.g. under ASan, made that happen).
  ASSERT_TRUE(eventually(20, [&] {
    return m("freshrec_events_applied_total") == static_cast<double>(accepted.load()) && m("freshrec_redis_queue") == 0;
  })) << svc.service().metrics_text();

  // Then one more event for every user (and one for a user new after the restart), 30 at
  // a time: a burst fits the 64-user queue, which is drained before the next one.
  const double t_last = t + static_cast<double>(lines_sent.load()) * 0.01 + 60;
  std::uint64_t total = accepted.load();
  for (int u0 = 0; u0 <= kUsers; u0 += 30) {
    std::string body;
    for (int u = u0; u < std::min(kUsers + 1, u0 + 30); ++u, ++total)
      body += event_line(u == kUsers ? "rk-after" : "rk" + std::to_string(u), "i5", "click", t_last + u) + "\n";
    auto r = svc.http().Post("/v1/events", body, "application/x-ndjson");
    ASSERT_TRUE(r && r->status == 200);
    ASSERT_TRUE(eventually(20, [&] {
      return m("freshrec_events_applied_total") == static_cast<double>(total) && m("freshrec_redis_queue") == 0;
    })) << m("freshrec_events_applied_total") << " of " << total;
  }
  // Redis holds the engine's features of every user (written after the restart).
  std::string mismatch;
  ASSERT_TRUE(eventually(20, [&] {
    if (m("freshrec_redis_queue") != 0) return false;
    for (int u = 0; u <= kUsers; ++u) {
      const std::string user = u == kUsers ? "rk-after" : "rk" + std::to_string(u);
      const auto stored = redis.get("rt_features:" + user);
      const nlohmann::json engine = get_json(svc.http(), "/v1/features/" + user);
      const nlohmann::json value = nlohmann::json::parse(stored.first, nullptr, false);
      if (!same_user_features(value, engine)) {
        mismatch = user + ": redis " + stored.first.substr(0, 300) + " engine " + engine.dump().substr(0, 300);
        return false;
      }
    }
    return true;
  })) << mismatch;
  const nlohmann::json rk7 = nlohmann::json::parse(redis.get("rt_features:rk7").first);
  EXPECT_DOUBLE_EQ(rk7["event_time"].get<double>(), t_last + 7);
  EXPECT_GT(rk7["session_click_count"].get<int>(), 1);  // its whole session, not just the last event
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(redis.get("rt_features:rk-after").first)["event_time"].get<double>(), t_last + kUsers);

  const nlohmann::json stats = svc.stop();
  ASSERT_TRUE(svc.error().empty()) << svc.error();
  EXPECT_EQ(stats["events"], total);  // every accepted event applied, once
  EXPECT_EQ(stats["dead_letters"], 0);
  const nlohmann::json& rs = stats["redis"];
  EXPECT_GE(rs["errors"].get<double>(), errors_down);
  EXPECT_GT(rs["dropped"].get<std::uint64_t>(), 0u);
  EXPECT_GE(rs["reconnects"].get<std::uint64_t>(), 2u);
  EXPECT_TRUE(rs["drained"].get<bool>()) << rs.dump();
  std::printf("redis kill: %llu events accepted and applied, %.0f applied during the %.1f s outage; redis errors %s, "
              "dropped %s, reconnects %s, written %s\n",
              static_cast<unsigned long long>(total), applied_while_down, down_s, rs["errors"].dump().c_str(),
              rs["dropped"].dump().c_str(), rs["reconnects"].dump().c_str(), rs["written"].dump().c_str());
}

// ------------------------------------------------------------------ Kafka broker errors

// What the Kafka fault tests share: a mock cluster with one partition (so the order of the
// events, and with it the final state, is the producer's), a freshrec-stream config for
// it, the events (60 users, a mix of types, one second apart), our producer, and the
// digest of a clean run over the same events (a file source, no Kafka, no faults).
class KafkaFaults {
 public:
  KafkaFaults(const TempDir& dir, const std::string& model_dir, const std::string& tag, int n, double t0)
      : dir_(dir), tag_(tag), topic_("events-" + tag), kafka_(topic_, 1), producer_(kafka_.bootstraps()), t0_(t0) {
    yaml_ = dir.file(tag + ".yaml");
    std::ofstream out(yaml_);
    // session.timeout.ms stays above the mock coordinator's 3 s initial-join delay (a member
    // whose session runs out while it waits for the join is evicted and the join restarts).
    out << "model: {dir: " << model_dir << ", poll_ms: 0}\n"
        << "source: {type: kafka, poll_ms: 20}\n"
        << "checkpoint: {every_events: 0, every_seconds: 0.2}\n"
        << "stats: {interval_seconds: 0}\n"
        << "http: {enabled: true, threads: 2}\n"
        << "kafka: {brokers: \"" << kafka_.bootstraps() << "\", topic: " << topic_ << ", group_id: " << tag << ",\n"
        << "        properties: {fetch.wait.max.ms: \"10\", fetch.error.backoff.ms: \"20\", session.timeout.ms: \"4000\",\n"
        << "                     heartbeat.interval.ms: \"100\", reconnect.backoff.ms: \"20\", reconnect.backoff.max.ms: \"200\"}}\n";
    const char* types[] = {"view", "click", "view", "add_to_cart", "click"};
    for (int i = 0; i < n; ++i) {
      const std::string user = "kf" + std::to_string((i * 7) % 60);
      events_.emplace_back(user, event_line(user, "i" + std::to_string((i * 13) % 120), types[i % 5], t0 + i));
    }
  }

  rd_kafka_mock_cluster_t* cluster() { return kafka_.cluster(); }
  const std::string& bootstraps() const { return kafka_.bootstraps(); }
  const std::string& topic() const { return topic_; }
  const std::string& group() const { return tag_; }
  const std::string& yaml() const { return yaml_; }
  std::string ck() const { return dir_.file("ck-" + tag_); }
  std::string dl() const { return dir_.file("dl-" + tag_ + ".ndjson"); }
  int total() const { return static_cast<int>(events_.size()); }
  int produced() const { return produced_; }
  const std::string& last_user() const { return events_.back().first; }
  double last_time() const { return t0_ + (total() - 1); }

  void produce(int n) {
    for (int i = 0; i < n; ++i, ++produced_) producer_.produce(topic_, events_[produced_].first, events_[produced_].second);
  }
  void flush() { ASSERT_EQ(producer_.flush(30000), RD_KAFKA_RESP_ERR_NO_ERROR) << "produced events not delivered"; }

  // The final state_digest of a clean run over the same events.
  std::string clean_digest() const {
    const std::string file = dir_.file(tag_ + "-clean.ndjson");
    {
      std::ofstream out(file);
      for (const auto& e : events_) out << e.second << "\n";
    }
    const StreamProcessConfig c = load_stream_config(
        yaml_, {"source.type=file", "source.path=" + file, "checkpoint.dir=" + dir_.file("ck-" + tag_ + "-clean"),
                "dead_letter.path=" + dir_.file("dl-" + tag_ + "-clean.ndjson"), "http.enabled=false"});
    UpdaterOptions quiet;
    quiet.log = nullptr;
    quiet.warn = nullptr;
    StreamService clean(c, quiet);
    std::atomic<bool> never{false};
    const nlohmann::json s = clean.run(never);
    EXPECT_EQ(s["events"], total());
    return s["state_digest"].get<std::string>();
  }

  // freshrec-stream as a child process on this config (HTTP on `port`).
  pid_t start_child(int port, const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {FRESHREC_STREAM_BIN, "--config", yaml_, "--set", "http.port=" + std::to_string(port),
                                     "--set", "checkpoint.dir=" + ck(), "--set", "dead_letter.path=" + dl()};
    args.insert(args.end(), extra.begin(), extra.end());
    return spawn(args, dir_.file(tag_ + "-child.log"));
  }

  // The same config for an in-process StreamService (HTTP on a free port).
  StreamProcessConfig config() const {
    return load_stream_config(yaml_, {"http.port=0", "checkpoint.dir=" + ck(), "dead_letter.path=" + dl()});
  }

 private:
  const TempDir& dir_;
  std::string tag_, topic_, yaml_;
  MockKafka kafka_;
  Producer producer_;
  double t0_;
  std::vector<std::pair<std::string, std::string>> events_;  // (user, line)
  int produced_ = 0;
};

// A child freshrec-stream's /metrics.
class ChildMetrics {
 public:
  explicit ChildMetrics(int port) : http_("127.0.0.1", port) { http_.set_read_timeout(5, 0); }
  std::string text() {
    auto r = http_.Get("/metrics");
    return r ? r->body : std::string();
  }
  double get(const char* name) { return metric(text(), name); }

 private:
  httplib::Client http_;
};

// Kills (SIGTERM) and reaps a child still running when the test ends early.
struct Reap {
  pid_t pid;
  ~Reap() {
    if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) stop_and_wait(pid);
  }
};

// While a freshrec-stream child consumes, the mock broker fails Fetch requests; then fails
// every OffsetCommit while a heartbeat error forces a rebalance (the revoke-time commit
// fails too, and the partition comes back to the same consumer); then goes down for longer
// than the session timeout while events are produced (the consumer loses its assignment
// and rejoins when the broker is back). Every event is applied exactly once: the counters
// match at each step and the final state equals a clean run's.
TEST_F(Serve, KafkaBrokerErrorsMidRunApplyEveryEventExactlyOnce) {
  KafkaFaults k(*dir_, dir_->file("models"), "kafka-errors", 1200, data_end());
  rd_kafka_mock_cluster_t* mc = k.cluster();
  const std::string clean_digest = k.clean_digest();
  ASSERT_FALSE(clean_digest.empty());

  const int port = free_port();
  const std::string stats_file = dir_->file("kafka-errors-stats.json");
  Reap child{k.start_child(port, {"--stats-out", stats_file})};
  ChildMetrics m(port);
  auto applied = [&] { return m.get("freshrec_events_applied_total"); };
  auto stack_empty = [&](std::int16_t api) {
    size_t n = 1;
    return rd_kafka_mock_broker_error_stack_cnt(mc, kBroker, api, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && n == 0;
  };
  ASSERT_TRUE(eventually(30, [&] { return m.get("freshrec_kafka_assigned_partitions") == 1; }))
      << "the consumer never got its partition";

  // 1. Fetch errors (leader moved, unknown partition, timeouts, a dropped connection),
  //    pushed while events are produced: librdkafka retries from its fetch position.
  k.produce(150);
  k.flush();
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(
                mc, kBroker, kApiFetch, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, 0, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
                RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 0, RD_KAFKA_RESP_ERR__TRANSPORT, 0,
                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 200),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  k.produce(150);
  k.flush();
  ASSERT_TRUE(eventually(30, [&] { return stack_empty(kApiFetch); })) << "the Fetch errors were never consumed";
  ASSERT_TRUE(eventually(30, [&] { return applied() == 300; })) << applied();

  // 2. Every OffsetCommit fails (REBALANCE_IN_PROGRESS: permanent, not retried) while
  //    events are applied and checkpointed, then a heartbeat error forces a rebalance: the
  //    revoke-time checkpoint's commit fails too, and the partition comes back to us.
  std::string text = m.text();
  const double failures0 = metric(text, "freshrec_kafka_commit_failures_total");
  const double rebalances0 = metric(text, "freshrec_kafka_rebalances_total");
  const std::vector<rd_kafka_resp_err_t> commit_errors(1000, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
  rd_kafka_mock_push_request_errors_array(mc, kApiOffsetCommit, commit_errors.size(), commit_errors.data());
  k.produce(300);
  k.flush();
  ASSERT_TRUE(eventually(30, [&] {
    const std::string mm = m.text();
    return metric(mm, "freshrec_events_applied_total") == 600 &&
           metric(mm, "freshrec_kafka_commit_failures_total") > failures0;
  })) << m.text();
  ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(mc, kBroker, kApiHeartbeat, 1,
                                                         RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, 0),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(eventually(30, [&] {
    const std::string mm = m.text();
    return stack_empty(kApiHeartbeat) && metric(mm, "freshrec_kafka_rebalances_total") >= rebalances0 + 2 &&
           metric(mm, "freshrec_kafka_assigned_partitions") == 1;
  })) << "no rebalance: " << m.text();
  const double commit_failures = m.get("freshrec_kafka_commit_failures_total") - failures0;
  rd_kafka_mock_clear_request_errors(mc, kApiOffsetCommit);

  // 3. The broker goes down for longer than the session timeout (4 s) while events are
  //    produced (the producer holds them), then comes back.
  const double rebalances1 = m.get("freshrec_kafka_rebalances_total");
  ASSERT_EQ(rd_kafka_mock_broker_set_down(mc, kBroker), RD_KAFKA_RESP_ERR_NO_ERROR);
  k.produce(300);
  std::this_thread::sleep_for(std::chrono::milliseconds(5000));
  EXPECT_EQ(applied(), 600) << "events re-read after the forced rebalance";
  ASSERT_EQ(rd_kafka_mock_broker_set_up(mc, kBroker), RD_KAFKA_RESP_ERR_NO_ERROR);
  k.flush();
  ASSERT_TRUE(eventually(30, [&] { return applied() == 900; })) << applied();
  const double rebalances_down = m.get("freshrec_kafka_rebalances_total") - rebalances1;
  EXPECT_GE(rebalances_down, 2) << "the session never timed out: the assignment was not lost";

  // 4. The rest, then SIGTERM: the final checkpoint commits, the stats hold the digest.
  k.produce(k.total() - k.produced());
  k.flush();
  ASSERT_TRUE(eventually(30, [&] { return applied() >= k.total(); })) << applied();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(applied(), k.total()) << "an event was applied twice";
  const int status = stop_and_wait(child.pid);
  child.pid = -1;
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::ifstream in(stats_file);
  const nlohmann::json stats = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(stats.is_object()) << "no stats in " << stats_file;
  EXPECT_EQ(stats["events"], k.total());
  EXPECT_EQ(stats["counters"]["lines"], k.total());
  EXPECT_EQ(stats["dead_letters"], 0);
  EXPECT_EQ(stats["state_digest"], clean_digest) << "the faulted run's state differs from a clean run";
  EXPECT_EQ(committed_offset(k.bootstraps(), k.group(), k.topic()), k.total());
  std::printf("kafka broker errors: %s events of %d applied; 6 Fetch errors; %.0f commits failed around the forced "
              "rebalance; broker down 5 s: %.0f rebalance callbacks; digest %s, clean %s\n",
              stats["events"].dump().c_str(), k.total(), commit_failures, rebalances_down,
              stats["state_digest"].get<std::string>().substr(0, 12).c_str(), clean_digest.substr(0, 12).c_str());
}

// The group's commits fail (the checkpoints do not) while a freshrec-stream child consumes;
// it dies by SIGKILL mid-stream with its last checkpoint ahead of the group's last commit.
// A restart while the broker is down is stopped before it gets its partition (its final
// checkpoint must keep the restored offsets); the next restart resumes at the checkpoint,
// not at the older commit, and the final state equals a clean run's.
TEST_F(Serve, KafkaCommitsFailingThenCrashRestartResumesAtTheCheckpoint) {
  constexpr int kCrashAt = 900;
  KafkaFaults k(*dir_, dir_->file("models"), "kafka-crash", 1200, data_end());
  rd_kafka_mock_cluster_t* mc = k.cluster();
  const std::string clean_digest = k.clean_digest();
  ASSERT_FALSE(clean_digest.empty());

  const int port = free_port();
  Reap child{k.start_child(port, {"--stop-after-events", std::to_string(kCrashAt), "--crash"})};
  ChildMetrics m(port);
  ASSERT_TRUE(eventually(30, [&] { return m.get("freshrec_kafka_assigned_partitions") == 1; }))
      << "the consumer never got its partition";
  // 300 events, checkpointed and committed.
  k.produce(300);
  k.flush();
  ASSERT_TRUE(eventually(30, [&] {
    return m.get("freshrec_events_applied_total") == 300 && committed_offset(k.bootstraps(), k.group(), k.topic()) == 300;
  })) << m.text();
  // From here every commit fails; 300 more are applied and checkpointed.
  const std::vector<rd_kafka_resp_err_t> commit_errors(1000, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
  rd_kafka_mock_push_request_errors_array(mc, kApiOffsetCommit, commit_errors.size(), commit_errors.data());
  const double failures0 = m.get("freshrec_kafka_commit_failures_total");
  k.produce(300);
  k.flush();
  ASSERT_TRUE(eventually(30, [&] {
    const std::string mm = m.text();
    return metric(mm, "freshrec_events_applied_total") == 600 && metric(mm, "freshrec_kafka_commit_failures_total") > failures0;
  })) << m.text();
  // The rest: the child dies by SIGKILL at line kCrashAt.
  k.produce(k.total() - k.produced());
  k.flush();
  int status = 0;
  ASSERT_TRUE(eventually(30, [&] { return ::waitpid(child.pid, &status, WNOHANG) == child.pid; }));
  child.pid = -1;
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  rd_kafka_mock_clear_request_errors(mc, kApiOffsetCommit);
  const std::int64_t committed_at_crash = committed_offset(k.bootstraps(), k.group(), k.topic());
  EXPECT_EQ(committed_at_crash, 300);

  // A restart while the broker is down, stopped before it ever gets its partition.
  const StreamProcessConfig c = k.config();
  ASSERT_EQ(rd_kafka_mock_broker_set_down(mc, kBroker), RD_KAFKA_RESP_ERR_NO_ERROR);
  nlohmann::json unassigned;
  {
    RunningService r1(c, quiet());
    ASSERT_TRUE(eventually(20, [&] { return r1.ready(); })) << r1.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(metric(r1.service().metrics_text(), "freshrec_kafka_assigned_partitions"), 0);
    unassigned = r1.stop();
    ASSERT_TRUE(r1.error().empty()) << r1.error();
  }
  ASSERT_EQ(rd_kafka_mock_broker_set_up(mc, kBroker), RD_KAFKA_RESP_ERR_NO_ERROR);
  const int checkpointed = unassigned["counters"]["lines"].get<int>();
  EXPECT_EQ(unassigned["lines_this_run"], 0);
  EXPECT_GE(checkpointed, 600);
  EXPECT_LE(checkpointed, kCrashAt);

  // The restart that finishes: it resumes at its checkpoint and applies the rest once.
  RunningService again(c, quiet());
  ASSERT_TRUE(eventually(20, [&] { return again.ready(); })) << again.error();
  ASSERT_TRUE(eventually(30, [&] {
    const nlohmann::json f = get_json(again.http(), "/v1/features/" + k.last_user());
    return f.is_object() && f["event_time"] == k.last_time();
  })) << "the restart never reached the last event";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const nlohmann::json stats = again.stop();
  ASSERT_TRUE(again.error().empty()) << again.error();
  EXPECT_FALSE(stats["restored_from"].is_null()) << "no checkpoint restored";
  EXPECT_EQ(stats["lines_this_run"], k.total() - checkpointed) << "did not resume exactly at the checkpoint";
  EXPECT_EQ(stats["events"], k.total());
  EXPECT_EQ(stats["counters"]["lines"], k.total());
  EXPECT_EQ(stats["dead_letters"], 0);
  EXPECT_EQ(stats["state_digest"], clean_digest) << "the restarted run's state differs from a clean run";
  EXPECT_EQ(committed_offset(k.bootstraps(), k.group(), k.topic()), k.total());  // the final checkpoint committed
  std::printf("kafka crash: SIGKILL at line %d, checkpoint at %d, group commit at %lld; restart during broker down "
              "stopped unassigned; final restart re-read %s lines; %s events of %d applied; digest %s, clean %s\n",
              kCrashAt, checkpointed, static_cast<long long>(committed_at_crash), stats["lines_this_run"].dump().c_str(),
              stats["events"].dump().c_str(), k.total(), stats["state_digest"].get<std::string>().substr(0, 12).c_str(),
              clean_digest.substr(0, 12).c_str());
}

}  // namespace
}  // namespace freshrec
