// Evaluation: splits, ground truth, scorers, ranking metrics and rating errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/eval/pair_index.hpp"
#include "cpu/eval/ranking_metrics.hpp"
#include "cpu/eval/rating_metrics.hpp"
#include "cpu/eval/scorer.hpp"
#include "cpu/eval/split.hpp"
#include "cpu/eval/test_set.hpp"
#include "cpu/train/random.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

// Scores from a fixed table (row-major users x items), for hand-computed cases.
class TableScorer final : public RankingScorer {
 public:
  TableScorer(std::int32_t n_items, std::vector<float> table) : n_items_(n_items), table_(std::move(table)) {}
  std::int32_t n_items() const override { return n_items_; }
  void score_user(std::int32_t user, float* scores) const override {
    std::copy_n(table_.begin() + static_cast<std::ptrdiff_t>(user) * n_items_, n_items_, scores);
  }

 private:
  std::int32_t n_items_;
  std::vector<float> table_;
};

CsrMatrix rows_to_csr(std::int32_t cols, const std::vector<std::vector<std::int32_t>>& rows) {
  std::vector<CooEntry> e;
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::int32_t c : rows[r]) e.push_back({static_cast<std::int32_t>(r), c, 1.0f});
  return build_csr(static_cast<std::int32_t>(rows.size()), cols, e, DuplicatePolicy::kLast);
}

TestSet test_rows(std::int32_t cols, const std::vector<std::vector<std::int32_t>>& rows) {
  TestSet t;
  t.user_items = rows_to_csr(cols, rows);
  return t;
}

// A log with interned ids: users x items, each user touching a random subset of items,
// some pairs repeated (so splits must keep a pair's events together), distinct times.
InteractionLog random_log(int n_users, int n_items, int pairs_per_user, std::uint64_t seed) {
  InteractionLog log;
  for (int u = 0; u < n_users; ++u) log.users.intern("u" + std::to_string(u));
  for (int i = 0; i < n_items; ++i) log.items.intern("i" + std::to_string(i));
  Rng rng(seed);
  double t = 1.0e9;
  for (int u = 0; u < n_users; ++u) {
    std::set<std::uint32_t> chosen;
    const int want = 1 + static_cast<int>(rng.below(static_cast<std::uint32_t>(pairs_per_user)));
    while (static_cast<int>(chosen.size()) < want) chosen.insert(rng.below(static_cast<std::uint32_t>(n_items)));
    for (std::uint32_t i : chosen) {
      const int repeats = 1 + (rng.below(4) == 0 ? static_cast<int>(rng.below(3)) : 0);
      for (int r = 0; r < repeats; ++r) {
        t += 1.0 + rng.below(100);
        log.add(static_cast<std::uint32_t>(u), i, t, 1.0f + static_cast<float>(rng.below(5)), EventType::kRating);
      }
    }
  }
  // Shuffle the event order so that log order is not time order.
  std::vector<std::size_t> order(log.size());
  for (std::size_t e = 0; e < order.size(); ++e) order[e] = e;
  shuffle_in_place(order.data(), order.size(), rng);
  InteractionLog shuffled;
  shuffled.users = log.users;
  shuffled.items = log.items;
  for (std::size_t e : order) shuffled.add(log.user[e], log.item[e], log.timestamp[e], log.value[e], log.type[e]);
  return shuffled;
}

// Recommenders' per-group train count: ranks r of n with r / n <= fraction.
std::int64_t ms_train_count(std::int64_t n, double fraction) {
  std::int64_t c = 0;
  for (std::int64_t r = 1; r <= n; ++r) c += static_cast<double>(r) / static_cast<double>(n) <= fraction;
  return c;
}

// For every pair: (train events, test events).
std::map<std::pair<std::uint32_t, std::uint32_t>, std::pair<int, int>> pair_sides(const InteractionLog& log,
                                                                                const Split& s) {
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::pair<int, int>> sides;
  for (std::size_t e = 0; e < log.size(); ++e) {
    auto& side = sides[{log.user[e], log.item[e]}];
    (s.train_mask[e] ? side.first : side.second) += 1;
  }
  return sides;
}

EvalConfig config_for(SplitProtocol protocol, std::uint64_t seed = 42) {
  EvalConfig c;
  c.protocol = protocol;
  c.seed = seed;
  return c;
}

// ---------------------------------------------------------------------------------------
// Ranking metrics

