// Experiments: the prequential protocol (score before apply, seen-item exclusion, per-event
// metrics by hand), the statistics, the YAML loader, and a small ML-100K replay in which
// the hybrid engine must beat the frozen nightly model.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cpu/experiment/experiment_config.hpp"
#include "cpu/experiment/experiment_report.hpp"
#include "cpu/experiment/experiment_runner.hpp"
#include "cpu/experiment/prequential.hpp"
#include "cpu/experiment/statistics.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

TEST(EventMetrics, SingleTargetByHand) {
  EventMetrics m = event_metrics(0, 10);
  EXPECT_DOUBLE_EQ(m.hr, 1.0);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.ndcg, 1.0);
  m = event_metrics(2, 10);
  EXPECT_DOUBLE_EQ(m.ndcg, 0.5);  // 1 / log2(2 + 2)
  m = event_metrics(10, 10);      // rank 10 is the 11th item
  EXPECT_DOUBLE_EQ(m.hr, 0.0);
  EXPECT_DOUBLE_EQ(m.ndcg, 0.0);
  EXPECT_DOUBLE_EQ(event_metrics(-1, 10).hr, 0.0);
}

TEST(RankOfTarget, ExclusionsAndTies) {
  const std::vector<float> s{0.5f, 0.9f, 0.5f, 0.1f, 0.7f};
  std::vector<char> ex(5, 0);
  EXPECT_EQ(rank_of_target(s.data(), ex, 5, 1), 0);
  EXPECT_EQ(rank_of_target(s.data(), ex, 5, 0), 2);  // 0.9, 0.7 above; the tie at 2 is after it
  EXPECT_EQ(rank_of_target(s.data(), ex, 5, 2), 3);  // the tie at 0 comes first
  ex[1] = 1;
  EXPECT_EQ(rank_of_target(s.data(), ex, 5, 2), 2);
  EXPECT_EQ(rank_of_target(s.data(), ex, 5, 1), -1);  // an excluded target is never a hit
}

// Training: u0→A, u1→A, u2→B (counts A2 B1 C0). Stream: u3→C, u4→C, u5→A, u0→B, u0→A.
ReplayData tiny_data() {
  ReplayData d;
  InteractionLog& log = d.log;
  auto add = [&log](const char* u, const char* i, double t) {
    log.add(log.users.intern(u), log.items.intern(i), t, 1.0f, EventType::kClick);
  };
  add("u0", "A", 1);
  add("u1", "A", 2);
  add("u2", "B", 3);
  add("u3", "C", 10);
  add("u4", "C", 11);
  add("u5", "A", 12);
  add("u0", "B", 13);
  add("u0", "A", 14);  // a repeat of a seen item
  d.train_events = 3;
  d.cutoff_time = 3;
  return d;
}

std::shared_ptr<const FactorModel> tiny_model(const ReplayData& d) {
  auto m = std::make_shared<FactorModel>();
  m->user_factors = FactorMatrix::Zero(3, 2);
  m->item_factors = FactorMatrix::Zero(2, 2);
  m->user_bias = Eigen::VectorXf::Zero(3);
  m->item_bias = Eigen::VectorXf::Zero(2);
  for (const char* u : {"u0", "u1", "u2"}) m->user_ids.intern(u);
  for (const char* i : {"A", "B"}) m->item_ids.intern(i);
  // u0 likes B more than A; items: A = (1, 0), B = (0, 1).
  m->item_factors(0, 0) = 1.0f;
  m->item_factors(1, 1) = 1.0f;
  m->user_factors(0, 0) = 0.2f;
  m->user_factors(0, 1) = 0.8f;
  m->data_cutoff = 3;
  return m;
}

std::vector<std::pair<std::size_t, int>> replay_ranks(const ReplayData& d, ScorerKind kind, bool skip_seen) {
  ReplaySpec spec;
  spec.scorer = kind;
  spec.models = {tiny_model(d)};
  spec.swap_at = {d.train_events};
  spec.stream.guard.log_decisions = false;
  ReplayOptions opt;
  opt.k = 2;
  opt.windows = 2;
  opt.skip_seen_targets = skip_seen;
  std::vector<std::pair<std::size_t, int>> ranks;
  run_replay(d, spec, opt, [&](std::size_t e, const EventOutcome& o) { ranks.emplace_back(e, o.rank); });
  return ranks;
}

