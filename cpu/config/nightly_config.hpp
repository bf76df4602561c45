#pragma once
#include <string>
#include <vector>

#include "cpu/data/data_config.hpp"
#include "cpu/eval/eval_config.hpp"
#include "cpu/train/train_config.hpp"

namespace freshrec {

/// Where and how the nightly job publishes its model.
struct OutputConfig {
  std::string dir = "models";      ///< models root: <dir>/<version>/ and <dir>/LATEST
  std::string version;             ///< empty: a UTC timestamp
  bool publish_latest = true;      ///< repoint <dir>/LATEST at the new version
  /// "" (cold start), "latest" (warm start from <dir>/LATEST when present) or a snapshot dir.
  std::string warm_start;
};

/// The whole nightly trainer config (configs/nightly.yaml, configs/ml100k.yaml).
struct NightlyConfig {
  DataConfig data;
  TrainConfig train;
  EvalConfig eval;
  OutputConfig output;
  /// After evaluating on the split, retrain on the whole log before publishing.
  bool refit_on_full_log = false;
  std::string source;              ///< the file it was read from (for messages)
};

/// Reads `file`, applies `--set key=value` overrides, validates every key.
/// Throws InputError naming the file, line and key of the first problem.
NightlyConfig load_nightly_config(const std::string& file, const std::vector<std::string>& overrides = {});

/// Parses YAML text (for tests and embedded defaults); `origin` names it in errors.
NightlyConfig parse_nightly_config(const std::string& yaml_text, const std::string& origin,
                                   const std::vector<std::string>& overrides = {});

}  // namespace freshrec
