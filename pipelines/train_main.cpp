// freshrec-train: the nightly trainer. Exit codes a scheduler can act on:
// 0 ok; 2 bad config or arguments; 3 bad input data; 4 corrupt warm-start snapshot;
// 5 I/O failure (writing the model or metrics); 1 anything else.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "cpu/config/nightly_config.hpp"
#include "cpu/nightly/nightly_job.hpp"
#include "cpu/util/error.hpp"

namespace {

enum ExitCode { kOk = 0, kOther = 1, kConfig = 2, kData = 3, kIntegrity = 4, kIo = 5 };

void write_metrics(const std::string& path, const nlohmann::json& report) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << report.dump(2) << "\n";
    if (!out) throw freshrec::IoError(path + ": cannot write metrics file");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw freshrec::IoError(path + ": cannot rename metrics file into place");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"freshrec-train: nightly matrix-factorization training → versioned model snapshot"};
  std::string config_path = "configs/nightly.yaml";
  std::vector<std::string> overrides;
  std::string metrics_out;
  bool quiet = false;
  app.add_option("--config", config_path, "YAML config (default: configs/nightly.yaml, generated data)");
  app.add_option("--set", overrides, "override a config key, e.g. --set train.factors=32 (repeatable)")
      ->type_name("KEY=VALUE")
      ->take_all()
      ->allow_extra_args(false);
  app.add_option("--metrics-out", metrics_out, "write metrics, baseline and timings as JSON to this file");
  app.add_flag("--quiet", quiet, "no progress lines on stderr");
  app.footer(
      "Exit codes: 0 ok, 2 config/arguments, 3 input data, 4 corrupt warm-start snapshot, 5 I/O, 1 other.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kConfig;
  }

  freshrec::NightlyConfig config;
  try {
    config = freshrec::load_nightly_config(config_path, overrides);
  } catch (const freshrec::InputError& e) {
    fmt::print(stderr, "freshrec-train: config error: {}\n", e.what());
    return kConfig;
  }
  try {
    const freshrec::NightlyResult result = freshrec::run_nightly_job(config, quiet ? nullptr : stderr);
    if (!metrics_out.empty()) write_metrics(metrics_out, result.report);
    const auto& r = result.report;
    if (r.contains("metrics")) {
      const std::string k = std::to_string(config.eval.k);
      fmt::print("model {}  ndcg@{} {:.4f}  precision@{} {:.4f}  (popularity ndcg@{} {:.4f})  total {:.2f}s\n",
                 result.version, k, r["metrics"].value("ndcg@" + k, 0.0), k, r["metrics"].value("precision@" + k, 0.0),
                 k, r["baseline"].value("ndcg@" + k, 0.0), r["timing"].value("total_s", 0.0));
    } else {
      fmt::print("model {}  total {:.2f}s\n", result.version, r["timing"].value("total_s", 0.0));
    }
    return kOk;
  } catch (const freshrec::InputError& e) {
    fmt::print(stderr, "freshrec-train: input error: {}\n", e.what());
    return kData;
  } catch (const freshrec::IntegrityError& e) {
    fmt::print(stderr, "freshrec-train: integrity error: {}\n", e.what());
    return kIntegrity;
  } catch (const freshrec::IoError& e) {
    fmt::print(stderr, "freshrec-train: I/O error: {}\n", e.what());
    return kIo;
  } catch (const std::exception& e) {
    fmt::print(stderr, "freshrec-train: error: {}\n", e.what());
    return kOther;
  }
}
