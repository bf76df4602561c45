// Serving benchmarks' helper (driven by tests/bench/http_load.sh):
//   serve_latency_bench model   --models DIR [--items 100000 --users 100000 --factors 64]
//       writes a random snapshot (ids u<n>/i<n>, like freshrec-generate) for the load test;
//   serve_latency_bench visible --stream-bin B --models DIR --via http|kafka [--trials 200]
//       starts freshrec-stream (HTTP source, or a Kafka source on librdkafka's mock cluster
//       that this process hosts and produces to), then per trial sends one event of a fresh
//       user and polls GET /v1/recommend (or /v1/features) until the event shows; prints
//       the p50/p90/p99/max of send -> visible.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <httplib.h>
#undef _res  // <resolv.h> (via httplib) defines it; Eigen uses the name
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <nlohmann/json.hpp>

#include "cpu/data/generator.hpp"
#include "cpu/model/snapshot.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

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

int write_model(const std::string& dir, int items, int users, int factors, double cutoff) {
  freshrec::FactorModel m;
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.f, 1.f / std::sqrt(static_cast<float>(factors)));
  m.user_factors = freshrec::FactorMatrix::NullaryExpr(users, factors, [&] { return g(rng); });
  m.item_factors = freshrec::FactorMatrix::NullaryExpr(items, factors, [&] { return g(rng); });
  for (int u = 0; u < users; ++u) m.user_ids.intern(freshrec::generated_user_id(static_cast<std::uint32_t>(u)));
  for (int i = 0; i < items; ++i) m.item_ids.intern(freshrec::generated_item_id(static_cast<std::uint32_t>(i)));
  m.data_cutoff = cutoff;
  m.hyperparameters["source"] = "serve_latency_bench random model";
  const auto info = freshrec::write_snapshot(m, dir, "bench", true, true);
  std::printf("model %s: %d users x %d items x %d factors, cutoff %.0f\n", info.path.c_str(), users, items, factors,
              cutoff);
  return 0;
}

// The Kafka mock cluster lives in this producer handle.
struct Kafka {
  rd_kafka_t* rk = nullptr;
  std::string bootstraps;
  Kafka(const std::string& topic) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) throw std::runtime_error(err);
    auto* mc = rd_kafka_handle_mock_cluster(rk);
    bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    rd_kafka_mock_topic_create(mc, topic.c_str(), 2, 1);
  }
  ~Kafka() {
    rd_kafka_flush(rk, 5000);
    rd_kafka_destroy(rk);
  }
  void produce(const std::string& topic, const std::string& key, const std::string& value) {
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_poll(rk, 0);
  }
};

