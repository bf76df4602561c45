#pragma once
/// The files an experiment leaves in its output directory.
#include <string>

#include <nlohmann/json.hpp>

namespace freshrec {

/// Writes results.json, results.csv and summary.md for `results` into `dir` (created).
/// Throws IoError when a file cannot be written.
void write_experiment_reports(const nlohmann::json& results, const std::string& dir);

/// The markdown summary table of `results` (what summary.md holds).
std::string experiment_summary_markdown(const nlohmann::json& results);

}  // namespace freshrec
