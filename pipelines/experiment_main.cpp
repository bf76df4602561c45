// freshrec-experiment --config FILE [--set key=value ...] --out DIR
// Prequential replays of a timestamped log through the nightly model and the streaming
// engine, one per variant and seed; writes results.json, results.csv, summary.md and, when
// python3 with matplotlib is available, PNG plots (pipelines/plot_experiment.py).
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cpu/experiment/bandit_sim.hpp"
#include "cpu/experiment/experiment_config.hpp"
#include "cpu/experiment/experiment_report.hpp"
#include "cpu/experiment/experiment_runner.hpp"
#include "cpu/util/error.hpp"

namespace {

std::string git_commit() {
  std::FILE* p = ::popen("git rev-parse HEAD 2>/dev/null", "r");
  if (!p) return "unknown";
  std::array<char, 128> buf{};
  std::string out;
  while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int rc = ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return rc == 0 && out.size() == 40 ? out : "unknown";
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The plot script next to the sources: from the working directory (the repository root)
// or relative to this executable (build/pipelines/ → ../../pipelines/).
std::string find_plot_script(const char* argv0) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates{fs::path("pipelines") / "plot_experiment.py"};
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path().parent_path() / "pipelines" / "plot_experiment.py");
    candidates.push_back(exe.parent_path() / "plot_experiment.py");
  }
  for (const auto& c : candidates)
    if (fs::exists(c, ec)) return c.string();
  return {};
}

// The first python3 that imports matplotlib: the one on PATH, else Debian's (a pyenv or
// venv python3 on PATH usually lacks python3-matplotlib).
std::string find_python_with_matplotlib() {
  for (const char* py : {"python3", "/usr/bin/python3"})
    if (std::system((std::string(py) + " -c 'import matplotlib' >/dev/null 2>&1").c_str()) == 0) return py;
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"freshrec-experiment: prequential freshness experiments (nightly model + streaming updater)"};
  std::string config_file, out_dir;
  std::vector<std::string> overrides;
  bool no_plots = false, quiet = false;
  app.add_option("--config", config_file, "experiment YAML (configs/experiments/*.yaml)")->required();
  app.add_option("--set", overrides, "override a key, e.g. --set dataset.path=FILE (repeatable)");
  app.add_option("--out", out_dir, "output directory (results.json, results.csv, summary.md, *.png)")->required();
  app.add_flag("--no-plots", no_plots, "skip the PNG plots");
  app.add_flag("--quiet", quiet, "no progress lines");
  CLI11_PARSE(app, argc, argv);

  try {
    // A "simulation:" experiment (the cold-start bandit shop) has its own loader and report.
    if (freshrec::is_bandit_experiment(config_file)) {
      const auto config = freshrec::load_bandit_experiment(config_file, overrides);
      nlohmann::json results = freshrec::run_bandit_experiment(config, quiet ? nullptr : stderr);
      results["git_commit"] = git_commit();
      freshrec::write_bandit_reports(results, out_dir);
      std::ifstream summary(out_dir + "/summary.md");
      std::cout << summary.rdbuf() << std::flush;
      if (!no_plots) {
        std::string script = find_plot_script(argv[0]);
        if (!script.empty()) script = (std::filesystem::path(script).parent_path() / "plot_bandit.py").string();
        const std::string python = script.empty() ? std::string() : find_python_with_matplotlib();
        if (python.empty() || std::system((python + " " + quote(script) + " " + quote(out_dir)).c_str()) != 0)
          std::fprintf(stderr, "[plots] skipped (pipelines/plot_bandit.py or python3 with matplotlib unavailable)\n");
      }
      std::fprintf(stderr, "[done] results in %s\n", out_dir.c_str());
      return 0;
    }
    const freshrec::ExperimentConfig config = freshrec::load_experiment_config(config_file, overrides);
    freshrec::RunOptions options;
    options.progress = quiet ? nullptr : stderr;
    options.git_commit = git_commit();
    const nlohmann::json results = freshrec::run_experiment(config, options);
    freshrec::write_experiment_reports(results, out_dir);
    std::fputs(freshrec::experiment_summary_markdown(results).c_str(), stdout);
    if (!no_plots) {
      const std::string script = find_plot_script(argv[0]);
      if (script.empty()) {
        std::fprintf(stderr, "[plots] skipped: pipelines/plot_experiment.py not found\n");
      } else if (const std::string python = find_python_with_matplotlib(); python.empty()) {
        std::fprintf(stderr, "[plots] skipped: python3 with matplotlib is not available (apt-get install python3-matplotlib)\n");
      } else if (std::system((python + " " + quote(script) + " " + quote(out_dir)).c_str()) != 0) {
        std::fprintf(stderr, "[plots] %s failed; the results files are complete\n", script.c_str());
      }
    }
    std::fprintf(stderr, "[done] results in %s\n", out_dir.c_str());
    return 0;
  } catch (const freshrec::InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