int visible(const std::string& stream_bin, const std::string& models, const std::string& via, int trials,
            const std::string& poll, const std::string& work, int items, double cutoff, double hedge_ms) {
  const std::string topic = "bench-events";
  std::unique_ptr<Kafka> kafka;
  if (via == "kafka") kafka = std::make_unique<Kafka>(topic);
  const int port = free_port();
  const std::string yaml = work + "/visible-" + via + ".yaml";
  {
    std::ofstream out(yaml);
    out << "model: {dir: " << models << ", poll_ms: 0}\n"
        << "checkpoint: {dir: \"\"}\n"
        << "dead_letter: {path: " << work << "/visible-dl.ndjson}\n"
        << "stats: {interval_seconds: 0}\n"
        << "http: {enabled: true, port: " << port << ", threads: 4, journal: " << work << "/visible-journal-" << via
        << ".ndjson, recommend_hedge_ms: " << hedge_ms << "}\n";
    if (kafka)
      out << "source: {type: kafka, poll_ms: 1}\n"
          << "kafka: {brokers: \"" << kafka->bootstraps << "\", topic: " << topic << ", group_id: bench,\n"
          << "        properties: {fetch.wait.max.ms: \"1\", fetch.error.backoff.ms: \"1\"}}\n";
    else
      out << "source: {type: http, poll_ms: 1}\n";
  }
  std::fflush(nullptr);
  const std::string log = work + "/visible-" + via + ".log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen(log.c_str(), "w", stdout);
    std::freopen(log.c_str(), "a", stderr);
    ::execl(stream_bin.c_str(), stream_bin.c_str(), "--config", yaml.c_str(), "--quiet", nullptr);
    ::_exit(127);
  }
  httplib::Client http("127.0.0.1", port);
  http.set_keep_alive(true);
  http.set_tcp_nodelay(true);
  auto metric = [&](const std::string& name) {
    auto r = http.Get("/metrics");
    if (!r) return -1.0;
    const std::size_t at = r->body.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::strtod(r->body.c_str() + at + name.size() + 2, nullptr);
  };
  const auto start = Clock::now();
  bool ready = false;
  while (!ready && ms_since(start) < 60000) {
    auto r = http.Get("/readyz");
    ready = r && r->status == 200 && (!kafka || metric("freshrec_kafka_assigned_partitions") == 2);
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!ready) {
    std::fprintf(stderr, "freshrec-stream never became ready (see %s)\n", log.c_str());
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    return 1;
  }

  std::mt19937 rng(11);
  std::vector<double> lat, post_ms, get_ms;  // get_ms: every poll's round trip
  int timeouts = 0;
  std::size_t polls = 0;
  httplib::Client poster("127.0.0.1", port);
  poster.set_keep_alive(true);
  poster.set_tcp_nodelay(true);  // headers and body go out in two writes: no Nagle wait between
  for (int i = 0; i < trials; ++i) {
    const std::string user = "vis-" + via + "-" + std::to_string(i);
    const std::string item = freshrec::generated_item_id(static_cast<std::uint32_t>(rng() % items));
    const std::string line = nlohmann::json{{"user_id", user}, {"item_id", item}, {"event_type", "click"},
                                            {"timestamp", cutoff + 1000 + i}}
                                 .dump();
    const std::string path = poll == "features" ? "/v1/features/" + user : "/v1/recommend?user_id=" + user + "&k=10";
    const auto t0 = Clock::now();
    if (kafka) {
      kafka->produce(topic, user, line);
    } else {
      auto r = poster.Post("/v1/events", line + "\n", "application/x-ndjson");
      if (!r || r->status != 200) {
        std::fprintf(stderr, "POST failed\n");
        break;
      }
      post_ms.push_back(ms_since(t0));
    }
    bool seen = false;
    while (!seen && ms_since(t0) < 5000) {
      const auto g0 = Clock::now();
      auto r = http.Get(path.c_str());
      get_ms.push_back(ms_since(g0));
      ++polls;
      if (!r || r->status != 200) continue;
      const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
      seen = poll == "features" ? (j.is_object() && j.value("session_click_count", 0) >= 1)
                                : (j.is_object() && j.value("known_user", false));
      if (kafka) rd_kafka_poll(kafka->rk, 0);
    }
    if (seen)
      lat.push_back(ms_since(t0));
    else
      ++timeouts;
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);

  std::printf("%-6s %-10s %7s %8s %8s %8s %8s %9s\n", "via", "poll", "trials", "p50 ms", "p90 ms", "p99 ms", "max ms",
              "timeouts");
  std::printf("%-6s %-10s %7zu %8.2f %8.2f %8.2f %8.2f %9d\n", via.c_str(), poll.c_str(), lat.size(),
              percentile(lat, 0.5), percentile(lat, 0.9), percentile(lat, 0.99),
              lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end()), timeouts);
  std::printf("GET %s round trip: p50 %.2f ms  p99 %.2f ms  max %.2f ms; %.2f polls a trial\n",
              poll == "features" ? "/v1/features" : "/v1/recommend", percentile(get_ms, 0.5), percentile(get_ms, 0.99),
              get_ms.empty() ? 0.0 : *std::max_element(get_ms.begin(), get_ms.end()),
              trials > 0 ? static_cast<double>(polls) / trials : 0.0);
  if (!post_ms.empty())
    std::printf("POST /v1/events round trip (journal fdatasync included): p50 %.2f ms  p99 %.2f ms\n",
                percentile(post_ms, 0.5), percentile(post_ms, 0.99));
  return timeouts == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"serving benchmarks' helper: random model, event -> visible latency"};
  app.require_subcommand(1);
  std::string models, stream_bin, via = "http", poll = "recommend", work = "/tmp";
  int items = 100000, users = 100000, factors = 64, trials = 200;
  double cutoff = 1700000000;
  auto* model = app.add_subcommand("model", "write a random snapshot and publish it as LATEST");
  model->add_option("--models", models)->required();
  model->add_option("--items", items)->capture_default_str();
  model->add_option("--users", users)->capture_default_str();
  model->add_option("--factors", factors)->capture_default_str();
  model->add_option("--cutoff", cutoff)->capture_default_str();
  auto* vis = app.add_subcommand("visible", "event -> visible latency through freshrec-stream");
  vis->add_option("--stream-bin", stream_bin)->required();
  vis->add_option("--models", models)->required();
  vis->add_option("--via", via)->check(CLI::IsMember({"http", "kafka"}));
  vis->add_option("--poll", poll)->check(CLI::IsMember({"recommend", "features"}));
  vis->add_option("--trials", trials)->capture_default_str();
  vis->add_option("--items", items, "items of the model (event item ids are drawn from them)")->capture_default_str();
  vis->add_option("--cutoff", cutoff)->capture_default_str();
  vis->add_option("--work", work, "scratch directory")->capture_default_str();
  double hedge_ms = 5.0;
  vis->add_option("--hedge-ms", hedge_ms, "http.recommend_hedge_ms of the updater (0: fallback ranking in parallel)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (*model) return write_model(models, items, users, factors, cutoff);
    return visible(stream_bin, models, via, trials, poll, work, items, cutoff, hedge_ms);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve_latency_bench: %s\n", e.what());
    return 1;
  }
}
