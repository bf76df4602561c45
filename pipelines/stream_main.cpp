// freshrec-stream: the long-lived streaming updater. Exit codes a supervisor can act on:
// Serves HTTP (http:), writes features to Redis (redis:) and reads Kafka (source.type: kafka)
// when configured. 0 ok (EOF or SIGTERM/SIGINT after a final checkpoint); 2 bad config or arguments;
// 3 bad input (no model published, source file not the one the checkpoint read);
// 4 corrupt snapshot; 5 I/O failure; 1 anything else.
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/serve/stream_service.hpp"
#include "cpu/stream/updater.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"

namespace {
enum ExitCode { kOk = 0, kOther = 1, kConfig = 2, kData = 3, kIntegrity = 4, kIo = 5 };
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"freshrec-stream: per-event updates on top of the nightly model, with exact recovery"};
  std::string config_path = "configs/stream.yaml";
  std::vector<std::string> overrides;
  std::string stats_out;
  freshrec::UpdaterOptions options;
  bool quiet = false;
  app.add_option("--config", config_path, "YAML config (default: configs/stream.yaml)");
  app.add_option("--set", overrides, "override a config key, e.g. --set source.path=events.ndjson (repeatable)")
      ->type_name("KEY=VALUE")
      ->take_all()
      ->allow_extra_args(false);
  app.add_flag("--until-eof", options.until_eof,
               "stop at the end of the source (a followed file too; Kafka: every assigned partition read to its "
               "end, in a fixed, reproducible partition order)");
  app.add_option("--stats-out", stats_out, "write the final stats as JSON to this file");
  app.add_option("--stop-after-events", options.stop_after_lines, "testing: stop after this many input lines");
  app.add_flag("--crash", options.crash, "testing: with --stop-after-events, die by SIGKILL instead of stopping");
  app.add_flag("--quiet", quiet, "no progress or stats lines on stderr");
  app.footer("Exit codes: 0 ok, 2 config/arguments, 3 input, 4 corrupt snapshot, 5 I/O, 1 other.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kConfig;
  }
  if (quiet) options.log = nullptr;

  freshrec::StreamProcessConfig config;
  try {
    config = freshrec::load_stream_config(config_path, overrides);
  } catch (const freshrec::InputError& e) {
    fmt::print(stderr, "freshrec-stream: config error: {}\n", e.what());
    return kConfig;
  }
  try {
    static std::atomic<bool> stop{false};
    freshrec::install_stop_signals(stop);
    // The service is the updater plus HTTP, Redis and the http/kafka sources; with those
    // off it behaves exactly like the bare updater.
    freshrec::StreamService service(config, options);
    const nlohmann::json stats = service.run(stop);
    if (!stats_out.empty()) freshrec::replace_file_atomic(stats_out, stats.dump(2) + "\n");
    fmt::print("events {}  {:.0f}/s  apply p50 {:.2f}us p99 {:.2f}us  dead letters {}  digest {}\n",
               stats["events"].get<std::uint64_t>(), stats["events_per_s"].get<double>(),
               stats["apply_p50_us"].get<double>(), stats["apply_p99_us"].get<double>(),
               stats["dead_letters"].get<std::uint64_t>(), stats["state_digest"].get<std::string>());
    return kOk;
  } catch (const freshrec::InputError& e) {
    fmt::print(stderr, "freshrec-stream: input error: {}\n", e.what());
    return kData;
  } catch (const freshrec::IntegrityError& e) {
    fmt::print(stderr, "freshrec-stream: integrity error: {}\n", e.what());
    return kIntegrity;
  } catch (const freshrec::IoError& e) {
    fmt::print(stderr, "freshrec-stream: I/O error: {}\n", e.what());
    return kIo;
  } catch (const std::exception& e) {
    fmt::print(stderr, "freshrec-stream: error: {}\n", e.what());
    return kOther;
  }
}
