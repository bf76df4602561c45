// freshrec-kafka-mock: librdkafka's mock cluster as a stand-alone process, for the fault
// scripts (tests/fault/kill_restart.sh --source kafka). Starts a mock cluster, creates a
// topic, optionally loads an NDJSON log into it (key = user_id, like freshrec-replay),
// then prints the bootstrap servers on stdout (one line, flushed: the cluster is ready and
// loaded) and keeps the cluster alive until SIGTERM/SIGINT, until stdin closes (--stdin),
// or until its parent dies.
// The mock keeps at most 5 MB of (compressed) message sets per partition and silently drops
// the oldest beyond that, so the log is produced lz4-compressed and the load is checked:
// every partition must still start at offset 0 and the partitions must hold every line;
// otherwise it fails (exit 5) and says to use more partitions.
//   usage: freshrec-kafka-mock [--topic T] [--partitions P] [--brokers N] [--load FILE] [--stdin]
// Exit codes: 0 ok, 2 bad arguments, 3 the log cannot be read, 5 produce failed or the
// mock dropped messages.
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <nlohmann/json.hpp>

namespace {

std::atomic<bool> g_stop{false};
std::atomic<long long> g_failed{0};

void on_signal(int) { g_stop.store(true); }

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) g_failed.fetch_add(1);
}

int usage(const char* why) {
  std::fprintf(stderr,
               "freshrec-kafka-mock: %s\n"
               "usage: freshrec-kafka-mock [--topic T] [--partitions P] [--brokers N] [--load FILE] [--stdin]\n",
               why);
  return 2;
}

// The user_id of an event line ("" when the line is not a JSON object with a string
// user_id: such lines still go to the topic, all to one partition, so the updater sees
// and dead-letters them as it would in a file).
std::string user_of(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return "";
  const auto it = j.find("user_id");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool set(rd_kafka_conf_t* conf, const char* key, const char* value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key, value, err, sizeof err) == RD_KAFKA_CONF_OK) return true;
  std::fprintf(stderr, "freshrec-kafka-mock: %s=%s: %s\n", key, value, err);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string topic = "freshrec-events", load;
  int partitions = 4, brokers = 1;
  bool watch_stdin = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--topic") {
      const char* v = value();
      if (!v || !*v) return usage("--topic needs a name");
      topic = v;
    } else if (a == "--partitions" || a == "--brokers") {
      const char* v = value();
      const int n = v ? std::atoi(v) : 0;
      if (n < 1 || n > 1000) return usage((a + " needs a count in 1..1000").c_str());
      (a == "--partitions" ? partitions : brokers) = n;
    } else if (a == "--load") {
      const char* v = value();
      if (!v) return usage("--load needs a file");
      load = v;
    } else if (a == "--stdin") {
      watch_stdin = true;
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // a script killed by SIGKILL leaves no cluster behind
#endif
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The mock cluster lives in this producer handle; the producer also loads the log.
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::string nbrokers = std::to_string(brokers);
  if (!set(conf, "test.mock.num.brokers", nbrokers.c_str()) || !set(conf, "linger.ms", "5") ||
      !set(conf, "enable.idempotence", "true") || !set(conf, "queue.buffering.max.messages", "1000000") ||
      !set(conf, "compression.codec", "lz4")) {
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    std::fprintf(stderr, "freshrec-kafka-mock: cannot create the mock cluster: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_handle_mock_cluster(rk);
  const std::string bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
  if (rd_kafka_mock_topic_create(mc, topic.c_str(), partitions, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "freshrec-kafka-mock: cannot create topic %s\n", topic.c_str());
    rd_kafka_destroy(rk);
    return 1;
  }

  int rc = 0;
  if (!load.empty()) {
    std::ifstream in(load);
    if (!in) {
      std::fprintf(stderr, "freshrec-kafka-mock: cannot read %s\n", load.c_str());
      rd_kafka_destroy(rk);
      return 3;
    }
    std::string line;
    long long produced = 0;
    while (std::getline(in, line) && !g_stop.load()) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank: the file source skips it too
      const std::string user = user_of(line);
      for (;;) {
        const rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(user.data(), user.size()),
            RD_KAFKA_V_VALUE(line.data(), line.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          std::fprintf(stderr, "freshrec-kafka-mock: produce: %s\n", rd_kafka_err2str(e));
          rd_kafka_destroy(rk);
          return 5;
        }
        rd_kafka_poll(rk, 10);  // backpressure: let deliveries free the queue
      }
      ++produced;
      if ((produced & 1023) == 0) rd_kafka_poll(rk, 0);
    }
    const rd_kafka_resp_err_t f = rd_kafka_flush(rk, 120000);
    if (f != RD_KAFKA_RESP_ERR_NO_ERROR || g_failed.load() > 0) {
      std::fprintf(stderr, "freshrec-kafka-mock: %lld message(s) not delivered (%s)\n",
                   g_failed.load() + rd_kafka_outq_len(rk), rd_kafka_err2str(f));
      rc = 5;
    } else {
      // What the partitions hold now: [low, high) each; low > 0 = the mock dropped the oldest.
      long long held = 0, dropped = 0;
      for (int p = 0; p < partitions && rc == 0; ++p) {
        int64_t low = 0, high = 0;
        const rd_kafka_resp_err_t w = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 10000);
        if (w != RD_KAFKA_RESP_ERR_NO_ERROR) {
          std::fprintf(stderr, "freshrec-kafka-mock: watermarks of partition %d: %s\n", p, rd_kafka_err2str(w));
          rc = 5;
        }
        held += high - low;
        dropped += low;
      }
      if (rc == 0 && (dropped > 0 || held != produced)) {
        std::fprintf(stderr,
                     "freshrec-kafka-mock: the mock cluster holds %lld of %lld messages (dropped the oldest %lld: it "
                     "keeps 5 MB a partition); use more partitions\n",
                     held, produced, dropped);
        rc = 5;
      }
      if (rc == 0)
        std::fprintf(stderr, "freshrec-kafka-mock: loaded %lld messages into %s (%d partitions)\n", produced,
                     topic.c_str(), partitions);
    }
  }
  if (rc == 0) {
    std::printf("%s\n", bootstraps.c_str());
    std::fflush(stdout);
    while (!g_stop.load()) {
      struct pollfd p = {STDIN_FILENO, POLLIN, 0};
      if (!watch_stdin) {
        ::poll(nullptr, 0, 200);
        continue;
      }
      const int n = ::poll(&p, 1, 200);
      if (n > 0) {
        char buf[256];
        if (::read(STDIN_FILENO, buf, sizeof buf) <= 0) break;  // stdin closed
      }
    }
  }
  rd_kafka_destroy(rk);
  return rc;
}
