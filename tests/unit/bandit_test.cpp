// Bandit exploration, impressions and the latency budget (issue 8).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <atomic>
#include <cstring>
#include <set>
#include <sstream>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/data/log_reader.hpp"
#include "cpu/data/ndjson_event_parser.hpp"
#include "cpu/experiment/bandit_sim.hpp"
#include "cpu/stream/bandit.hpp"
#include "cpu/stream/explorer.hpp"
#include "cpu/stream/impressions.hpp"
#include "cpu/stream/latency_budget.hpp"
#include "cpu/stream/rng.hpp"
#include "cpu/util/error.hpp"

namespace freshrec::stream {
namespace {

// ---------------------------------------------------------------- posterior

TEST(UserPosterior, MeanAndVarianceMatchADirectSolve) {
  const int k = 5;
  const double lambda = 2.0, noise = 0.5;
  std::vector<float> p0{0.1f, -0.2f, 0.3f, 0.0f, 0.5f};
  UserPosterior post(p0.data(), k, lambda);
  Eigen::MatrixXd A = lambda * Eigen::MatrixXd::Identity(k, k);
  Eigen::VectorXd b = lambda * Eigen::Map<Eigen::VectorXf>(p0.data(), k).cast<double>();
  Xoshiro256 rng(7);
  for (int n = 0; n < 40; ++n) {
    std::vector<float> x(k);
    for (auto& v : x) v = static_cast<float>(rng.uniform() * 2 - 1);
    const double y = rng.uniform() < 0.3 ? 1.0 : 0.0, w = 0.5 + rng.uniform();
    ASSERT_TRUE(post.update(x.data(), y, w, noise));
    const Eigen::VectorXd xv = Eigen::Map<Eigen::VectorXf>(x.data(), k).cast<double>();
    A += (w / noise) * xv * xv.transpose();
    b += (w / noise) * y * xv;
  }
  const Eigen::VectorXd mean = A.ldlt().solve(b);
  for (int i = 0; i < k; ++i) EXPECT_NEAR(post.mean()[static_cast<std::size_t>(i)], mean(i), 1e-9);
  std::vector<float> x{0.3f, 0.1f, -0.7f, 0.2f, 0.05f};
  const Eigen::VectorXd xv = Eigen::Map<Eigen::VectorXf>(x.data(), k).cast<double>();
  EXPECT_NEAR(post.variance_along(x.data()), xv.dot(A.ldlt().solve(xv)), 1e-12);
  // The draw offsets L^-T e_j, stacked, have covariance A^-1.
  Eigen::MatrixXd M(k, k);
  for (int j = 0; j < k; ++j) {
    std::vector<double> z(k, 0.0), off(k);
    z[static_cast<std::size_t>(j)] = 1.0;
    post.sample_offset(z.data(), off.data());
    for (int i = 0; i < k; ++i) M(i, j) = off[static_cast<std::size_t>(i)];
  }
  EXPECT_LT(((M * M.transpose()) - A.inverse()).norm(), 1e-10);
  EXPECT_EQ(post.observations(), 40u);
  EXPECT_EQ(post.memory_bytes(), 8u * (15 + 5) + 8u);
}

TEST(UserPosterior, RefusesNonFiniteUpdatesAndRoundTrips) {
  std::vector<float> p0{1.0f, 2.0f, 3.0f};
  UserPosterior post(p0.data(), 3, 1.0);
  std::vector<float> bad{NAN, 0.0f, 0.0f}, x{1.0f, 0.0f, 1.0f};
  EXPECT_FALSE(post.update(bad.data(), 1.0, 1.0, 1.0));
  EXPECT_FALSE(post.update(x.data(), INFINITY, 1.0, 1.0));
  EXPECT_FALSE(post.update(x.data(), 1.0, 0.0, 1.0));
  EXPECT_EQ(post.observations(), 0u);
  EXPECT_DOUBLE_EQ(post.mean()[1], 2.0);
  ASSERT_TRUE(post.update(x.data(), 1.0, 1.0, 1.0));
  BinaryWriter w;
  post.save(w);
  BinaryReader r(w.bytes());
  const UserPosterior back = UserPosterior::load(r, 3);
  EXPECT_TRUE(r.at_end());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(back.mean()[static_cast<std::size_t>(i)], post.mean()[static_cast<std::size_t>(i)]);
  // A zeroed Cholesky diagonal is refused.
  std::vector<char> bytes = w.bytes();
  const std::size_t diag0 = 8 + 8;  // observations, then the array length prefix
  std::memset(bytes.data() + diag0, 0, 8);
  BinaryReader bad_r(bytes);
  EXPECT_THROW(UserPosterior::load(bad_r, 3), IntegrityError);
}

// The batched update (refactoring A + sum x x^T) is the sequential rank-1 updates up to
// rounding: same mean and variance, same observation count; non-finite inputs skipped.
TEST(UserPosterior, UpdateManyMatchesSequentialUpdates) {
  const int k = 12;
  std::vector<float> prior(k);
  Xoshiro256 r(5);
  for (float& x : prior) x = static_cast<float>(r.uniform() - 0.5);
  for (std::size_t m : {1u, 3u, 4u, 10u, 40u}) {
    UserPosterior one(prior.data(), k, 2.0), many(prior.data(), k, 2.0);
    std::vector<std::vector<float>> xs(m, std::vector<float>(k));
    std::vector<const float*> ptr;
    std::vector<double> ys;
    for (std::size_t j = 0; j < m; ++j) {
      for (float& x : xs[j]) x = static_cast<float>(r.uniform() - 0.5);
      ptr.push_back(xs[j].data());
      ys.push_back(j % 3 == 0 ? 1.0 : 0.0);
      one.update(xs[j].data(), ys[j], 1.5, 0.7);
    }
    std::vector<float> bad(k, 0.0f);
    bad[3] = NAN;
    ptr.push_back(bad.data());
    ys.push_back(1.0);
    EXPECT_EQ(many.update_many(ptr.data(), ys.data(), ptr.size(), 1.5, 0.7), m) << m;
    EXPECT_EQ(many.observations(), one.observations());
    const auto a = one.mean(), b = many.mean();
    for (int d = 0; d < k; ++d) EXPECT_NEAR(a[d], b[d], 1e-10 * (1.0 + std::fabs(a[d]))) << "m=" << m << " d=" << d;
    EXPECT_NEAR(one.variance_along(xs[0].data()), many.variance_along(xs[0].data()), 1e-12) << m;
  }
}

// Format 1 of the explorer stored the Cholesky factor L (A = L L^T); it still restores, to
// the same posterior.
TEST(UserPosterior, LoadsTheCholeskyFormOfFormatOne) {
  const int k = 4;
  std::vector<float> p0{0.2f, -0.1f, 0.4f, 0.0f};
  UserPosterior post(p0.data(), k, 1.5);
  Xoshiro256 rng(3);
  Eigen::MatrixXd A = 1.5 * Eigen::MatrixXd::Identity(k, k);
  for (int n = 0; n < 7; ++n) {
    std::vector<float> x(k);
    for (auto& v : x) v = static_cast<float>(rng.uniform() - 0.5);
    ASSERT_TRUE(post.update(x.data(), n % 2, 1.0, 0.8));
    const Eigen::VectorXd xv = Eigen::Map<Eigen::VectorXf>(x.data(), k).cast<double>();
    A += (1.0 / 0.8) * xv * xv.transpose();
  }
  BinaryWriter now;
  post.save(now);
  BinaryReader now_r(now.bytes());
  const UserPosterior same = UserPosterior::load(now_r, k);
  // The same bytes with the packed lower triangle replaced by L, column by column.
  const Eigen::MatrixXd L = A.llt().matrixL();
  std::vector<double> packed;
  for (int c = 0; c < k; ++c)
    for (int i = c; i < k; ++i) packed.push_back(L(i, c));
  BinaryReader probe(now.bytes());
  probe.get<std::uint64_t>();
  probe.get_vector<double>(static_cast<std::uint64_t>(k * (k + 1) / 2));
  const std::vector<double> b = probe.get_vector<double>(static_cast<std::uint64_t>(k));
  BinaryWriter old_fixed;
  old_fixed.put<std::uint64_t>(post.observations());
  old_fixed.put_vector(packed);
  old_fixed.put_vector(b);
  BinaryReader old_r(old_fixed.bytes());
  const UserPosterior back = UserPosterior::load(old_r, k, UserPosterior::StoredAs::kCholesky);
  EXPECT_TRUE(old_r.at_end());
  for (int i = 0; i < k; ++i) {
    EXPECT_NEAR(back.mean()[static_cast<std::size_t>(i)], post.mean()[static_cast<std::size_t>(i)], 1e-12);
    EXPECT_EQ(same.mean()[static_cast<std::size_t>(i)], post.mean()[static_cast<std::size_t>(i)]);
  }
  std::vector<float> x{0.3f, -0.2f, 0.1f, 0.5f};
  EXPECT_NEAR(back.variance_along(x.data()), post.variance_along(x.data()), 1e-12);
}

TEST(UserPosterior, RebaseMovesThePriorMeanOnly) {
  std::vector<float> p0{0.0f, 0.0f}, p1{1.0f, -1.0f};
  UserPosterior post(p0.data(), 2, 4.0);
  post.rebase(p0.data(), p1.data(), 4.0);
  EXPECT_NEAR(post.mean()[0], 1.0, 1e-12);
  EXPECT_NEAR(post.mean()[1], -1.0, 1e-12);
}

// ---------------------------------------------------------------- selection

struct Catalogue {
  int n = 50, dim = 3;
  std::vector<float> scores, vectors;
  Catalogue() : scores(50), vectors(150) {
    for (int i = 0; i < n; ++i) {
      scores[static_cast<std::size_t>(i)] = 1.0f - 0.01f * static_cast<float>(i);
      for (int d = 0; d < dim; ++d) vectors[static_cast<std::size_t>(i * dim + d)] = 0.1f * static_cast<float>((i + d) % 7);
    }
  }
};

TEST(Exploration, GreedyIsTheTopK) {
  Catalogue c;
  ExploreConfig cfg;
  ItemEvidence ev;
  const auto out = select_with_exploration(c.scores, {}, c.vectors.data(), c.dim, nullptr, ev, cfg, {10, 1, 2, 3});
  ASSERT_EQ(out.size(), 10u);
  for (std::size_t r = 0; r < 10; ++r) {
    EXPECT_EQ(out[r].item, r);
    EXPECT_FALSE(out[r].explored);
  }
}

TEST(Exploration, ThompsonUsesAtMostSlotsNeverExcludedAndIsDeterministic) {
  Catalogue c;
  ExploreConfig cfg;
  cfg.policy = ExplorePolicy::kThompson;
  cfg.slots = 2;
  cfg.item_sigma = 5.0;  // wide: exploration almost surely happens
  ItemEvidence ev;
  std::vector<std::uint8_t> excluded(50, 0);
  for (int i = 10; i < 50; i += 2) excluded[static_cast<std::size_t>(i)] = 1;
  excluded[0] = 1;
  std::vector<float> p0{0.2f, 0.1f, 0.0f};
  UserPosterior post(p0.data(), 3, 1.0);
  int explored_total = 0;
  std::set<std::uint32_t> distinct;
  for (std::uint64_t req = 0; req < 50; ++req) {
    const auto a = select_with_exploration(c.scores, excluded, c.vectors.data(), c.dim, &post, ev, cfg, {10, 9, 4, req});
    const auto b = select_with_exploration(c.scores, excluded, c.vectors.data(), c.dim, &post, ev, cfg, {10, 9, 4, req});
    ASSERT_EQ(a.size(), 10u);
    int explored = 0;
    for (std::size_t r = 0; r < a.size(); ++r) {
      EXPECT_EQ(a[r].item, b[r].item);
      EXPECT_FALSE(excluded[a[r].item]);
      if (a[r].explored) {
        ++explored;
        distinct.insert(a[r].item);
        EXPECT_GE(r, 8u);  // explored items fill the last slots
      }
    }
    EXPECT_LE(explored, 2);
    explored_total += explored;
  }
  EXPECT_GT(explored_total, 50);       // wide uncertainty: most requests explore
  EXPECT_GT(distinct.size(), 5u);      // and a new draw per request explores different items
}

TEST(Exploration, ItemsWithoutEvidenceAreExploredMore) {
  Catalogue c;
  ExploreConfig cfg;
  cfg.policy = ExplorePolicy::kThompson;
  cfg.item_sigma = 0.3;
  ItemEvidence ev;
  ev.resize(50);
  for (std::uint32_t i = 0; i < 50; ++i)
    if (i % 2 == 0) ev.add(i, 1000.0f);  // even items are well known
  EXPECT_LT(ev.sigma(0, cfg), 0.05);
  EXPECT_NEAR(ev.sigma(1, cfg), 0.3, 1e-12);
  int even = 0, odd = 0;
  for (std::uint64_t req = 0; req < 400; ++req)
    for (const auto& s : select_with_exploration(c.scores, {}, nullptr, 0, nullptr, ev, cfg, {10, 5, 1, req}))
      if (s.explored) (s.item % 2 ? odd : even)++;
  EXPECT_GT(odd, 5 * std::max(even, 1));
}

TEST(Exploration, EpsilonFillsSlotsWithItsProbability) {
  Catalogue c;
  ExploreConfig cfg;
  cfg.policy = ExplorePolicy::kEpsilon;
  cfg.slots = 3;
  ItemEvidence ev;
  cfg.epsilon = 1.0;
  auto out = select_with_exploration(c.scores, {}, nullptr, 0, nullptr, ev, cfg, {10, 1, 1, 1});
  int explored = 0;
  for (const auto& s : out) explored += s.explored;
  EXPECT_EQ(explored, 3);
  for (std::size_t r = 0; r < 7; ++r) EXPECT_EQ(out[r].item, r);
  cfg.epsilon = 0.0;
  out = select_with_exploration(c.scores, {}, nullptr, 0, nullptr, ev, cfg, {10, 1, 1, 1});
  for (const auto& s : out) EXPECT_FALSE(s.explored);
}

TEST(Exploration, HashedNormalsAreStandard) {
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = hashed_normal(3, 4, 5, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(std::isfinite(z));
    sum += z;
    sq += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.02);
  EXPECT_EQ(hashed_normal(1, 2, 3, 4), hashed_normal(1, 2, 3, 4));
  EXPECT_NE(hashed_normal(1, 2, 3, 4), hashed_normal(1, 2, 4, 4));
}

// ---------------------------------------------------------------- impressions

TEST(Impressions, ClickInWindowIsARewardTheRestWeakNegatives) {
  ImpressionTracker tr(600.0, 100, 50);
  std::vector<ImpressionOutcome> out;
  tr.on_impression(1, {10, 11, 12}, 1000.0, out);
  tr.on_impression(2, {10}, 1000.0, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(tr.on_engagement(1, 11, 1100.0, out), 1u);  // shown, in window
  EXPECT_EQ(tr.on_engagement(1, 11, 1200.0, out), 0u);  // rewarded once
  EXPECT_EQ(tr.on_engagement(1, 99, 1100.0, out), 0u);  // not shown
  EXPECT_EQ(tr.on_engagement(2, 10, 999.0, out), 0u);   // before the impression
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].rewarded);
  EXPECT_EQ(out[0].item, 11u);
  out.clear();
  tr.expire(1600.0, out);  // window not over yet
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(tr.on_engagement(2, 10, 1700.0, out), 0u);  // after the window: not a reward
  tr.expire(1600.5, out);
  ASSERT_EQ(out.size(), 3u);  // 10 and 12 of user 1, 10 of user 2
  for (const auto& o : out) EXPECT_FALSE(o.rewarded);
  EXPECT_EQ(tr.pending(), 0u);
}

TEST(Impressions, BoundedAndCheckpointed) {
  ImpressionTracker tr(600.0, 3, 2);
  std::vector<ImpressionOutcome> out;
  for (std::uint32_t u = 0; u < 5; ++u) tr.on_impression(u, {1, 2, 3}, 10.0 * u, out);
  EXPECT_EQ(tr.pending(), 3u);
  EXPECT_EQ(out.size(), 4u);  // two impressions closed early, two tracked items each
  tr.on_engagement(3, 2, 35.0, out);
  BinaryWriter w;
  tr.save(w);
  ImpressionTracker back(1.0, 3, 2);
  BinaryReader r(w.bytes());
  back.load(r, 5);
  BinaryWriter w2;
  back.save(w2);
  EXPECT_EQ(w.bytes(), w2.bytes());
  std::vector<ImpressionOutcome> a, b;
  tr.on_engagement(4, 1, 45.0, a);
  back.on_engagement(4, 1, 45.0, b);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  std::vector<char> truncated(w.bytes().begin(), w.bytes().end() - 3);
  BinaryReader tr_r(truncated);
  ImpressionTracker t3(1.0, 3, 2);
  EXPECT_THROW(t3.load(tr_r, 5), IntegrityError);
  BinaryReader unknown_user(w.bytes());
  ImpressionTracker t4(1.0, 3, 2);
  EXPECT_THROW(t4.load(unknown_user, 4), IntegrityError);  // user 4 has a pending impression
}

// ---------------------------------------------------------------- latency budget

TEST(LatencyBudget, SlowSourceIsDroppedAndTheAnswerFallsBack) {
  using namespace std::chrono_literals;
  ParallelFeatureFetcher fetcher(8, 2);
  auto slow_release = std::make_shared<std::atomic<bool>>(false);
  double worst_ms = 0.0;
  for (int r = 0; r < 30; ++r) {
    auto nightly = std::make_shared<int>(0), realtime = std::make_shared<int>(0);
    std::vector<ParallelFeatureFetcher::Task> tasks;
    tasks.push_back({Signal::kNightly, [nightly] { *nightly = 1; }});
    tasks.push_back({Signal::kRealtime, [realtime] { *realtime = 2; }});
    tasks.push_back({Signal::kRemote, [slow_release] {
                       for (int i = 0; i < 200 && !slow_release->load(); ++i) std::this_thread::sleep_for(5ms);
                     }});
    const GatherReport rep = fetcher.gather(std::move(tasks), 20ms);
    worst_ms = std::max(worst_ms, rep.elapsed_ms);
    ASSERT_TRUE(rep.ready[0]);
    ASSERT_TRUE(rep.ready[1]);
    EXPECT_EQ(*nightly, 1);
    EXPECT_FALSE(rep.ready[static_cast<std::size_t>(Signal::kRemote)]);
    EXPECT_TRUE(rep.degraded);
    EXPECT_EQ(ranking_mode(rep), RankingMode::kNightlyOnly);
    EXPECT_EQ(rep.signal_names(), (std::vector<std::string>{"nightly", "realtime"}));
  }
  // Never waits for the slow source (1 s) — only for the deadline (20 ms).
  EXPECT_LT(worst_ms, 500.0);
  const auto& c = fetcher.counters();
  const auto remote = static_cast<std::size_t>(Signal::kRemote);
  EXPECT_EQ(c.late[remote].load() + c.shed[remote].load(), 30u);
  EXPECT_GT(c.shed[remote].load(), 20u);  // the bulkhead keeps the slow source to its cap
  EXPECT_EQ(c.late[0].load(), 0u);
  EXPECT_EQ(c.degraded.load(), 30u);
  slow_release->store(true);
}

TEST(LatencyBudget, NightlyLateMeansPopularityAndFailuresCount) {
  using namespace std::chrono_literals;
  ParallelFeatureFetcher fetcher(4, 1);
  std::vector<ParallelFeatureFetcher::Task> tasks;
  tasks.push_back({Signal::kNightly, [] { std::this_thread::sleep_for(200ms); }});
  tasks.push_back({Signal::kContext, [] { throw std::runtime_error("boom"); }});
  const GatherReport rep = fetcher.gather(std::move(tasks), 10ms);
  EXPECT_EQ(ranking_mode(rep), RankingMode::kPopularity);
  EXPECT_EQ(fetcher.counters().failed[static_cast<std::size_t>(Signal::kContext)].load(), 1u);
  EXPECT_EQ(fetcher.counters().popularity_fallbacks.load(), 1u);
  // All fast: nothing degraded.
  std::vector<ParallelFeatureFetcher::Task> fast;
  fast.push_back({Signal::kRealtime, [] {}});
  const GatherReport ok = fetcher.gather(std::move(fast), 1s);
  EXPECT_FALSE(ok.ready[0]);
  EXPECT_TRUE(ok.ready[1]);
  EXPECT_FALSE(ok.degraded);
}

// The hedge (a fallback task) starts only when the primary is late; when it is not needed it
// is neither run, requested nor a degradation; when the primary throws it starts at once.
TEST(LatencyBudget, HedgeStartsOnlyWhenThePrimaryIsLate) {
  using namespace std::chrono_literals;
  ParallelFeatureFetcher fetcher(4, 4);
  const auto nightly = static_cast<std::size_t>(Signal::kNightly), realtime = static_cast<std::size_t>(Signal::kRealtime);
  auto make = [](std::chrono::milliseconds primary_sleep, bool primary_throws, std::shared_ptr<std::atomic<int>> ran) {
    std::vector<ParallelFeatureFetcher::Task> tasks;
    tasks.push_back({Signal::kRealtime, [primary_sleep, primary_throws] {
                       std::this_thread::sleep_for(primary_sleep);
                       if (primary_throws) throw std::runtime_error("primary failed");
                     }});
    tasks.push_back({Signal::kNightly, [ran] { ++*ran; }, /*fallback=*/true});
    return tasks;
  };
  // Fast primary: the hedge never runs.
  auto ran = std::make_shared<std::atomic<int>>(0);
  for (int r = 0; r < 20; ++r) {
    const GatherReport rep = fetcher.gather(make(0ms, false, ran), 2s, 500ms);
    ASSERT_TRUE(rep.ready[realtime]);
    EXPECT_FALSE(rep.requested[nightly]);
    EXPECT_FALSE(rep.degraded);
    EXPECT_EQ(ranking_mode(rep), RankingMode::kFull);
  }
  fetcher.wait_idle();
  EXPECT_EQ(ran->load(), 0);
  EXPECT_EQ(fetcher.counters().degraded.load(), 0u);
  EXPECT_EQ(fetcher.counters().popularity_fallbacks.load(), 0u);
  // Slow primary (past the budget): the hedge starts after 20 ms and answers.
  const auto t0 = std::chrono::steady_clock::now();
  const GatherReport slow = fetcher.gather(make(400ms, false, ran), 150ms, 20ms);
  const double waited_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(slow.requested[nightly]);
  EXPECT_TRUE(slow.ready[nightly]);
  EXPECT_FALSE(slow.ready[realtime]);
  EXPECT_TRUE(slow.degraded);
  EXPECT_EQ(ranking_mode(slow), RankingMode::kNightlyOnly);
  EXPECT_GE(waited_ms, 150.0);  // waited for the primary up to the budget
  EXPECT_EQ(fetcher.counters().late[realtime].load(), 1u);
  fetcher.wait_idle();
  EXPECT_EQ(ran->load(), 1);
  // A primary that throws starts the hedge at once, long before the hedge time.
  const GatherReport failed = fetcher.gather(make(0ms, true, ran), 2s, 1s);
  EXPECT_TRUE(failed.ready[nightly]);
  EXPECT_LT(failed.elapsed_ms, 900.0);
  EXPECT_EQ(fetcher.counters().failed[realtime].load(), 1u);
  // Hedge 0: both start at once, and the gather ends with the primary.
  const GatherReport both = fetcher.gather(make(0ms, false, ran), 2s);
  EXPECT_TRUE(both.ready[realtime]);
  EXPECT_FALSE(both.degraded);
  fetcher.wait_idle();
  EXPECT_EQ(ran->load(), 3);
}

// ---------------------------------------------------------------- impression events

TEST(ImpressionEvent, ParsesItemsAndRequestId) {
  Event e;
  std::string reason;
  ASSERT_TRUE(parse_ndjson_event(
      R"({"user_id":"u1","event_type":"impression","timestamp":1700000000,"properties":{"items":["a",17,"c"],"request_id":"r-9"}})",
      e, reason))
      << reason;
  EXPECT_EQ(e.type, EventType::kImpression);
  EXPECT_EQ(e.items, (std::vector<std::string>{"a", "17", "c"}));
  EXPECT_EQ(e.request_id, "r-9");
  EXPECT_TRUE(e.item_id.empty());
  // A later click reuses the event: its items are cleared.
  ASSERT_TRUE(parse_ndjson_event(R"({"user_id":"u1","item_id":"a","event_type":"click","timestamp":1700000001})", e, reason));
  EXPECT_TRUE(e.items.empty());
  EXPECT_FALSE(parse_ndjson_event(R"({"user_id":"u1","event_type":"impression","timestamp":1})", e, reason));
  EXPECT_NE(reason.find("properties.items"), std::string::npos);
  EXPECT_FALSE(parse_ndjson_event(R"({"user_id":"u1","event_type":"impression","timestamp":1,"properties":{"items":[1.5]}})", e, reason));
  EXPECT_NE(reason.find("properties.items[0]"), std::string::npos);
  EXPECT_FALSE(parse_ndjson_event(R"({"user_id":"u1","event_type":"impression","timestamp":1,"properties":{"items":"a"}})", e, reason));
  std::string many = R"({"user_id":"u1","event_type":"impression","timestamp":1,"properties":{"items":[)";
  for (std::size_t i = 0; i <= kMaxImpressionItems; ++i) many += (i ? "," : "") + std::to_string(i);
  many += "]}}";
  EXPECT_FALSE(parse_ndjson_event(many, e, reason));
  EXPECT_NE(reason.find("more than"), std::string::npos);
  EXPECT_EQ(event_type_name(EventType::kImpression), "impression");
  EXPECT_EQ(parse_event_type("impression"), EventType::kImpression);
}

// ---------------------------------------------------------------- simulation

TEST(BanditSim, ThompsonFindsNewItemsFasterThanGreedyAndIsDeterministic) {
  BanditSimConfig sim;
  sim.users = 150;
  sim.initial_items = 100;
  sim.new_items = 150;
  sim.requests = 8000;
  ExploreConfig base;
  base.prior_precision = 44.0;
  base.noise_variance = 0.1;
  base.item_sigma = 0.15;
  base.reward_window_seconds = 600;
  ExploreConfig greedy = base, thompson = base;
  thompson.policy = ExplorePolicy::kThompson;
  const BanditRunResult g = run_bandit_simulation(sim, greedy, 5);
  const BanditRunResult t = run_bandit_simulation(sim, thompson, 5);
  const BanditRunResult t2 = run_bandit_simulation(sim, thompson, 5);
  EXPECT_EQ(t.clicks, t2.clicks);
  EXPECT_EQ(t.regret, t2.regret);
  EXPECT_LT(t.new_item_first_click_events, 0.5 * g.new_item_first_click_events);
  EXPECT_GT(t.coverage, g.coverage);
  EXPECT_GT(t.new_items_clicked, g.new_items_clicked);
}

TEST(BanditSim, ConfigIsValidated) {
  const std::string ok = "simulation: {users: 10}\nseeds: [1, 2]\nexplore: {slots: 1}\nvariants: {g: {policy: greedy}, t: {policy: thompson}}\n";
  const auto c = parse_bandit_experiment(ok, "t.yaml");
  EXPECT_EQ(c.sim.users, 10);
  ASSERT_EQ(c.variants.size(), 2u);
  EXPECT_EQ(c.variants[1].explore.policy, ExplorePolicy::kThompson);
  EXPECT_EQ(c.variants[1].explore.slots, 1);
  EXPECT_EQ(c.seeds, (std::vector<std::uint64_t>{1, 2}));
  try {
    parse_bandit_experiment("simulation: {userz: 10}\nvariants: {g: {}}\n", "t.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("simulation.userz"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_bandit_experiment("simulation: {}\nvariants: {g: {policy: greedyy}}\n", "t.yaml"), InputError);
  EXPECT_THROW(parse_bandit_experiment("simulation: {}\nvariants: {g: {slots: -1}}\n", "t.yaml"), InputError);
  EXPECT_THROW(parse_bandit_experiment("simulation: {}\n", "t.yaml"), InputError);
}

}  // namespace
}  // namespace freshrec::stream

// ---------------------------------------------------------------- explorer over an engine

namespace freshrec::stream {
namespace {

std::shared_ptr<FactorModel> tiny_model(int users, int items, int k) {
  auto m = std::make_shared<FactorModel>();
  m->user_factors.resize(users, k);
  m->item_factors.resize(items, k);
  Xoshiro256 r(3);
  for (Eigen::Index j = 0; j < m->user_factors.size(); ++j) m->user_factors.data()[j] = static_cast<float>(r.uniform() - 0.5);
  for (Eigen::Index j = 0; j < m->item_factors.size(); ++j) m->item_factors.data()[j] = static_cast<float>(r.uniform() - 0.5);
  m->user_bias = Eigen::VectorXf::Zero(users);
  m->item_bias = Eigen::VectorXf::Zero(items);
  for (int u = 0; u < users; ++u) m->user_ids.intern("u" + std::to_string(u));
  for (int i = 0; i < items; ++i) m->item_ids.intern("i" + std::to_string(i));
  return m;
}

Event make(const std::string& u, const std::string& i, EventType t, double ts) {
  Event e;
  e.user_id = u;
  e.item_id = i;
  e.type = t;
  e.timestamp = ts;
  return e;
}

TEST(Explorer, ClosesTheLoopExploresWithinSlotsAndCheckpoints) {
  const auto model = tiny_model(20, 60, 4);
  StreamConfig sc;
  StreamEngine engine(sc, model);
  ExplorerConfig cfg;
  cfg.explore.policy = ExplorePolicy::kThompson;
  cfg.explore.slots = 2;
  cfg.explore.item_sigma = 3.0;
  cfg.explore.reward_window_seconds = 100;
  Explorer ex(cfg);
  double t = 1000.0;
  auto feed = [&](const Event& e) {
    if (e.type != EventType::kImpression) {
      ASSERT_TRUE(engine.apply(e).accepted);
    }
    ex.observe(e, *model);
  };
  Event imp;
  imp.user_id = "u1";
  imp.type = EventType::kImpression;
  imp.items = {"i1", "i2", "i3"};
  imp.timestamp = t;
  feed(imp);
  feed(make("u1", "i2", EventType::kClick, t + 10));  // a reward
  feed(make("u2", "fresh", EventType::kView, t + 20)); // a stream-born (cold) item
  feed(make("u3", "i9", EventType::kView, t + 200));   // closes the window: i1, i3 weak negatives
  EXPECT_EQ(ex.counters().rewards, 1u);
  EXPECT_EQ(ex.counters().weak_negatives, 2u);
  EXPECT_EQ(ex.counters().posterior_updates, 3u);
  EXPECT_EQ(ex.tracked_users(), 1u);

  RecommendRequest req;
  req.user_id = "u1";
  req.k = 10;
  req.cart_items = {"i5"};
  const Recommendation g = engine.recommend(req);
  int explored_requests = 0;
  bool saw_cold = false;
  for (std::uint64_t n = 1; n <= 30; ++n) {
    const Recommendation a = ex.recommend(engine, req, n);
    const Recommendation b = ex.recommend(engine, req, n);
    ASSERT_EQ(a.items.size(), 10u);
    int outside = 0;
    for (std::size_t r = 0; r < a.items.size(); ++r) {
      EXPECT_EQ(a.items[r].item_id, b.items[r].item_id);  // deterministic per request number
      EXPECT_NE(a.items[r].item_id, "i5");                 // cart items never shown
      bool in_greedy = false;
      for (const auto& s : g.items) in_greedy |= s.item_id == a.items[r].item_id;
      outside += !in_greedy;
      saw_cold |= a.items[r].item_id == "fresh";
    }
    EXPECT_LE(outside, 2);
    explored_requests += outside > 0;
    for (std::size_t r = 0; r < 8; ++r) EXPECT_EQ(a.items[r].item_id, g.items[r].item_id);  // greedy head kept
  }
  EXPECT_GT(explored_requests, 10);
  EXPECT_TRUE(saw_cold);

  std::stringstream ckpt;
  ex.save(ckpt);
  Explorer back(cfg);
  back.restore(ckpt);
  EXPECT_EQ(back.state_digest(), ex.state_digest());
  EXPECT_EQ(back.recommend(engine, req, 7).items[9].item_id, ex.recommend(engine, req, 7).items[9].item_id);
  // A click on an item nobody was shown has nothing to reward: no state; an impression has.
  feed(make("u1", "i4", EventType::kClick, t + 300));
  EXPECT_EQ(back.state_digest(), ex.state_digest());
  Event again = imp;
  again.timestamp = t + 310;
  feed(again);
  EXPECT_NE(back.state_digest(), ex.state_digest());
  std::string bytes = ckpt.str();
  std::stringstream cut(bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(back.restore(cut), IntegrityError);
}

// A hot swap moves each posterior's prior to the new nightly user vector and keeps the
// evidence: with the item vectors unchanged, a posterior rebased from model 1 to model 2
// equals one that saw the same outcomes on model 2 from the start.
TEST(Explorer, HotSwapRebasesPriorsAndKeepsEvidence) {
  const auto m1 = tiny_model(20, 60, 4);
  auto m2 = std::make_shared<FactorModel>(*m1);
  for (Eigen::Index j = 0; j < m2->user_factors.size(); ++j) m2->user_factors.data()[j] += 0.25f * static_cast<float>(j % 3);
  ExplorerConfig cfg;
  cfg.explore.policy = ExplorePolicy::kThompson;
  cfg.explore.slots = 2;
  cfg.explore.prior_precision = 2.0;
  cfg.explore.reward_window_seconds = 100;
  Explorer swapped(cfg), direct(cfg);
  double t = 1000.0;
  std::vector<Event> events;
  for (int r = 0; r < 5; ++r, t += 300) {
    Event imp;
    imp.user_id = "u1";
    imp.type = EventType::kImpression;
    imp.items = {"i" + std::to_string(r), "i" + std::to_string(r + 10)};
    imp.timestamp = t;
    events.push_back(imp);
    if (r % 2 == 0) events.push_back(make("u1", "i" + std::to_string(r), EventType::kClick, t + 5));
  }
  events.push_back(make("u2", "i1", EventType::kView, t + 500));  // closes the last window
  for (const Event& e : events) {
    swapped.observe(e, *m1);
    direct.observe(e, *m2);
  }
  ASSERT_GE(swapped.counters().posterior_updates, 10u);
  const auto before = swapped.posterior_mean("u1");
  swapped.rebase(*m1, *m2);
  const auto after = swapped.posterior_mean("u1"), want = direct.posterior_mean("u1");
  ASSERT_TRUE(before && after && want);
  double moved = 0;
  for (std::size_t d = 0; d < want->size(); ++d) {
    EXPECT_NEAR((*after)[d], (*want)[d], 1e-9) << d;
    moved += std::fabs((*after)[d] - (*before)[d]);
  }
  EXPECT_GT(moved, 0.1);  // the prior really moved
  EXPECT_FALSE(swapped.posterior_mean("nobody"));

  // Another k cannot carry a posterior over: they start again from the new prior.
  const auto k8 = tiny_model(20, 60, 8);
  swapped.rebase(*m2, *k8);
  EXPECT_FALSE(swapped.posterior_mean("u1"));
}

// Users without a pending impression are forgotten by the explorer's id table (posteriors
// are keyed by the id and stay): distinct users by the million hold a bounded table, and a
// user whose impression is still pending keeps being matched across a compaction and a
// checkpoint.
TEST(Explorer, UserIdsStayBoundedUnderChurn) {
  const auto model = tiny_model(20, 60, 4);
  ExplorerConfig cfg;
  cfg.explore.policy = ExplorePolicy::kThompson;
  cfg.explore.slots = 2;
  cfg.explore.reward_window_seconds = 50;
  cfg.explore.max_pending_impressions = 10;
  Explorer ex(cfg);
  const std::size_t bound = 2 * 10 + 1024;
  Event keep;
  keep.user_id = "u7";
  keep.type = EventType::kImpression;
  keep.items = {"i1", "i2"};
  double t = 1000.0;
  std::size_t most = 0;
  for (int j = 0; j < 5000; ++j, t += 1.0) {
    if (j % 1000 == 999) {  // u7 is shown something shortly before each compaction point
      keep.timestamp = t;
      ex.observe(keep, *model);
    }
    Event imp;
    imp.user_id = "churn" + std::to_string(j);
    imp.type = EventType::kImpression;
    imp.items = {"i" + std::to_string(j % 60)};
    imp.timestamp = t;
    ex.observe(imp, *model);
    ex.observe(make("viewer" + std::to_string(j), "i3", EventType::kView, t), *model);  // never a key
    most = std::max(most, ex.user_ids_held());
  }
  EXPECT_LE(most, bound + 1);
  EXPECT_GE(ex.counters().impressions, 5000u);

  keep.timestamp = t;
  ex.observe(keep, *model);
  std::stringstream ckpt;
  ex.save(ckpt);
  Explorer back(cfg);
  back.restore(ckpt);
  EXPECT_EQ(back.state_digest(), ex.state_digest());
  const auto rewards = back.counters().rewards;
  back.observe(make("u7", "i2", EventType::kClick, t + 1), *model);
  // Both of u7's impressions still pending (shown 1 s apart, window 50 s) showed i2.
  EXPECT_EQ(back.counters().rewards, rewards + 2);
}

// The explore knobs and the guard's report knobs map from YAML, validated, keys named.
TEST(ExploreYaml, MapsValidatesAndShipsOff) {
  const StreamProcessConfig shipped = load_stream_config(std::string(FRESHREC_SOURCE_DIR) + "/configs/stream.yaml");
  const StreamConfig d;
  EXPECT_EQ(shipped.stream.explore.slots, 0);  // off unless a deployment opts in
  EXPECT_EQ(d.explore.slots, 0);
  EXPECT_EQ(shipped.stream.explore.policy, d.explore.policy);
  EXPECT_EQ(shipped.stream.explore.impression_weight, d.explore.impression_weight);
  EXPECT_EQ(shipped.stream.explore.reward_window_seconds, d.explore.reward_window_seconds);
  EXPECT_EQ(shipped.stream.guard.log_min_interval_seconds, d.guard.log_min_interval_seconds);
  EXPECT_TRUE(shipped.stream.guard.log_decisions);  // the updater reports decisions (unless --quiet)

  const StreamProcessConfig c = parse_stream_config(
      "source: {path: a}\nstream:\n  guard: {log_decisions: false, log_min_interval_seconds: 0}\n"
      "  explore: {slots: 3, policy: epsilon, epsilon: 0.25, impression_weight: 0.05, reward_window_seconds: 60,\n"
      "            max_pending_impressions: 7, max_items_per_impression: 4, item_sigma: 0.5}\n",
      "t.yaml");
  EXPECT_FALSE(c.stream.guard.log_decisions);
  EXPECT_EQ(c.stream.guard.log_min_interval_seconds, 0.0);
  EXPECT_EQ(c.stream.explore.slots, 3);
  EXPECT_EQ(c.stream.explore.policy, ExplorePolicy::kEpsilon);
  EXPECT_EQ(c.stream.explore.epsilon, 0.25);
  EXPECT_EQ(c.stream.explore.impression_weight, 0.05f);
  EXPECT_EQ(c.stream.explore.reward_window_seconds, 60.0);
  EXPECT_EQ(c.stream.explore.max_pending_impressions, 7u);
  EXPECT_EQ(c.stream.explore.max_items_per_impression, 4u);
  EXPECT_EQ(c.stream.explore.item_sigma, 0.5);

  auto error_of = [](const std::string& text) -> std::string {
    try {
      parse_stream_config(text, "t.yaml");
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  std::string e = error_of("source: {path: a}\nstream:\n  explore: {slots: -1}\n");
  EXPECT_NE(e.find("stream.explore.slots"), std::string::npos) << e;
  e = error_of("source: {path: a}\nstream:\n  explore: {policy: linucb}\n");
  EXPECT_NE(e.find("stream.explore.policy"), std::string::npos) << e;
  e = error_of("source: {path: a}\nstream:\n  explore: {impression_weight: -0.1}\n");
  EXPECT_NE(e.find("stream.explore.impression_weight"), std::string::npos) << e;
  e = error_of("source: {path: a}\nstream:\n  guard: {log_min_interval_seconds: -1}\n");
  EXPECT_NE(e.find("stream.guard.log_min_interval_seconds"), std::string::npos) << e;
  e = error_of("source: {path: a}\nstream:\n  explore: {slot: 2}\n");
  EXPECT_NE(e.find("stream.explore.slot"), std::string::npos) << e;
}


// ---------------------------------------------------------------- audit: edge cases

// Each accepted observation is finite on its own, but their sum in A or b can overflow:
// the posterior then held an infinite entry, and its checkpoint could not be restored
// (load refuses non-finite entries), nor did its mean stay finite.
TEST(UserPosterior, AccumulatedOverflowKeepsTheStateFiniteAndRestorable) {
  const std::vector<float> p0{0.0f};
  auto round_trips = [](const UserPosterior& post) {
    BinaryWriter w;
    post.save(w);
    BinaryReader r(w.bytes());
    EXPECT_NO_THROW(UserPosterior::load(r, post.dim()));
    for (double m : post.mean()) EXPECT_TRUE(std::isfinite(m));
  };
  {  // b: y * x summed past DBL_MAX
    UserPosterior post(p0.data(), 1, 1.0);
    const std::vector<float> x{1.0f};
    EXPECT_TRUE(post.update(x.data(), 1e307, 1.0, 1.0));
    for (int n = 0; n < 30; ++n) post.update(x.data(), 1e307, 1.0, 1.0);
    round_trips(post);
  }
  {  // A: s2 |x|^2 summed past DBL_MAX (batched update_many too)
    UserPosterior post(p0.data(), 1, 1.0);
    const std::vector<float> x{1e30f};
    EXPECT_TRUE(post.update(x.data(), 0.0, 1.0, 1e-247));
    for (int n = 0; n < 30; ++n) post.update(x.data(), 0.0, 1.0, 1e-247);
    const float* xs[5] = {x.data(), x.data(), x.data(), x.data(), x.data()};
    const double ys[5] = {0, 0, 0, 0, 0};
    post.update_many(xs, ys, 5, 1.0, 1e-247);
    round_trips(post);
  }
}

// A budget or hedge of nanoseconds::max() ("no deadline") overflowed the steady_clock
// time point (signed overflow: UB, aborts under UBSan).
TEST(LatencyBudget, HugeBudgetAndHedgeDoNotOverflow) {
  ParallelFeatureFetcher fetcher(2, 2);
  auto nightly = std::make_shared<int>(0), realtime = std::make_shared<int>(0);
  std::vector<ParallelFeatureFetcher::Task> tasks;
  tasks.push_back({Signal::kRealtime, [realtime] { *realtime = 1; }});
  tasks.push_back({Signal::kNightly, [nightly] { *nightly = 1; }, /*fallback=*/true});
  const GatherReport rep = fetcher.gather(std::move(tasks), std::chrono::nanoseconds::max(), std::chrono::nanoseconds::max());
  EXPECT_TRUE(rep.ready[static_cast<std::size_t>(Signal::kRealtime)]);
  EXPECT_FALSE(rep.degraded);
  std::vector<ParallelFeatureFetcher::Task> late;
  late.push_back({Signal::kRealtime, [realtime] { *realtime = 2; }});
  const GatherReport neg = fetcher.gather(std::move(late), std::chrono::nanoseconds::min());
  EXPECT_TRUE(neg.requested[static_cast<std::size_t>(Signal::kRealtime)]);
  fetcher.wait_idle();
}

// Explorer checkpoint bytes by hand: one item "i1", one user "u1", one pending impression
// of `shown_item` at t = 1000 (window 100), `evidence` as the item evidence.
std::string explorer_bytes(std::uint32_t shown_item, const std::vector<float>& evidence) {
  BinaryWriter w;
  w.put<std::uint32_t>(2);
  w.put<std::uint64_t>(1);
  w.put_string("i1");
  w.put<std::uint64_t>(1);
  w.put_string("u1");
  w.put_vector(evidence);
  w.put<double>(100.0);                 // tracker: window
  w.put<std::uint64_t>(1);              // next seq
  w.put<std::uint64_t>(1);              // pending
  w.put<std::uint64_t>(0);              // seq
  w.put<std::uint32_t>(0);              // user
  w.put<double>(1000.0);                // t
  w.put_vector(std::vector<std::uint32_t>{shown_item});
  w.put_vector(std::vector<std::uint8_t>{0});
  w.put<std::uint64_t>(0);              // cold
  w.put<std::uint64_t>(0);              // posteriors
  w.put<std::int32_t>(0);               // k
  for (int c = 0; c < 5; ++c) w.put<std::uint64_t>(0);
  return std::string(w.bytes().begin(), w.bytes().end());
}

// A pending impression of an item key the checkpoint does not name was accepted; when its
// window closed, the explorer read items_.id() past its end (heap overflow). Item evidence
// that is not a finite count >= 0 was accepted too (NaN/negative widths in every draw).
TEST(Explorer, RestoreRefusesUnknownItemKeysAndBadEvidence) {
  ExplorerConfig cfg;
  cfg.explore.policy = ExplorePolicy::kThompson;
  {
    Explorer ok(cfg);
    std::stringstream in(explorer_bytes(0, {0.0f}));
    ASSERT_NO_THROW(ok.restore(in));
    const auto model = tiny_model(4, 4, 2);
    std::vector<Explorer::WeakNegative> weak;
    ok.observe(make("u1", "i1", EventType::kView, 2000.0), *model, &weak);
    ASSERT_EQ(weak.size(), 1u);
    EXPECT_EQ(ok.item_name(weak[0].item), "i1");
  }
  Explorer ex(cfg);
  std::stringstream unknown_item(explorer_bytes(7, {}));
  EXPECT_THROW(ex.restore(unknown_item), IntegrityError);
  std::stringstream nan_evidence(explorer_bytes(0, {NAN}));
  EXPECT_THROW(ex.restore(nan_evidence), IntegrityError);
  std::stringstream negative_evidence(explorer_bytes(0, {-5.0f}));
  EXPECT_THROW(ex.restore(negative_evidence), IntegrityError);
}

// A checkpoint taken mid-window (pending impressions, compaction and LRU eviction under way)
// and restored continues exactly like the uninterrupted run.
TEST(Explorer, RestoreMidWindowContinuesLikeTheUninterruptedRun) {
  const auto model = tiny_model(30, 40, 3);
  ExplorerConfig cfg;
  cfg.explore.policy = ExplorePolicy::kThompson;
  cfg.explore.reward_window_seconds = 50;
  cfg.explore.max_pending_impressions = 3;
  cfg.max_users = 4;
  cfg.max_cold_items = 2;
  std::vector<Event> events;
  Xoshiro256 r(11);
  for (int n = 0; n < 400; ++n) {
    const double t = 1000.0 + n;
    const std::string u = "u" + std::to_string(static_cast<int>(r.uniform() * 2000));
    if (r.uniform() < 0.5) {
      Event imp;
      imp.user_id = u;
      imp.type = EventType::kImpression;
      imp.timestamp = t;
      for (int j = 0; j < 3; ++j) imp.items.push_back("i" + std::to_string(static_cast<int>(r.uniform() * 40)));
      imp.items.push_back(imp.items[0]);  // the same item twice
      events.push_back(imp);
    } else {
      const bool cold = r.uniform() < 0.1;
      events.push_back(make(u, cold ? "new" + std::to_string(n) : "i" + std::to_string(static_cast<int>(r.uniform() * 40)),
                            EventType::kClick, t));
    }
  }
  Explorer straight(cfg);
  for (const Event& e : events) straight.observe(e, *model);
  for (std::size_t cut : {std::size_t{1}, std::size_t{57}, std::size_t{200}, std::size_t{399}}) {
    Explorer a(cfg);
    for (std::size_t j = 0; j < cut; ++j) a.observe(events[j], *model);
    std::stringstream ckpt;
    a.save(ckpt);
    Explorer b(cfg);
    b.restore(ckpt);
    ASSERT_EQ(b.state_digest(), a.state_digest());
    for (std::size_t j = cut; j < events.size(); ++j) b.observe(events[j], *model);
    EXPECT_EQ(b.state_digest(), straight.state_digest()) << "cut at " << cut;
  }
}

// Posteriors of one dimension (a checkpoint's k, or a model observed before) met a baseline
// of another without rebase(): the update read k_posterior floats from an item row of
// k_model (heap overflow past the last row), and save() then mixed two dimensions.
TEST(Explorer, PosteriorsOfAnotherDimensionAreNotUpdatedWithShorterRows) {
  ExplorerConfig cfg;
  cfg.explore.policy = ExplorePolicy::kThompson;
  cfg.explore.reward_window_seconds = 100;
  const auto m8 = tiny_model(4, 4, 8), m2 = tiny_model(4, 4, 2);
  Explorer a(cfg);
  Event imp;
  imp.user_id = "u1";
  imp.type = EventType::kImpression;
  imp.items = {"i1"};
  imp.timestamp = 1000.0;
  a.observe(imp, *m8);
  a.observe(make("u1", "i1", EventType::kView, 2000.0), *m8);
  ASSERT_EQ(a.posterior_mean("u1")->size(), 8u);
  std::stringstream ckpt;
  a.save(ckpt);
  Explorer b(cfg);
  b.restore(ckpt);  // the checkpoint's posteriors have k = 8; the model now has k = 2
  imp.items = {"i3"};  // the last row of m2
  imp.timestamp = 3000.0;
  b.observe(imp, *m2);
  imp.user_id = "u2";
  b.observe(imp, *m2);
  b.observe(make("u1", "i1", EventType::kView, 4000.0), *m2);
  ASSERT_TRUE(b.posterior_mean("u1"));
  EXPECT_EQ(b.posterior_mean("u1")->size(), 2u);
  EXPECT_EQ(b.posterior_mean("u2")->size(), 2u);
  std::stringstream again;
  b.save(again);
  Explorer c(cfg);
  EXPECT_NO_THROW(c.restore(again));
  EXPECT_EQ(c.state_digest(), b.state_digest());
}

}  // namespace
}  // namespace freshrec::stream