TEST(RankingMetrics, HandComputedCase) {
  // 5 users, 6 items, K = 3.
  // u0: train {0}, scores [9 5 4 3 2 1]  -> item 0 excluded, top = [1 2 3]; test {2 5}
  //     hits: item 2 at rank 2 -> h = 1
  //     precision 1/3, recall 1/2, HR 1
  //     DCG = 1/log2(3) = 0.6309298; IDCG over min(3,2)=2 ranks = 1 + 0.6309298
  //     NDCG = 0.6309298 / 1.6309298 = 0.3868528
  //     AP = (1/2) / min(2,3) = 0.25
  // u1: train {5}, scores [1 6 6 2 7 100] -> item 5 excluded although best;
  //     top = [4 1 2] (items 1 and 2 tie at 6: lower index first); test {0 2 3 4}
  //     hits: item 4 at rank 1, item 2 at rank 3 -> h = 2
  //     precision 2/3, recall 2/4, HR 1
  //     DCG = 1 + 1/log2(4) = 1.5; IDCG over min(3,4)=3 = 1 + 0.6309298 + 0.5 = 2.1309298
  //     NDCG = 0.7039181
  //     AP = (1/1 + 2/3) / min(4,3) = 0.5555556
  // u2: train {1}, scores all 0 -> ties broken by index: top = [0 2 3]; test {4}: h = 0,
  //     every metric 0.
  // u3: no training item, test {0}: a cold user, skipped.
  // u4: training items, no test item: not evaluated.
  // Means over the 3 evaluated users:
  //   precision = (1/3 + 2/3 + 0) / 3 = 1/3       recall = (1/2 + 1/2 + 0) / 3 = 1/3
  //   ndcg = (0.3868528 + 0.7039181) / 3 = 0.3635903
  //   map  = (0.25 + 0.5555556) / 3 = 0.2685185    hr = 2/3
  //   coverage = |{1,2,3} u {4,1,2} u {0,2,3}| / 6 = 5/6
  const std::vector<float> table = {
      9, 5, 4, 3, 2, 1,    //
      1, 6, 6, 2, 7, 100,  //
      0, 0, 0, 0, 0, 0,    //
      1, 2, 3, 4, 5, 6,    //
      1, 2, 3, 4, 5, 6,
  };
  const TableScorer scorer(6, table);
  const CsrMatrix train = rows_to_csr(6, {{0}, {5}, {1}, {}, {0, 1}});
  const TestSet test = test_rows(6, {{2, 5}, {0, 2, 3, 4}, {4}, {0}, {}});
  const RankingMetrics m = evaluate_ranking(scorer, train, test, 3, 1);
  EXPECT_EQ(m.k, 3);
  EXPECT_EQ(m.users_evaluated, 3);
  EXPECT_EQ(m.cold_users_skipped, 1);
  EXPECT_NEAR(m.precision, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.recall, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.ndcg, 0.3635902988, 1e-9);
  EXPECT_NEAR(m.map, 0.2685185185, 1e-9);
  EXPECT_NEAR(m.hit_rate, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.coverage, 5.0 / 6.0, 1e-12);
}

TEST(RankingMetrics, PerfectRankingScoresOne) {
  // One user, test {3, 1}, scores put them first: every metric is 1 (IDCG over 2 ranks,
  // AP = (1/1 + 2/2) / 2) except precision = 2/K = 2/5.
  const TableScorer scorer(6, {0, 8, 0, 9, 0, 0});
  const RankingMetrics m =
      evaluate_ranking(scorer, rows_to_csr(6, {{5}}), test_rows(6, {{1, 3}}), 5, 1);
  EXPECT_DOUBLE_EQ(m.precision, 0.4);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(m.map, 1.0);
  EXPECT_DOUBLE_EQ(m.hit_rate, 1.0);
  // Top 5 of the 5 non-excluded items: all but item 5.
  EXPECT_DOUBLE_EQ(m.coverage, 5.0 / 6.0);
}

TEST(RankingMetrics, MetricNames) {
  RankingMetrics m;
  m.k = 10;
  m.ndcg = 0.5;
  const auto map = m.to_map();
  for (const char* key : {"precision@10", "recall@10", "ndcg@10", "map@10", "hr@10", "coverage@10"})
    EXPECT_EQ(map.count(key), 1u) << key;
  EXPECT_EQ(map.size(), 6u);
  EXPECT_EQ(map.at("ndcg@10"), 0.5);
  m.k = 5;
  EXPECT_EQ(m.to_map().count("map@5"), 1u);
  ErrorMetrics e;
  EXPECT_EQ(e.to_map().count("rmse"), 1u);
  EXPECT_EQ(e.to_map().count("mae"), 1u);
}