TEST(Prequential, PopularityScoresEachEventBeforeApplyingIt) {
  const ReplayData d = tiny_data();
  const auto ranks = replay_ranks(d, ScorerKind::kPopularity, true);
  // e3 u3→C: C has no event yet, so it is not in the catalogue: a miss. Had the event been
  //    applied first, C would be ranked.
  // e4 u4→C: A2 B1 C1, C ties B and B was seen first: rank 2.
  // e5 u5→A: A2 C2 B1: rank 0.  e6 u0→B: u0's A excluded; C2 B1: rank 1.
  // e7 u0→A repeats a seen item: not scored.
  const std::vector<std::pair<std::size_t, int>> want{{3, -1}, {4, 2}, {5, 0}, {6, 1}};
  EXPECT_EQ(ranks, want);

  ReplaySpec spec;
  spec.scorer = ScorerKind::kPopularity;
  spec.models = {tiny_model(d)};
  spec.swap_at = {d.train_events};
  ReplayOptions opt;
  opt.k = 2;
  opt.windows = 2;
  const ReplayResult r = run_replay(d, spec, opt);
  EXPECT_EQ(r.stream_events, 5u);
  EXPECT_EQ(r.scored_events, 4u);
  EXPECT_DOUBLE_EQ(r.hr, 0.5);  // e5 and e6 hit at K = 2
  EXPECT_DOUBLE_EQ(r.recall, r.hr);
  EXPECT_NEAR(r.ndcg, (1.0 + 1.0 / std::log2(3.0)) / 4.0, 1e-12);
  ASSERT_EQ(r.windows.size(), 2u);
  EXPECT_EQ(r.windows[0].events + r.windows[1].events, 5u);
}

TEST(Prequential, FrozenUsesTheModelAndPopularityAtTheCutoff) {
  const ReplayData d = tiny_data();
  const auto ranks = replay_ranks(d, ScorerKind::kFrozen, true);
  // u3, u4, u5 are unknown to the model: popularity as of the cutoff (A2 B1, C absent).
  // e3/e4 →C: C is not in the nightly catalogue: miss. e5 →A: rank 0.
  // e6 u0→B: the model scores B 0.8, A excluded (seen): rank 0.
  const std::vector<std::pair<std::size_t, int>> want{{3, -1}, {4, -1}, {5, 0}, {6, 0}};
  EXPECT_EQ(ranks, want);
}

TEST(Prequential, SeenItemsAreNeverRecommended) {
  const ReplayData d = tiny_data();
  for (ScorerKind kind : {ScorerKind::kPopularity, ScorerKind::kFrozen, ScorerKind::kEngine}) {
    const auto ranks = replay_ranks(d, kind, /*skip_seen=*/false);
    ASSERT_EQ(ranks.size(), 5u) << scorer_kind_name(kind);
    EXPECT_EQ(ranks.back().first, 7u);
    EXPECT_EQ(ranks.back().second, -1) << scorer_kind_name(kind) << ": u0 already saw A";
  }
}

TEST(Prequential, EngineNeverSeesTheEventItScores) {
  // The first stream event on a brand-new item cannot be a hit for the engine: it learns
  // of the item only when the event is applied.
  const ReplayData d = tiny_data();
  const auto ranks = replay_ranks(d, ScorerKind::kEngine, true);
  ASSERT_FALSE(ranks.empty());
  EXPECT_EQ(ranks[0], (std::pair<std::size_t, int>{3, -1}));
}

TEST(Statistics, PairedTestsByHand) {
  const MeanStd m = mean_std({1.0, 2.0, 3.0, 4.0});
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.std, std::sqrt(5.0 / 3.0), 1e-12);
  // t = 2.228 with 10 degrees of freedom is the textbook two-sided 5% point.
  EXPECT_NEAR(student_t_two_sided_p(2.228, 10.0), 0.05, 1e-3);
  EXPECT_NEAR(student_t_two_sided_p(0.0, 5.0), 1.0, 1e-12);
  std::vector<double> a(10), b(10);
  for (int i = 0; i < 10; ++i) {
    a[i] = 0.2 + 0.01 * i;
    b[i] = 0.1 + 0.005 * (i % 3);
  }
  const PairedTest p = paired_test(a, b);
  EXPECT_EQ(p.wins, 10u);
  EXPECT_EQ(p.losses, 0u);
  EXPECT_NEAR(p.sign_p, 2.0 / 1024.0, 1e-12);
  EXPECT_GT(p.t, 0.0);
  EXPECT_LT(p.t_p, 1e-6);
}

