// freshrec-replay: pushes an NDJSON event log into Kafka or the updater's HTTP source at a
// chosen rate or speed-up of event time (demos, load tests). Exit codes: 0 every event
// sent was acknowledged (invalid lines skipped are reported, not failures); 2 bad
// arguments; 3 bad input (file missing, or an invalid line with --strict); 5 the target
// refused or lost events (the summary says how many); 1 anything else.
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "cpu/serve/event_replay.hpp"
#include "cpu/stream/updater.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"

namespace {
enum ExitCode { kOk = 0, kOther = 1, kArgs = 2, kData = 3, kIo = 5 };
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"freshrec-replay: pushes an NDJSON event log into Kafka (key = user_id) or POST /v1/events"};
  freshrec::ReplayOptions o;
  std::string http_url, token_env, summary_json;
  std::vector<std::string> properties;
  bool quiet = false;
  app.add_option("input", o.input, "NDJSON event log (the shared schema)")->required();
  auto* http = app.add_option("--http", http_url, "send to freshrec-stream at this base URL, e.g. http://127.0.0.1:8080");
  auto* brokers = app.add_option("--brokers", o.brokers, "send to Kafka: bootstrap servers host:port[,host:port]");
  http->excludes(brokers);
  o.topic = "freshrec-events";
  app.add_option("--topic", o.topic, "Kafka topic")->capture_default_str();
  app.add_option("--kafka-property", properties, "extra librdkafka producer property (repeatable)")->type_name("KEY=VALUE");
  app.add_option("--delivery-timeout-ms", o.delivery_timeout_ms, "Kafka: a message not acknowledged by then fails")
      ->capture_default_str();
  app.add_option("--batch", o.batch_lines, "HTTP: lines per POST")->capture_default_str();
  app.add_option("--token", o.token, "HTTP: bearer token (when http.require_token_for_events)");
  app.add_option("--token-env", token_env, "HTTP: read the bearer token from this environment variable");
  app.add_option("--http-timeout", o.http_timeout_seconds, "HTTP: seconds per request")->capture_default_str();
  app.add_option("--retries", o.retries, "HTTP: extra tries on connection errors and 5xx (backoff 0.1 s .. 2 s)")
      ->capture_default_str();
  app.add_option("--rate", o.rate, "events per second (default: as fast as the target takes them)");
  app.add_option("--speedup", o.speedup, "event-time seconds per wall second, e.g. 60 = one hour of log per minute");
  app.add_option("--max-batch-delay-ms", o.max_batch_delay_ms, "HTTP: a partial batch waits at most this long")
      ->capture_default_str();
  app.add_option("--limit", o.limit, "send at most this many events");
  app.add_flag("--strict", o.strict, "stop at the first line that is not a valid event (exit 3)");
  app.add_option("--progress", o.progress_seconds, "seconds between progress lines on stderr (0 = none)")
      ->capture_default_str();
  app.add_option("--summary-json", summary_json, "also write the summary as JSON to this file");
  app.add_flag("--quiet", quiet, "no progress lines or warnings on stderr");
  app.footer("Exit codes: 0 all acknowledged, 2 arguments, 3 input, 5 target refused/lost events, 1 other.");
  try {
    app.parse(argc, argv);
    if (http->count() == 0 && brokers->count() == 0) throw CLI::RequiredError("--http or --brokers");
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kArgs;
  }
  if (quiet) o.log = nullptr;
  o.target = http->count() > 0 ? freshrec::ReplayTarget::kHttp : freshrec::ReplayTarget::kKafka;
  if (o.target == freshrec::ReplayTarget::kHttp) {
    while (!http_url.empty() && http_url.back() == '/') http_url.pop_back();
    o.http_url = http_url;
  }
  if (!token_env.empty()) {
    const char* v = std::getenv(token_env.c_str());
    if (!v || !*v) {
      fmt::print(stderr, "freshrec-replay: --token-env: {} is not set\n", token_env);
      return kArgs;
    }
    o.token = v;
  }
  for (const auto& p : properties) {
    const std::size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      fmt::print(stderr, "freshrec-replay: --kafka-property: expected KEY=VALUE, got '{}'\n", p);
      return kArgs;
    }
    o.kafka_properties[p.substr(0, eq)] = p.substr(eq + 1);
  }

  freshrec::ReplaySummary s;
  try {
    static std::atomic<bool> stop{false};
    freshrec::install_stop_signals(stop);
    s = freshrec::replay_events(o, &stop);
  } catch (const freshrec::InputError& e) {
    // Option errors and file errors both arrive here; the message names which.
    const std::string what = e.what();
    fmt::print(stderr, "freshrec-replay: {}\n", what);
    return what.rfind("--", 0) == 0 ? kArgs : kData;
  } catch (const freshrec::IoError& e) {
    fmt::print(stderr, "freshrec-replay: I/O error: {}\n", e.what());
    return kIo;
  } catch (const std::exception& e) {
    fmt::print(stderr, "freshrec-replay: error: {}\n", e.what());
    return kOther;
  }
  fmt::print("replay: sent {}  failed {}  invalid {}  in {:.3f} s  = {:.0f} events/s{}{}\n", s.sent, s.failed,
             s.invalid, s.elapsed_seconds, s.achieved_rate(), s.stopped ? "  (stopped)" : "",
             s.error.empty() ? "" : "  error: " + s.error);
  if (!summary_json.empty()) {
    try {
      freshrec::replace_file_atomic(summary_json, s.to_json().dump(2) + "\n");
    } catch (const std::exception& e) {
      fmt::print(stderr, "freshrec-replay: --summary-json: {}\n", e.what());
      return kIo;
    }
  }
  return (s.failed > 0 || !s.error.empty()) ? kIo : kOk;
}
