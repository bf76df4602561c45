#pragma once
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cpu/config/nightly_config.hpp"

namespace freshrec {

/// What a nightly run produced: the metrics document (the --metrics-out JSON) and
/// where the model went.
struct NightlyResult {
  nlohmann::json report;      ///< {"metrics", "baseline", "timing", "data", "model", "config"}
  std::string snapshot_dir;   ///< models/<version>/ that was written
  std::string version;
};

/// Runs the whole nightly job: load (or generate) the log, split, train with the
/// configured backend, evaluate against the popularity baseline, optionally refit on the
/// full log, write and publish the snapshot. Progress lines (per-iteration loss, elapsed,
/// ETA) go to `progress` (stderr in the pipeline; nullptr for silence).
/// Throws InputError (bad config/data), IntegrityError (bad warm-start snapshot), IoError.
NightlyResult run_nightly_job(const NightlyConfig& config, std::FILE* progress);

}  // namespace freshrec
