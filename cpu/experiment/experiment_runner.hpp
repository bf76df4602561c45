#pragma once
/// Runs a whole experiment: load and split the data, train the nightly models (one per
/// seed and train config, plus the simulated retrains), replay every variant and sweep
/// point for every seed, and aggregate (mean ± std over seeds, per-window metrics, the
/// paired test of compare.treatment against compare.baseline).
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cpu/experiment/experiment_config.hpp"

namespace freshrec {

/// Run-time settings that are not part of the experiment.
struct RunOptions {
  std::FILE* progress = nullptr;        ///< one line per model and replay (nullptr: silent)
  std::string git_commit = "unknown";   ///< recorded in the results
};

/// Runs `config`. Returns the results document (the results.json of the pipeline):
/// {"experiment", "git_commit", "config", "data", "k", "seeds", "variants": {name: {"hr@K",
/// "recall@K", "ndcg@K", "events_per_s", "update_latency_us": {"p50","p99"}, "windows", ...}},
/// "sweeps", "paired_test", "timing"}. Throws InputError for bad data.
nlohmann::json run_experiment(const ExperimentConfig& config, const RunOptions& options = {});

}  // namespace freshrec