constexpr const char* kTinyYaml = R"(
dataset: {format: generated, generator: {events: 3000, users: 100, items: 80, categories: 4, days: 5}}
protocol: {train_fraction: 0.8, k: 5, windows: 3}
seeds: [3, 4]
stream: {blend: {beta: 1.5}}
variants:
  frozen: {scorer: frozen}
  popularity: {scorer: popularity}
  hybrid: {stream: {sgd: {user_learning_rate: 0.2}}}
sweeps:
  beta: {variant: hybrid, key: stream.blend.beta, values: [0, 2]}
)";

/// The error parse_experiment_config gives for `yaml` (as "bad.yaml") with `sets`: an
/// InputError's text, or says that none or another exception came.
std::string config_error(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  try {
    parse_experiment_config(yaml, "bad.yaml", sets);
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not an InputError: ") + e.what();
  }
  return "no error";
}

TEST(ExperimentConfig, ParsesMergesAndExpandsSweeps) {
  const ExperimentConfig c = parse_experiment_config(kTinyYaml, "tiny.yaml");
  ASSERT_EQ(c.variants.size(), 3u);
  EXPECT_EQ(c.variants[0].scorer, ScorerKind::kFrozen);
  EXPECT_FLOAT_EQ(c.variants[2].stream.blend.beta, 1.5f);          // from the base stream:
  EXPECT_FLOAT_EQ(c.variants[2].stream.sgd.user_learning_rate, 0.2f);  // the variant's own
  ASSERT_EQ(c.sweeps.size(), 1u);
  ASSERT_EQ(c.sweeps[0].points.size(), 2u);
  EXPECT_FLOAT_EQ(c.sweeps[0].points[1].stream.blend.beta, 2.0f);
  EXPECT_FLOAT_EQ(c.sweeps[0].points[1].stream.sgd.user_learning_rate, 0.2f);
  EXPECT_EQ(c.seeds, (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(c.protocol.replay.k, 5);
}

TEST(ExperimentConfig, BadKeysNameTheKey) {
  EXPECT_NE(config_error(kTinyYaml, {"protocol.kk=3"}).find("protocol.kk"), std::string::npos);
  EXPECT_NE(config_error(kTinyYaml, {"variants.hybrid.scorer=magic"}).find("variants.hybrid.scorer"), std::string::npos);
  EXPECT_NE(config_error(kTinyYaml, {"variants.hybrid.stream.blend.betta=1"}).find("blend.betta"), std::string::npos);
  EXPECT_NE(config_error(kTinyYaml, {"dataset.as_event_type=like"}).find("as_event_type"), std::string::npos);
  EXPECT_NE(config_error(kTinyYaml, {"sweeps.beta.variant=nope"}).find("sweeps.beta.variant"), std::string::npos);
  EXPECT_NE(config_error(kTinyYaml, {"bogus=1"}).find("bogus"), std::string::npos);
}

// A scalar seeds: that is not an integer must be an InputError naming the key, not a
// yaml-cpp conversion exception; and a repeated key must not be dropped silently.
TEST(ExperimentConfig, BadScalarSeedsAndDuplicateKeysNameTheKey) {
  std::string yaml = kTinyYaml;
  yaml.replace(yaml.find("seeds: [3, 4]"), 13, "seeds: abc");
  std::string e = config_error(yaml);
  EXPECT_NE(e.find("bad.yaml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("'seeds'"), std::string::npos) << e;
  e = config_error(std::string(kTinyYaml) + "seeds: [5]\n");
  EXPECT_NE(e.find("'seeds'"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicate"), std::string::npos) << e;
  // Two variants of one name (read from the raw mapping) and a key twice inside a variant's
  // stream: section (merged and re-parsed as text) are refused with the file's lines too.
  yaml = kTinyYaml;
  yaml.replace(yaml.find("  popularity:"), 13, "  frozen:");
  e = config_error(yaml);
  EXPECT_NE(e.find("bad.yaml:8: key 'variants.frozen': duplicate key (first at line 7)"), std::string::npos) << e;
  yaml = kTinyYaml;
  yaml.replace(yaml.find("{user_learning_rate: 0.2}"), 25, "{user_learning_rate: 0.2, user_learning_rate: 0.3}");
  e = config_error(yaml);
  EXPECT_NE(e.find("bad.yaml:9: key 'variants.hybrid.stream.sgd.user_learning_rate': duplicate key"), std::string::npos)
      << e;
}

// The train:/stream: sections are validated on their merged text; the error still names the
// line of the file that sets the bad key (the base section's or the variant's own), or the
// --set that wrote it, not a line of that text.
TEST(ExperimentConfig, BadTrainAndStreamKeysNameTheFilesLine) {
  const std::string yaml = R"(dataset: {format: generated, generator: {events: 3000, users: 100, items: 80, categories: 4, days: 5}}
protocol: {train_fraction: 0.8, k: 5, windows: 3}
seeds: [3]
train:
  iterations: 2
  factors: 8
stream:
  blend:
    beta: 1.5
variants:
  frozen: {scorer: frozen}
  hybrid:
    stream:
      sgd:
        user_learning_rate: 0.2
)";
  auto with = [&](const std::string& from, const std::string& to) {
    std::string y = yaml;
    y.replace(y.find(from), from.size(), to);
    return y;
  };
  std::string e = config_error(with("factors: 8", "factors: 0"));  // base train:, line 6
  EXPECT_EQ(e.rfind("bad.yaml:6: key 'train.factors'", 0), 0u) << e;
  e = config_error(with("beta: 1.5", "betta: 1.5"));  // base stream:, line 9
  EXPECT_EQ(e.rfind("bad.yaml:9: key 'stream.blend.betta': unknown key", 0), 0u) << e;
  e = config_error(with("user_learning_rate: 0.2", "user_learning_rate: -1"));  // the variant's own, line 15
  EXPECT_EQ(e.rfind("bad.yaml:15: key 'stream.sgd.user_learning_rate'", 0), 0u) << e;
  EXPECT_NE(e.find("variant 'hybrid'"), std::string::npos) << e;
  e = config_error(yaml, {"train.factors=0"});
  EXPECT_EQ(e.rfind("--set train.factors: ", 0), 0u) << e;
}

TEST(ExperimentRunner, GeneratedRunHasTheContractKeys) {
  ExperimentConfig c = parse_experiment_config(kTinyYaml, "tiny.yaml", {"train.iterations=3", "train.factors=8"});
  const nlohmann::json r = run_experiment(c);
  for (const char* v : {"frozen", "popularity", "hybrid"}) {
    ASSERT_TRUE(r["variants"].contains(v)) << v;
    for (const char* key : {"hr@5", "recall@5", "ndcg@5", "events_per_s"}) EXPECT_TRUE(r["variants"][v].contains(key));
    EXPECT_EQ(r["variants"][v]["windows"].size(), 3u);
    EXPECT_EQ(r["variants"][v]["per_seed"].size(), 2u);
  }
  EXPECT_EQ(r["sweeps"]["beta"]["points"].size(), 2u);
  EXPECT_TRUE(r.contains("paired_test"));
  const std::string dir = ::testing::TempDir() + "/freshrec_experiment_test";
  write_experiment_reports(r, dir);
  for (const char* f : {"results.json", "results.csv", "summary.md"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  std::filesystem::remove_all(dir);
}

TEST(ExperimentRunner, Ml100kHybridBeatsFrozen) {
  const std::string data = std::string(FRESHREC_SHARED_DATA_DIR) + "/ml-100k/u.data";
  if (!std::filesystem::exists(data)) GTEST_SKIP() << data << " is absent";
  // The shipped experiment, one seed, the first 4000 replayed events, no sweeps.
  const ExperimentConfig c = load_experiment_config(
      std::string(FRESHREC_SOURCE_DIR) + "/configs/experiments/ml100k_freshness.yaml",
      {"dataset.path=" + data, "seeds=[7]", "sweeps={}", "protocol.max_stream_events=4000",
       "variants.nightly_weekly.retrain_every_days=0", "variants.hybrid_weekly.retrain_every_days=0"});
  const nlohmann::json r = run_experiment(c);
  const double hybrid = r["variants"]["hybrid"]["hr@10"].get<double>();
  const double frozen = r["variants"]["frozen"]["hr@10"].get<double>();
  const double popularity = r["variants"]["popularity"]["hr@10"].get<double>();
  std::printf("ML-100K (4000 replayed events): hybrid %.4f frozen %.4f popularity %.4f\n", hybrid, frozen, popularity);
  EXPECT_GT(hybrid, frozen);
  EXPECT_GT(hybrid, popularity);
  EXPECT_EQ(r["variants"]["hybrid"]["scored_events"].get<std::size_t>(), 4000u);
}

}  // namespace
}  // namespace freshrec