TEST(RankingMetrics, RejectsBadArguments) {
  const TableScorer scorer(3, {1, 2, 3});
  const CsrMatrix train = rows_to_csr(3, {{0}});
  EXPECT_THROW(evaluate_ranking(scorer, train, test_rows(3, {{1}}), 0, 1), InputError);
  EXPECT_THROW(evaluate_ranking(scorer, train, test_rows(4, {{1}}), 3, 1), InputError);
  EXPECT_THROW(evaluate_ranking(scorer, rows_to_csr(3, {{0}, {1}}), test_rows(3, {{1}}), 3, 1), InputError);
  try {
    evaluate_ranking(scorer, train, test_rows(3, {{1}}), 0, 1);
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("eval.k"), std::string::npos) << e.what();
  }
}

TEST(SelectTopK, ExclusionTiesAndNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  //              0    1  2  3    4  5    6  7
  const float s[] = {3, nan, 5, 5, 9, 5, 1, 7};
  const std::int32_t excluded[] = {4, 7};
  std::int32_t out[8];
  // Without 4 and 7: 5 (items 2,3,5 tie -> index order), then 3, 1, NaN last.
  ASSERT_EQ(select_top_k(s, 8, excluded, excluded + 2, 4, out), 4);
  EXPECT_EQ(std::vector<std::int32_t>(out, out + 4), (std::vector<std::int32_t>{2, 3, 5, 0}));
  ASSERT_EQ(select_top_k(s, 8, excluded, excluded + 2, 8, out), 6);
  EXPECT_EQ(std::vector<std::int32_t>(out, out + 6), (std::vector<std::int32_t>{2, 3, 5, 0, 6, 1}));
  // Nothing excluded: the best is item 4.
  ASSERT_EQ(select_top_k(s, 8, nullptr, nullptr, 2, out), 2);
  EXPECT_EQ(out[0], 4);
  EXPECT_EQ(out[1], 7);
  EXPECT_EQ(select_top_k(s, 8, nullptr, nullptr, 0, out), 0);
}

TEST(SelectTopK, MatchesFullSortOnRandomScores) {
  Rng rng(5);
  std::vector<float> s(1000);
  // Few distinct values, so ties are everywhere.
  for (float& v : s) v = static_cast<float>(rng.below(20));
  std::vector<std::int32_t> excluded = {3, 10, 11, 500, 999};
  std::vector<std::int32_t> all;
  for (std::int32_t i = 0; i < 1000; ++i)
    if (!std::binary_search(excluded.begin(), excluded.end(), i)) all.push_back(i);
  std::stable_sort(all.begin(), all.end(), [&](std::int32_t a, std::int32_t b) { return s[a] > s[b]; });
  std::vector<std::int32_t> out(50);
  ASSERT_EQ(select_top_k(s.data(), 1000, excluded.data(), excluded.data() + excluded.size(), 50, out.data()), 50);
  EXPECT_EQ(out, std::vector<std::int32_t>(all.begin(), all.begin() + 50));
}

// ---------------------------------------------------------------------------------------
// Scorers

FactorModel random_model(ModelKind kind, int users, int items, int k, std::uint64_t seed) {
  FactorModel m;
  m.kind = kind;
  Rng rng(seed);
  m.user_factors.resize(users, k);
  m.item_factors.resize(items, k);
  for (int r = 0; r < users; ++r)
    for (int c = 0; c < k; ++c) m.user_factors(r, c) = static_cast<float>(rng.normal());
  for (int r = 0; r < items; ++r)
    for (int c = 0; c < k; ++c) m.item_factors(r, c) = static_cast<float>(rng.normal());
  m.user_bias = Eigen::VectorXf::Zero(users);
  m.item_bias = Eigen::VectorXf::Zero(items);
  if (kind == ModelKind::kExplicit) {
    for (int r = 0; r < users; ++r) m.user_bias[r] = static_cast<float>(rng.normal());
    for (int r = 0; r < items; ++r) m.item_bias[r] = static_cast<float>(rng.normal());
    m.global_bias = 3.5f;
  }
  return m;
}

