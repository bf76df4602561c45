#include "cpu/config/nightly_config.hpp"

#include <limits>

#include "cpu/config/yaml_reader.hpp"
#include "cpu/data/event_type.hpp"
#include "cpu/data/timestamp_parse.hpp"
#include "cpu/model/snapshot.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

constexpr long long kMaxInt = std::numeric_limits<int>::max();
constexpr double kHuge = 1e300;

void read_generator(YamlSection& s, GeneratorConfig& g) {
  s.get("events", g.events, 1, 1'000'000'000LL);
  int users = g.users, items = g.items, categories = g.categories;
  s.get("users", users, 1, kMaxInt);
  s.get("items", items, 1, kMaxInt);
  s.get("categories", categories, 1, 100000);
  g.users = users;
  g.items = items;
  g.categories = categories;
  s.get("zipf_exponent", g.zipf_exponent, 0.0, 5.0);
  s.get("session_gap_seconds", g.session_gap_seconds, 1.0, 1e9);
  s.get("intent_shift_probability", g.intent_shift_probability, 0.0, 1.0);
  s.get("start_time", g.start_time, 0.0, 4e9);
  s.get("days", g.days, 1e-3, 36500.0);
  s.get("seed", g.seed);
  // Event times past 2100 are refused by every reader (see kMaxEventTimestamp).
  if (g.start_time + g.days * 86400.0 > kMaxEventTimestamp)
    s.fail("days", "start_time + days runs past 2100-01-01, the latest event time the readers accept");
  if (g.items < g.categories) s.fail("items", "must be at least generator.categories (" + std::to_string(g.categories) + ")");
}

void read_data(YamlSection& s, DataConfig& d) {
  s.get("path", d.path);
  s.get_enum("format", d.format,
             {{"movielens-tsv", DataFormat::kMovielensTsv},
              {"movielens-csv", DataFormat::kMovielensCsv},
              {"ndjson", DataFormat::kNdjson},
              {"generated", DataFormat::kGenerated}});
  s.get("max_bad_fraction", d.max_bad_fraction, 0.0, 1.0);
  std::int64_t reported = static_cast<std::int64_t>(d.max_reported_errors);
  s.get("max_reported_errors", reported, 0, 1'000'000);
  d.max_reported_errors = static_cast<std::size_t>(reported);
  s.section("generator", [&](YamlSection& g) { read_generator(g, d.generator); });
  if (d.format != DataFormat::kGenerated && d.path.empty())
    s.fail("path", "required when data.format is not 'generated'");
}

void read_confidence(YamlSection& s, ConfidenceConfig& c) {
  s.get("alpha", c.alpha, 0.0, 1e6);
  s.get("lambda_long", c.lambda_long, 0.0, 1.0);
  s.get("weight_by_rating", c.weight_by_rating);
  s.section("event_weights", [&](YamlSection& w) {
    for (int t = 0; t < kNumEventTypes; ++t) {
      const auto type = static_cast<EventType>(t);
      float value = c.weights[type];
      w.get(std::string(event_type_name(type)), value, 0.0, 1e6);
      c.weights[type] = value;
    }
  });
}

void read_train(YamlSection& s, TrainConfig& t) {
  s.get_enum("algorithm", t.algorithm, {{"als", Algorithm::kAls}, {"sgd", Algorithm::kSgd}});
  s.get_enum("backend", t.backend, {{"auto", Backend::kAuto}, {"cpu", Backend::kCpu}, {"cuda", Backend::kCuda}});
  s.get("factors", t.factors, 1, 1024);
  s.get("iterations", t.iterations, 0, 100000);
  s.get("regularization", t.regularization, 0.0, 1e6);
  s.get("threads", t.threads, 0, 4096);
  s.get("seed", t.seed);
  s.get("init_scale", t.init_scale, 0.0, 10.0);
  s.get("compute_loss", t.compute_loss);
  s.get_enum("solver", t.solver, {{"cg", AlsSolver::kConjugateGradient}, {"cholesky", AlsSolver::kCholesky}});
  s.get("cg_steps", t.cg_steps, 1, 1000);
  s.section("confidence", [&](YamlSection& c) { read_confidence(c, t.confidence); });
  s.get("learning_rate", t.learning_rate, 0.0, 10.0);
  s.get("lr_decay", t.lr_decay, 0.0, 1.0);
  s.get("min_learning_rate", t.min_learning_rate, 0.0, 10.0);
  s.get("bias_regularization", t.bias_regularization, 0.0, 1e6);
}

void read_eval(YamlSection& s, EvalConfig& e, bool& refit) {
  s.get("enabled", e.enabled);
  s.get_enum("protocol", e.protocol,
             {{"stratified-item", SplitProtocol::kStratifiedItem},
              {"stratified-user", SplitProtocol::kStratifiedUser},
              {"time-global", SplitProtocol::kTimeGlobal},
              {"leave-last-out", SplitProtocol::kLeaveLastOut}});
  s.get("k", e.k, 1, 100000);
  s.get("train_fraction", e.train_fraction, 0.01, 0.99);
  s.get("seed", e.seed);
  s.get("threads", e.threads, 0, 4096);
  s.get("refit_on_full_log", refit);
}

void read_output(YamlSection& s, OutputConfig& o) {
  s.get("dir", o.dir);
  s.get("version", o.version);
  s.get("publish_latest", o.publish_latest);
  s.get("warm_start", o.warm_start);
  if (o.dir.empty()) s.fail("dir", "must not be empty");
  // The snapshot writer's own rule (it covers '/', '.' and '..'), here so that a bad name
  // fails at load, naming the key, instead of after training.
  if (!o.version.empty()) {
    try {
      validate_snapshot_version(o.version);
    } catch (const InputError& e) {
      s.fail("version", e.what());
    }
  }
}

NightlyConfig parse_node(const YAML::Node& root, const std::string& origin, const std::set<std::string>& overridden) {
  NightlyConfig config;
  config.source = origin;
  YamlSection top(root, "", origin, &overridden);
  top.section("data", [&](YamlSection& s) { read_data(s, config.data); });
  top.section("train", [&](YamlSection& s) { read_train(s, config.train); });
  top.section("eval", [&](YamlSection& s) { read_eval(s, config.eval, config.refit_on_full_log); });
  top.section("output", [&](YamlSection& s) { read_output(s, config.output); });
  top.finish();
  return config;
}

}  // namespace

NightlyConfig load_nightly_config(const std::string& file, const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  const YAML::Node root = load_yaml_with_overrides(file, overrides, overridden);
  return parse_node(root, file, overridden);
}

NightlyConfig parse_nightly_config(const std::string& yaml_text, const std::string& origin,
                                   const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  const YAML::Node root = parse_yaml_with_overrides(yaml_text, origin, overrides, overridden);
  return parse_node(root, origin, overridden);
}

}  // namespace freshrec
