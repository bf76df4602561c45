#pragma once
/// An experiment YAML (configs/experiments/*.yaml) → ExperimentConfig, validated in one
/// place: unknown keys, wrong types and out-of-range values throw InputError naming the
/// file, the line and the dotted key (or the --set override it came from). The "train:"
/// and "stream:" sections take exactly the keys of configs/nightly.yaml's train: and
/// configs/stream.yaml's stream:, and are validated by those loaders.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/experiment/prequential.hpp"
#include "cpu/experiment/replay_data.hpp"
#include "cpu/stream/stream_config.hpp"
#include "cpu/train/train_config.hpp"

namespace freshrec {

/// "protocol:" — the split and how events are scored.
struct ProtocolConfig {
  double train_fraction = 0.9;  ///< share of the time-sorted events the first nightly model trains on
  ReplayOptions replay;         ///< k, windows, skip_seen_targets, max_stream_events
};

/// One named variant, resolved against the experiment's base train:/stream: sections.
struct VariantSpec {
  std::string name;
  std::string description;
  ScorerKind scorer = ScorerKind::kEngine;
  TrainConfig train;               ///< nightly trainer (seed replaced per experiment seed)
  StreamConfig stream;             ///< engine knobs (seed replaced per experiment seed)
  double retrain_every_days = 0.0; ///< simulated nightly retrains + hot swap every D days of event time (0 = never)
  std::string train_key;           ///< canonical text of the train config: equal keys share models
  nlohmann::json overrides;        ///< the variant's own YAML, as JSON (for the report)
};

/// "sweeps:" — one parameter of one variant over a list of values.
struct SweepSpec {
  std::string name;
  std::string variant;             ///< the variant swept
  std::string key;                 ///< dotted key inside the variant, e.g. stream.blend.lambda_blend
  std::vector<double> values;
  std::vector<VariantSpec> points; ///< the variant with key = value, one per value
};

/// "compare:" — the paired test.
struct CompareConfig {
  std::string treatment = "hybrid";
  std::string baseline = "frozen";
};

/// The whole experiment.
struct ExperimentConfig {
  std::string name;                 ///< "name:" (default: the file's stem)
  std::string source;               ///< the file it was read from
  DatasetConfig dataset;
  ProtocolConfig protocol;
  std::vector<std::uint64_t> seeds{42};  ///< each seeds the nightly trainer and the engine
  int threads = 0;                  ///< replays run in parallel (0 = hardware threads)
  std::vector<VariantSpec> variants;
  std::vector<SweepSpec> sweeps;
  CompareConfig compare;
  nlohmann::json resolved;          ///< the YAML after --set overrides, as JSON
};

/// Reads `file`, applies `--set key.path=value` overrides, validates every key.
ExperimentConfig load_experiment_config(const std::string& file, const std::vector<std::string>& overrides = {});

/// The same for YAML text (tests); `origin` names it in errors.
ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& origin,
                                         const std::vector<std::string>& overrides = {});

}  // namespace freshrec