TEST(FactorScorer, MatchesModelScore) {
  for (ModelKind kind : {ModelKind::kImplicit, ModelKind::kExplicit}) {
    const FactorModel model = random_model(kind, 7, 40, 8, 3);
    const FactorScorer scorer(model);
    ASSERT_EQ(scorer.n_items(), 40);
    std::vector<float> one(40), batch(3 * 40);
    const std::int32_t users[] = {6, 0, 3};
    scorer.score_users(users, 3, batch.data());
    for (int r = 0; r < 3; ++r) {
      scorer.score_user(users[r], one.data());
      for (int i = 0; i < 40; ++i) {
        EXPECT_NEAR(one[i], model.score(users[r], i), 1e-4f);
        EXPECT_NEAR(batch[r * 40 + i], model.score(users[r], i), 1e-4f);
      }
    }
    EXPECT_THROW(scorer.score_user(7, one.data()), InputError);
  }
}

TEST(PopularityScorer, CountsDistinctTrainingUsers) {
  // Items: 0 seen by users 0,1,2 (user 0 three times); 1 by user 1 (train) and user 2
  // (test only); 2 by nobody in training.
  InteractionLog log;
  log.add(0, 0, 1, 1, EventType::kView);
  log.add(0, 0, 2, 1, EventType::kClick);
  log.add(0, 0, 3, 1, EventType::kPurchase);
  log.add(1, 0, 4, 1, EventType::kView);
  log.add(2, 0, 5, 1, EventType::kView);
  log.add(1, 1, 6, 1, EventType::kView);
  log.add(2, 1, 7, 1, EventType::kView);
  log.add(2, 2, 8, 1, EventType::kView);
  Split split;
  split.train_mask = {1, 1, 1, 1, 1, 1, 0, 0};
  const CsrMatrix train = build_train_pairs(log, split);
  ASSERT_EQ(train.rows, 3);
  ASSERT_EQ(train.cols, 3);
  const PopularityScorer pop(train);
  EXPECT_EQ(pop.counts(), (std::vector<std::int64_t>{3, 1, 0}));
  std::vector<float> s(3);
  pop.score_user(2, s.data());
  EXPECT_EQ(s, (std::vector<float>{3, 1, 0}));
  // User 2 has item 0 in training: the popularity top 1 is item 1, its test pair -> hit.
  const TestSet test = build_test_set(log, split);
  const RankingMetrics m = evaluate_ranking(pop, train, test, 1, 1);
  EXPECT_EQ(m.users_evaluated, 1);
  EXPECT_DOUBLE_EQ(m.hit_rate, 1.0);
  EXPECT_DOUBLE_EQ(m.precision, 1.0);
  EXPECT_DOUBLE_EQ(m.recall, 0.5);  // test {1, 2}
}

TEST(RankingMetrics, SameResultForAnyThreadCount) {
  const InteractionLog log = random_log(300, 400, 40, 11);
  const Split split = split_log(log, config_for(SplitProtocol::kStratifiedItem));
  const CsrMatrix train = build_train_pairs(log, split);
  const TestSet test = build_test_set(log, split);
  const FactorModel model = random_model(ModelKind::kImplicit, 300, 400, 16, 2);
  const FactorScorer scorer(model);
  const RankingMetrics a = evaluate_ranking(scorer, train, test, 10, 1);
  const RankingMetrics b = evaluate_ranking(scorer, train, test, 10, 2);
  const RankingMetrics c = evaluate_ranking(scorer, train, test, 10, 3);
  EXPECT_GT(a.users_evaluated, 250);
  for (const RankingMetrics* o : {&b, &c}) {
    EXPECT_EQ(a.to_map(), o->to_map());
    EXPECT_EQ(a.users_evaluated, o->users_evaluated);
  }
  // The baseline goes through the same path and sees the same users.
  const RankingMetrics pop = evaluate_ranking(PopularityScorer(train), train, test, 10, 2);
  EXPECT_EQ(pop.users_evaluated, a.users_evaluated);
}

// ---------------------------------------------------------------------------------------
// Splits

