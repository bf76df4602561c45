#pragma once
/// A simulated shop for the cold-start bandit experiment (configs/experiments/bandit_cold_start.yaml).
///
/// Ground truth: each user has a taste over `dims` topics (a main topic and a lesser second
/// one) and each item a membership in one or two topics with a quality; the chance that user u clicks a shown
/// item i is base_ctr + truth_u . truth_i (so the linear reward model of the bandit is exact
/// and regret has a closed form). The nightly model is the truth plus Gaussian noise for the
/// items that exist at the cutoff; `new_items` items arrive during the stream with no vector at
/// all. Every request shows k items; the user clicks each with its true probability; the
/// impression and the clicks go through ImpressionTracker (event time, reward window), and
/// the closed outcomes update the user's posterior (UserPosterior) and the item's vector (a
/// ridge posterior of the same class, features = the user's posterior mean). The variants
/// differ only in how the k slots are chosen (select_with_exploration).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/stream/bandit.hpp"

namespace freshrec {

/// "simulation:" of the experiment YAML.
struct BanditSimConfig {
  int users = 300;
  int dims = 16;
  int initial_items = 200;        ///< in the nightly model
  int new_items = 300;            ///< arrive during the stream, evenly over the first arrival_fraction of requests
  double arrival_fraction = 0.5;
  int requests = 30000;           ///< recommendation requests served (each: one impression event + its clicks)
  int k = 10;
  double base_ctr = 0.02;         ///< click chance of an item outside the user's tastes
  double max_affinity = 0.35;     ///< the largest truth_u . truth_i
  double secondary_items = 0.3;   ///< share of items in a second topic (their quality split over both)
  double user_noise = 0.15;       ///< std-dev of the nightly user vector's error, per component
  double item_noise = 0.05;       ///< std-dev of the nightly item vector's error, per component
  double nightly_item_evidence = 50.0;  ///< evidence count of an item known to the nightly model
  double item_prior_precision = 10.0;   ///< ridge prior of a new item's vector (mean 0)
  double seconds_per_request = 10.0;    ///< event-time spacing of requests
  double click_delay_seconds = 5.0;     ///< a click comes this long after its impression
};

/// One variant: a name and its exploration settings.
struct BanditVariant {
  std::string name;
  stream::ExploreConfig explore;
};

/// The whole experiment.
struct BanditExperimentConfig {
  std::string name = "bandit_cold_start";
  std::string source;
  BanditSimConfig sim;
  std::vector<std::uint64_t> seeds{1};
  std::vector<BanditVariant> variants;
  nlohmann::json resolved;  ///< the YAML after overrides, as JSON
};

/// Per-run figures.
struct BanditRunResult {
  double ctr = 0.0;                 ///< clicks / items shown, over the run
  double regret = 0.0;              ///< cumulative expected clicks lost against the true best k per request
  double coverage = 0.0;            ///< share of the final catalogue shown at least once
  double new_item_first_click_events = 0.0;  ///< mean stream events from a new item's arrival to its first click (never clicked: censored at the end)
  double new_items_clicked = 0.0;   ///< share of new items clicked at least once
  double clicks = 0.0, impressions = 0.0;
  double requests_per_s = 0.0;      ///< wall-clock speed of the loop (recommend + updates)
  std::vector<double> ctr_curve;    ///< CTR per tenth of the run
  std::vector<double> regret_curve; ///< cumulative regret at the end of each tenth
};

/// True when the YAML file declares a "simulation:" section (a bandit experiment).
bool is_bandit_experiment(const std::string& file);
/// Reads and validates a bandit experiment (unknown keys, types and ranges: InputError naming
/// the file, line and key).
BanditExperimentConfig load_bandit_experiment(const std::string& file, const std::vector<std::string>& overrides = {});
BanditExperimentConfig parse_bandit_experiment(const std::string& yaml_text, const std::string& origin,
                                               const std::vector<std::string>& overrides = {});

/// One simulated run (deterministic in sim, explore and seed).
BanditRunResult run_bandit_simulation(const BanditSimConfig& sim, const stream::ExploreConfig& explore, std::uint64_t seed);

/// Every variant over every seed: {"experiment", "kind": "bandit_simulation", "variants": {name:
/// {"ctr", "regret", "coverage", "new_item_first_click_events", ...}}, "targets": {...}}.
nlohmann::json run_bandit_experiment(const BanditExperimentConfig& config, std::FILE* progress = nullptr);

/// Writes results.json, results.csv and summary.md into `dir`.
void write_bandit_reports(const nlohmann::json& results, const std::string& dir);

}  // namespace freshrec