TEST(Split, StratifiedItemFollowsRecommendersRule) {
  const InteractionLog log = random_log(400, 120, 30, 1);
  const Split s = split_log(log, config_for(SplitProtocol::kStratifiedItem));
  ASSERT_EQ(s.train_mask.size(), log.size());
  const auto sides = pair_sides(log, s);
  std::map<std::uint32_t, std::pair<std::int64_t, std::int64_t>> per_item;  // (train pairs, pairs)
  std::int64_t train_pairs = 0;
  for (const auto& [pair, side] : sides) {
    // Every pair wholly on one side.
    EXPECT_TRUE(side.first == 0 || side.second == 0) << pair.first << "," << pair.second;
    per_item[pair.second].first += side.first > 0;
    per_item[pair.second].second += 1;
    train_pairs += side.first > 0;
  }
  for (const auto& [item, c] : per_item) {
    EXPECT_EQ(c.first, ms_train_count(c.second, 0.75)) << "item " << item << " with " << c.second << " pairs";
    if (c.second >= 20) {
      EXPECT_NEAR(static_cast<double>(c.first) / c.second, 0.75, 0.05);
    }
  }
  const double share = static_cast<double>(train_pairs) / static_cast<double>(sides.size());
  EXPECT_NEAR(share, 0.75, 0.02);
  // The rule itself: one pair -> test, two -> 1/1, four -> 3/1.
  EXPECT_EQ(ms_train_count(1, 0.75), 0);
  EXPECT_EQ(ms_train_count(2, 0.75), 1);
  EXPECT_EQ(ms_train_count(4, 0.75), 3);
}

TEST(Split, StratifiedIsDeterministicBySeed) {
  const InteractionLog log = random_log(200, 80, 20, 2);
  for (SplitProtocol p : {SplitProtocol::kStratifiedItem, SplitProtocol::kStratifiedUser}) {
    const Split a = split_log(log, config_for(p, 42));
    const Split b = split_log(log, config_for(p, 42));
    const Split c = split_log(log, config_for(p, 43));
    EXPECT_EQ(a.train_mask, b.train_mask);
    EXPECT_NE(a.train_mask, c.train_mask);
    EXPECT_EQ(a.train_events(), b.train_events());
  }
}

TEST(Split, StratifiedUserKeepsEachUsersShare) {
  const InteractionLog log = random_log(300, 200, 40, 3);
  const Split s = split_log(log, config_for(SplitProtocol::kStratifiedUser));
  const auto sides = pair_sides(log, s);
  std::map<std::uint32_t, std::pair<std::int64_t, std::int64_t>> per_user;
  for (const auto& [pair, side] : sides) {
    EXPECT_TRUE(side.first == 0 || side.second == 0);
    per_user[pair.first].first += side.first > 0;
    per_user[pair.first].second += 1;
  }
  ASSERT_EQ(per_user.size(), 300u);
  for (const auto& [user, c] : per_user) EXPECT_EQ(c.first, ms_train_count(c.second, 0.75)) << "user " << user;
}

TEST(Split, TimeGlobalTrainsOnThePast) {
  InteractionLog log = random_log(100, 50, 20, 4);
  // Add ties at one timestamp so the boundary has to break them.
  for (std::uint32_t u = 0; u < 40; ++u) log.add(u, u % 50, log.timestamp[0], 1.0f, EventType::kRating);
  const Split s = split_log(log, config_for(SplitProtocol::kTimeGlobal));
  double last_train = -1e300, first_test = 1e300;
  for (std::size_t e = 0; e < log.size(); ++e) {
    if (s.train_mask[e])
      last_train = std::max(last_train, log.timestamp[e]);
    else
      first_test = std::min(first_test, log.timestamp[e]);
  }
  EXPECT_LE(last_train, first_test);
  EXPECT_EQ(static_cast<std::int64_t>(s.train_events()), ms_train_count(static_cast<std::int64_t>(log.size()), 0.75));
  // Deterministic (stable tie-break by log order).
  EXPECT_EQ(s.train_mask, split_log(log, config_for(SplitProtocol::kTimeGlobal)).train_mask);
}

TEST(Split, LeaveLastOutHoldsOutEachUsersLatestPair) {
  InteractionLog log = random_log(150, 60, 10, 5);
  // A user with a single (repeated) pair keeps it in training.
  const std::uint32_t lone = static_cast<std::uint32_t>(log.users.intern("lone"));
  log.add(lone, 0, 5.0, 1.0f, EventType::kRating);
  log.add(lone, 0, 9.0, 1.0f, EventType::kRating);
  const Split s = split_log(log, config_for(SplitProtocol::kLeaveLastOut));
  const auto sides = pair_sides(log, s);
  std::map<std::uint32_t, int> pairs, test_pairs;
  for (const auto& [pair, side] : sides) {
    EXPECT_TRUE(side.first == 0 || side.second == 0);
    pairs[pair.first] += 1;
    test_pairs[pair.first] += side.second > 0;
  }
  std::map<std::uint32_t, std::size_t> latest;
  for (std::size_t e = 0; e < log.size(); ++e) {
    auto it = latest.find(log.user[e]);
    if (it == latest.end() || log.timestamp[e] >= log.timestamp[it->second]) latest[log.user[e]] = e;
  }
  int users_with_test = 0;
  for (const auto& [user, n] : pairs) {
    EXPECT_EQ(test_pairs[user], n >= 2 ? 1 : 0) << "user " << user;
    users_with_test += n >= 2;
    if (n >= 2) {
      EXPECT_EQ(s.train_mask[latest[user]], 0) << "user " << user << "'s latest event is not test";
    }
  }
  EXPECT_EQ(test_pairs[lone], 0);
  EXPECT_GT(users_with_test, 100);
  const TestSet test = build_test_set(log, s);
  EXPECT_EQ(test.pairs(), users_with_test);
}

TEST(Split, RejectsBadFraction) {
  const InteractionLog log = random_log(10, 10, 3, 6);
  for (double f : {0.0, 1.0, -0.5, 1.5, std::nan("")}) {
    EvalConfig c;
    c.train_fraction = f;
    try {
      split_log(log, c);
      ADD_FAILURE() << "fraction " << f << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("eval.train_fraction"), std::string::npos) << e.what();
    }
  }
}

TEST(Split, ProtocolNamesRoundTrip) {
  for (SplitProtocol p : {SplitProtocol::kStratifiedItem, SplitProtocol::kStratifiedUser,
                          SplitProtocol::kTimeGlobal, SplitProtocol::kLeaveLastOut}) {
    const auto parsed = parse_split_protocol(split_protocol_name(p));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_FALSE(parse_split_protocol("random").has_value());
}

// ---------------------------------------------------------------------------------------
// Ground truth

TEST(TestSet, ExcludesPairsSeenInTrainingAndKeepsLatestRating) {
  InteractionLog log;
  log.add(0, 0, 10, 4.0f, EventType::kRating);  // train
  log.add(0, 0, 30, 2.0f, EventType::kRating);  // test, but the pair was in training
  log.add(0, 1, 40, 3.0f, EventType::kRating);  // test
  log.add(0, 1, 50, 5.0f, EventType::kRating);  // test, later: this rating counts
  log.add(0, 1, 60, 1.0f, EventType::kView);    // not a rating
  log.add(1, 2, 45, 1.0f, EventType::kClick);   // test, implicit only: NaN rating
  log.add(1, 0, 20, 1.0f, EventType::kClick);   // train
  Split s;
  s.train_mask = {1, 0, 0, 0, 0, 0, 1};
  const TestSet t = build_test_set(log, s);
  ASSERT_EQ(t.n_users(), 2);
  ASSERT_EQ(t.n_items(), 3);
  ASSERT_EQ(t.pairs(), 2);
  EXPECT_EQ(t.user_items.row_size(0), 1);
  EXPECT_EQ(t.user_items.indices[0], 1);
  EXPECT_EQ(t.user_items.values[0], 5.0f);
  EXPECT_EQ(t.user_items.indices[1], 2);
  EXPECT_TRUE(std::isnan(t.user_items.values[1]));
  const CsrMatrix train = build_train_pairs(log, s);
  EXPECT_EQ(train.nnz(), 2);
  Split wrong;
  wrong.train_mask = {1, 0};
  EXPECT_THROW(build_test_set(log, wrong), InputError);
}

// ---------------------------------------------------------------------------------------
// Rating errors

TEST(RatingMetrics, HandComputedRmseMae) {
  // Explicit model, 1 factor: score = 3 + b_u + b_i + p_u q_i with p = [1], b_u = 0,
  // q = [0.5, 2, -2.8], b_i = 0  -> predictions 3.5, 5.0, 0.2.
  // Range [1, 5]: clipped 3.5, 5.0, 1.0. Ratings 4, 5, 2 -> errors -0.5, 0, -1.
  // MAE = 1.5 / 3 = 0.5; RMSE = sqrt((0.25 + 0 + 1) / 3) = 0.6454972.
  // A fourth pair without a rating (NaN) is skipped.
  FactorModel m;
  m.kind = ModelKind::kExplicit;
  m.global_bias = 3.0f;
  m.user_factors.resize(1, 1);
  m.user_factors << 1.0f;
  m.item_factors.resize(4, 1);
  m.item_factors << 0.5f, 2.0f, -2.8f, 1.0f;
  m.user_bias = Eigen::VectorXf::Zero(1);
  m.item_bias = Eigen::VectorXf::Zero(4);
  TestSet t;
  t.user_items = build_csr(1, 4, {{0, 0, 4.0f}, {0, 1, 5.0f}, {0, 2, 2.0f}, {0, 3, NAN}}, DuplicatePolicy::kLast);
  const ErrorMetrics e = evaluate_ratings(m, t, RatingRange{1.0f, 5.0f});
  EXPECT_EQ(e.pairs, 3);
  EXPECT_NEAR(e.mae, 0.5, 1e-6);
  EXPECT_NEAR(e.rmse, 0.6454972244, 1e-6);
  EXPECT_THROW(evaluate_ratings(m, t, RatingRange{5.0f, 1.0f}), InputError);
  m.item_factors(1, 0) = NAN;
  EXPECT_THROW(evaluate_ratings(m, t, RatingRange{1.0f, 5.0f}), IntegrityError);
}

TEST(RatingMetrics, ObservedRangeUsesRatingEvents) {
  InteractionLog log;
  log.add(0, 0, 1, 2.0f, EventType::kRating);
  log.add(0, 1, 2, 4.5f, EventType::kRating);
  log.add(0, 2, 3, 1.0f, EventType::kView);  // value 1 of a view is not a rating
  const RatingRange r = observed_rating_range(log);
  EXPECT_EQ(r.min, 2.0f);
  EXPECT_EQ(r.max, 4.5f);
  InteractionLog views;
  views.add(0, 0, 1, 1.0f, EventType::kView);
  EXPECT_THROW(observed_rating_range(views), InputError);
}

// ---------------------------------------------------------------------------------------
// MovieLens 100K: the splits on real data, and the popularity baseline's level.

InteractionLog read_ml100k(const std::string& path) {
  std::ifstream in(path);
  InteractionLog log;
  std::string line, u, i;
  double rating = 0, ts = 0;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    if (!(f >> u >> i >> rating >> ts)) continue;
    log.add(log.users.intern(u), log.items.intern(i), ts, static_cast<float>(rating), EventType::kRating);
  }
  return log;
}

TEST(Ml100k, StratifiedItemPopularityBaseline) {
  const std::string path = std::string(FRESHREC_SHARED_DATA_DIR) + "/ml-100k/u.data";
  const InteractionLog log = read_ml100k(path);
  if (log.empty()) GTEST_SKIP() << path << " not found";
  ASSERT_EQ(log.size(), 100000u);
  const Split s = split_log(log, config_for(SplitProtocol::kStratifiedItem));
  // ML-100K has no repeated pair; the per-item rule keeps ~75% of the ratings.
  EXPECT_NEAR(static_cast<double>(s.train_events()) / 100000.0, 0.75, 0.01);
  const CsrMatrix train = build_train_pairs(log, s);
  const TestSet test = build_test_set(log, s);
  EXPECT_EQ(train.nnz() + test.pairs(), 100000);
  const RankingMetrics m = evaluate_ranking(PopularityScorer(train), train, test, 10, 2);
  std::printf("ml-100k stratified-item popularity: precision@10 %.4f recall@10 %.4f ndcg@10 %.4f "
              "map@10 %.4f hr@10 %.4f coverage@10 %.4f users %lld cold %lld\n",
              m.precision, m.recall, m.ndcg, m.map, m.hit_rate, m.coverage,
              static_cast<long long>(m.users_evaluated), static_cast<long long>(m.cold_users_skipped));
  // Every ML-100K user rated >= 20 movies: all have training pairs, nearly all test pairs.
  EXPECT_EQ(m.cold_users_skipped, 0);
  EXPECT_GE(m.users_evaluated, 930);
  // Far above chance (a random top 10 of ~1,600 items hits ~0.016 per slot) and far
  // below a trained model.
  EXPECT_GT(m.precision, 0.15);
  EXPECT_LT(m.precision, 0.35);
  EXPECT_GT(m.ndcg, 0.15);
  EXPECT_LT(m.coverage, 0.2);  // popularity shows the same few items to everyone
}

}  // namespace
}  // namespace freshrec
