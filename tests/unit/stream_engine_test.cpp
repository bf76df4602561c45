// Streaming engine: sessions, decay, windows, SGD, fold-in, guard, determinism, recovery,
// eviction, finite checks, exclusions and the "running shoes" story.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <gtest/gtest.h>

#include "cpu/stream/stream_engine.hpp"
#include "cpu/stream/vec_ops.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

// Random implicit model with ids u0.., i0.. (deterministic LCG).
std::shared_ptr<FactorModel> random_model(int n_users, int n_items, int k, std::uint32_t seed = 7) {
  auto m = std::make_shared<FactorModel>();
  m->user_factors.resize(n_users, k);
  m->item_factors.resize(n_items, k);
  std::uint64_t s = seed;
  auto next = [&s] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>((s >> 40) & 0xFFFF) / 65536.0f - 0.5f;
  };
  for (int u = 0; u < n_users; ++u)
    for (int d = 0; d < k; ++d) m->user_factors(u, d) = 0.3f * next();
  for (int i = 0; i < n_items; ++i)
    for (int d = 0; d < k; ++d) m->item_factors(i, d) = 0.3f * next();
  m->user_bias = Eigen::VectorXf::Zero(n_users);
  m->item_bias = Eigen::VectorXf::Zero(n_items);
  for (int u = 0; u < n_users; ++u) m->user_ids.intern("u" + std::to_string(u));
  for (int i = 0; i < n_items; ++i) m->item_ids.intern("i" + std::to_string(i));
  return m;
}

Event ev(const std::string& user, const std::string& item, EventType type, double t) {
  Event e;
  e.user_id = user;
  e.item_id = item;
  e.type = type;
  e.timestamp = t;
  return e;
}

StreamConfig quiet_config() {
  StreamConfig c;
  c.guard.log_decisions = false;
  return c;
}

// A mixed stream: known and new users, known and new items, all event types.
std::vector<Event> mixed_stream(int n, int n_users, int n_items, std::uint32_t seed) {
  std::vector<Event> out;
  std::uint64_t s = seed;
  auto next = [&s](std::uint64_t mod) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (s >> 33) % mod;
  };
  for (int j = 0; j < n; ++j) {
    const std::string user = (next(5) == 0 ? "new_u" : "u") + std::to_string(next(n_users));
    const std::string item = (next(10) == 0 ? "new_i" : "i") + std::to_string(next(n_items));
    const auto type = static_cast<EventType>(next(4));
    Event e = ev(user, item, type, 1000.0 + j * 7.0 + static_cast<double>(next(5)));
    e.category = "cat" + std::to_string(next(3));
    e.price = static_cast<double>(next(100));
    if (next(20) == 0) {
      e.type = EventType::kSearch;
      e.item_id.clear();
      e.query = "q" + std::to_string(next(4));
    }
    out.push_back(e);
  }
  return out;
}

/// Checkpoint and resume at `cut`: `first` (on `m`) takes events [0, cut) through
/// `apply_range`, is saved and restored into an engine on `restore_on`, which must then
/// hold the same state and, after events [cut, end), the state `want_digest` of a run that
/// never stopped.
template <class ApplyRange>
void expect_resume_matches(const StreamConfig& c, const std::shared_ptr<FactorModel>& m,
                           const std::shared_ptr<FactorModel>& restore_on, const std::vector<Event>& events,
                           std::size_t cut, const std::string& want_digest, ApplyRange apply_range) {
  StreamEngine first(c, m);
  apply_range(first, 0, cut);
  std::stringstream ckpt;
  first.save(ckpt);
  StreamEngine resumed(c, restore_on);
  ASSERT_NO_THROW(resumed.restore(ckpt)) << "cut at " << cut;
  EXPECT_EQ(resumed.state_digest(), first.state_digest()) << "cut at " << cut;
  for (std::size_t j = cut; j < events.size(); ++j) resumed.apply(events[j]);
  EXPECT_EQ(resumed.state_digest(), want_digest) << "cut at " << cut;
}
void expect_resume_matches(const StreamConfig& c, const std::shared_ptr<FactorModel>& m,
                           const std::vector<Event>& events, std::size_t cut, const std::string& want_digest) {
  expect_resume_matches(c, m, m, events, cut, want_digest, [&](StreamEngine& e, std::size_t from, std::size_t to) {
    for (std::size_t j = from; j < to; ++j) e.apply(events[j]);
  });
}

// The SIMD quantiser must give the bytes of the plain loop (recommend's exactness bound and
// the state digest rely on it): random rows, rows with exact .5 ties, a zero row, odd k.
TEST(StreamKernels, QuantiseRowMatchesScalarReference) {
  auto reference = [](const float* q, int k, std::int8_t* q8) {
    float m = 0.0f;
    for (int d = 0; d < k; ++d) m = std::fabs(q[d]) > m ? std::fabs(q[d]) : m;
    if (!(m > 0.0f)) {
      std::fill_n(q8, k, std::int8_t{0});
      return 0.0f;
    }
    const float inv = 127.0f / m;
    for (int d = 0; d < k; ++d) {
      float r = std::nearbyint(q[d] * inv);
      r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
      q8[d] = static_cast<std::int8_t>(r);
    }
    return m / 127.0f;
  };
  std::uint64_t s = 99;
  auto next = [&s] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>(static_cast<std::int64_t>(s >> 33) % 2001 - 1000) / 997.0f;
  };
  for (int k : {64, 16, 37, 128, 3}) {
    for (int row = 0; row < 500; ++row) {
      std::vector<float> q(static_cast<std::size_t>(k));
      for (float& x : q) x = next();
      if (row % 5 == 1) {  // exact ties: max 127 -> q*inv lands on k + 0.5 for these
        q[0] = 127.0f;
        for (int d = 1; d < k; ++d) q[d] = std::floor(next() * 100.0f) + 0.5f;
      }
      if (row == 3) std::fill(q.begin(), q.end(), 0.0f);
      std::vector<std::int8_t> got(q.size()), want(q.size());
      const float gs = stream::quantise_row(q.data(), k, got.data());
      const float ws = reference(q.data(), k, want.data());
      ASSERT_EQ(gs, ws) << "k=" << k << " row " << row;
      ASSERT_EQ(got, want) << "k=" << k << " row " << row;
    }
  }
}

TEST(StreamSession, SplitsAtTheGap) {
  auto m = random_model(3, 10, 4);
  StreamConfig c = quiet_config();
  StreamEngine eng(c, m);
  Event v = ev("u0", "i1", EventType::kView, 1000);
  v.category = "shoes";
  v.price = 10;
  ASSERT_TRUE(eng.apply(v).accepted);
  ASSERT_TRUE(eng.apply(ev("u0", "i2", EventType::kClick, 1000 + 1799)).accepted);
  v.timestamp = 1000 + 1800;
  v.category = "boots";
  v.price = 30;
  ASSERT_TRUE(eng.apply(v).accepted);
  auto f = eng.features("u0");
  EXPECT_EQ(f.session_view_count, 2u);
  EXPECT_EQ(f.session_click_count, 1u);
  EXPECT_DOUBLE_EQ(f.session_ctr, 0.5);
  EXPECT_DOUBLE_EQ(f.avg_price_viewed, 20.0);
  EXPECT_EQ(f.top_category, "boots");  // tie 1:1 -> lexicographically smallest
  EXPECT_EQ(f.category_count, 2u);
  ASSERT_EQ(f.recent_clicked_items.size(), 1u);
  EXPECT_EQ(f.recent_clicked_items[0], "i2");
  // More than the gap after the latest event: a new session.
  Event s = ev("u0", "", EventType::kSearch, 1000 + 1800 + 1801);
  s.query = "running shoes";
  ASSERT_TRUE(eng.apply(s).accepted);
  f = eng.features("u0");
  EXPECT_EQ(f.session_view_count, 0u);
  EXPECT_EQ(f.session_click_count, 0u);
  EXPECT_EQ(f.session_search_count, 1u);
  EXPECT_DOUBLE_EQ(f.session_start, 1000 + 1800 + 1801);
  ASSERT_EQ(f.recent_queries.size(), 1u);
  EXPECT_EQ(f.recent_queries[0], "running shoes");
  EXPECT_TRUE(f.top_category.empty());
}

TEST(StreamSession, EmbeddingDecayMatchesHandComputation) {
  auto m = random_model(2, 5, 3);
  StreamConfig c = quiet_config();
  c.sgd.enabled = false;
  c.guard.enabled = false;
  StreamEngine eng(c, m);
  ASSERT_TRUE(eng.apply(ev("u0", "i1", EventType::kClick, 100)).accepted);
  ASSERT_TRUE(eng.apply(ev("u0", "i2", EventType::kView, 160)).accepted);
  ASSERT_TRUE(eng.apply(ev("u0", "i3", EventType::kClick, 130)).accepted);  // late: ranks by its own time
  const double t = 160;
  // Newest first by event time: i2 (view, rank 0), i3 (click, rank 1), i1 (click, rank 2).
  const double lam = c.session.lambda_session, dp = c.session.decay_position;
  const double w2 = 1.0 * std::exp(-lam * 0) * c.session.view_weight;
  const double w3 = dp * std::exp(-lam * (t - 130));
  const double w1 = dp * dp * std::exp(-lam * (t - 100));
  auto f = eng.features("u0");
  ASSERT_EQ(f.session_embedding.size(), 3u);
  for (int d = 0; d < 3; ++d) {
    const double want = (w2 * m->item_factors(2, d) + w3 * m->item_factors(3, d) + w1 * m->item_factors(1, d)) /
                        (w2 + w3 + w1);
    EXPECT_NEAR(f.session_embedding[d], want, 1e-6);
  }
  // Clicked items in event-time order.
  ASSERT_EQ(f.recent_clicked_items.size(), 2u);
  EXPECT_EQ(f.recent_clicked_items[0], "i1");
  EXPECT_EQ(f.recent_clicked_items[1], "i3");
  // No clicks/views: zeros.
  auto none = eng.features("nobody");
  for (float x : none.session_embedding) EXPECT_EQ(x, 0.0f);
}

TEST(StreamWindows, CountsExpire) {
  auto m = random_model(2, 5, 3);
  StreamConfig c = quiet_config();
  c.windows.seconds = {64.0, 6400.0};  // bucket widths 4 s and 400 s
  StreamEngine eng(c, m);
  ASSERT_TRUE(eng.apply(ev("u0", "i1", EventType::kView, 0)).accepted);
  ASSERT_TRUE(eng.apply(ev("u0", "i1", EventType::kView, 30)).accepted);
  auto f = eng.features("u0");
  ASSERT_EQ(f.window_counts.size(), 2u);
  EXPECT_EQ(f.window_counts[0], 2u);
  EXPECT_EQ(f.window_counts[1], 2u);
  // At t=100 the short window covers buckets [9*4, 100]: the events at 0 and 30 are out.
  ASSERT_TRUE(eng.apply(ev("u0", "i2", EventType::kView, 100)).accepted);
  f = eng.features("u0");
  EXPECT_EQ(f.window_counts[0], 1u);
  EXPECT_EQ(f.window_counts[1], 3u);
  // A late event inside the window counts; one older than the ring is dropped.
  ASSERT_TRUE(eng.apply(ev("u0", "i2", EventType::kView, 90)).accepted);
  ASSERT_TRUE(eng.apply(ev("u0", "i2", EventType::kView, 10)).accepted);
  f = eng.features("u0");
  EXPECT_EQ(f.window_counts[0], 2u);
  EXPECT_EQ(f.window_counts[1], 5u);
  // Far later: everything expired.
  ASSERT_TRUE(eng.apply(ev("u1", "i2", EventType::kView, 100000)).accepted);
  f = eng.features("u0");
  EXPECT_EQ(f.window_counts[0], 0u);
  EXPECT_EQ(f.window_counts[1], 0u);
}

TEST(StreamSgd, OneStepMatchesHandComputation) {
  auto m = random_model(2, 4, 3);
  StreamConfig c = quiet_config();
  c.guard.enabled = false;
  c.sgd.negatives = 0;
  c.sgd.gradient_clip = 1e6f;
  c.blend.beta = 0.0f;
  StreamEngine eng(c, m);
  const Eigen::Vector3d p = m->user_factors.row(0).transpose().cast<double>();
  const Eigen::Vector3d q = m->item_factors.row(1).transpose().cast<double>();
  const Eigen::Vector3d q2 = m->item_factors.row(2).transpose().cast<double>();
  ASSERT_TRUE(eng.apply(ev("u0", "i1", EventType::kClick, 50)).accepted);
  const double w = c.sgd.weights[EventType::kClick];
  const double err = 1.0 - p.dot(q);
  const Eigen::Vector3d gu = -w * err * q;  // d_u and e_i start at 0: no pull yet
  const Eigen::Vector3d gi = -w * err * p;
  const Eigen::Vector3d d = -c.sgd.user_learning_rate * gu;
  const Eigen::Vector3d qn = q - c.sgd.item_learning_rate * gi;
  EXPECT_NEAR(eng.score("u0", "i1", 50.0), (p + d).dot(qn), 1e-6);
  EXPECT_NEAR(eng.score("u0", "i2", 50.0), (p + d).dot(q2), 1e-6);
  // Blend: an hour later g = e^-1 scales only the delta.
  EXPECT_NEAR(eng.score("u0", "i2", 50.0 + 3600), (p + std::exp(-1.0) * d).dot(q2), 1e-6);
  EXPECT_EQ(eng.counters().sgd_updates, 1u);
}

TEST(StreamSgd, ClipsAndDecays) {
  auto m = random_model(2, 4, 3);
  StreamConfig c = quiet_config();
  c.guard.enabled = false;
  c.sgd.negatives = 0;
  c.sgd.gradient_clip = 0.01f;
  c.sgd.item_learning_rate = 0.0f;
  c.sgd.lr_decay = 0.5f;
  c.sgd.min_learning_rate = 0.02f;  // floor: factor 0.4 after two updates
  c.blend.beta = 0.0f;
  StreamEngine eng(c, m);
  const Eigen::Vector3d p = m->user_factors.row(0).transpose().cast<double>();
  const Eigen::Vector3d q = m->item_factors.row(1).transpose().cast<double>();
  Eigen::Vector3d d = Eigen::Vector3d::Zero();
  for (int j = 0; j < 4; ++j) {
    ASSERT_TRUE(eng.apply(ev("u0", "i1", EventType::kPurchase, 50 + j)).accepted);
    const double err = 1.0 - (p + d).dot(q);
    Eigen::Vector3d g = -8.0 * err * q + c.sgd.regularization * d;
    if (g.norm() > 0.01) g *= 0.01 / g.norm();
    const double lr = c.sgd.user_learning_rate * std::max(std::pow(0.5, j), 0.02 / 0.05);
    d -= lr * g;
  }
  EXPECT_NEAR(eng.score("u0", "i1", 53.0), (p + d).dot(q), 1e-5);
}

TEST(StreamFoldIn, MatchesDirectDenseSolve) {
  auto m = random_model(3, 12, 4);
  StreamConfig c = quiet_config();
  c.sgd.enabled = false;
  c.guard.enabled = false;
  c.blend.beta = 0.0f;
  StreamEngine eng(c, m);
  ASSERT_TRUE(eng.apply(ev("newbie", "i0", EventType::kClick, 10)).accepted);
  ASSERT_TRUE(eng.apply(ev("newbie", "i3", EventType::kView, 11)).accepted);
  ASSERT_TRUE(eng.apply(ev("newbie", "i0", EventType::kAddToCart, 12)).accepted);
  ASSERT_TRUE(eng.apply(ev("newbie", "i7", EventType::kPurchase, 13)).accepted);
  EXPECT_EQ(eng.counters().foldins, 4u);
  const Eigen::MatrixXd y = m->item_factors.cast<double>();
  Eigen::VectorXd conf = Eigen::VectorXd::Ones(12), pref = Eigen::VectorXd::Zero(12);
  const auto& w = c.sgd.weights;
  conf[0] += c.foldin.alpha * (w[EventType::kClick] + w[EventType::kAddToCart]);
  conf[3] += c.foldin.alpha * w[EventType::kView];
  conf[7] += c.foldin.alpha * w[EventType::kPurchase];
  pref[0] = pref[3] = pref[7] = 1.0;
  const Eigen::MatrixXd a = y.transpose() * conf.asDiagonal() * y +
                            c.foldin.regularization * Eigen::MatrixXd::Identity(4, 4);
  const Eigen::VectorXd x = a.fullPivLu().solve(y.transpose() * conf.asDiagonal() * pref);
  for (int i = 0; i < 12; ++i)  // g = 1 at the user's last event: the score is x·q_i
    EXPECT_NEAR(eng.score("newbie", "i" + std::to_string(i), 13.0), x.dot(y.row(i)), 1e-4) << i;
}

TEST(StreamNewItems, InitialisedFromUsersAndGatedByMinEvents) {
  auto m = random_model(4, 6, 3);
  StreamConfig c = quiet_config();
  c.guard.enabled = false;
  c.new_items.min_events = 2;
  StreamEngine eng(c, m);
  ASSERT_TRUE(eng.apply(ev("u0", "fresh", EventType::kClick, 10)).accepted);
  RecommendRequest r;
  r.user_id = "u1";
  r.k = 100;
  auto rec = eng.recommend(r);
  for (const auto& s : rec.items) EXPECT_NE(s.item_id, "fresh");
  ASSERT_TRUE(eng.apply(ev("u1", "fresh", EventType::kClick, 11)).accepted);
  rec = eng.recommend(r);
  EXPECT_TRUE(std::any_of(rec.items.begin(), rec.items.end(), [](const ScoredItem& s) { return s.item_id == "fresh"; }));
  EXPECT_TRUE(std::isfinite(eng.score("u2", "fresh")));
  EXPECT_NE(eng.score("u2", "fresh"), 0.0f);
}

TEST(StreamGuard, RollbackRestoresLearnedStateExactly) {
  auto m = random_model(5, 20, 4);
  StreamConfig c = quiet_config();
  c.guard.holdout_probability = 1.0;
  c.guard.holdout_size = 20;
  c.guard.cycle_events = 20;
  c.guard.tolerance = -1e9;  // every cycle is "worse": always roll back
  StreamEngine eng(c, m);
  auto events = mixed_stream(40, 5, 20, 3);
  for (auto& e : events) {  // keep to known users/items so every id exists before cycle 2
    e.user_id = "u" + e.user_id.substr(e.user_id.find_first_of("0123456789"));
    if (!e.item_id.empty()) e.item_id = "i" + e.item_id.substr(e.item_id.find_first_of("0123456789"));
    if (e.type == EventType::kSearch) e.type = EventType::kClick, e.item_id = "i1";
  }
  for (int j = 0; j < 20; ++j) ASSERT_TRUE(eng.apply(events[j]).accepted);  // all held out
  const std::string before = eng.learned_state_digest();
  for (int j = 20; j < 39; ++j) ASSERT_TRUE(eng.apply(events[j]).accepted);
  EXPECT_NE(eng.learned_state_digest(), before);  // per-event learning is immediate
  ASSERT_TRUE(eng.apply(events[39]).accepted);     // cycle end: rolled back
  EXPECT_EQ(eng.learned_state_digest(), before);
  EXPECT_EQ(eng.counters().guard_rollbacks, 2u);
  EXPECT_GT(eng.counters().sgd_updates, 0u);

  // Same stream, generous tolerance: accepted, state moved.
  c.guard.tolerance = 1e9;
  StreamEngine acc(c, m);
  for (int j = 0; j < 20; ++j) acc.apply(events[j]);
  const std::string before2 = acc.learned_state_digest();
  for (int j = 20; j < 40; ++j) acc.apply(events[j]);
  EXPECT_NE(acc.learned_state_digest(), before2);
  EXPECT_EQ(acc.counters().guard_accepts, 2u);
}

TEST(StreamState, DeterministicAndRestoresBitForBit) {
  auto m = random_model(30, 60, 8);
  StreamConfig c = quiet_config();
  c.guard.cycle_events = 97;
  c.guard.holdout_size = 50;
  c.guard.holdout_probability = 0.1;
  c.memory.max_users = 25;
  c.journal_capacity = 300;
  c.guard.replay_capacity = 200;
  const auto events = mixed_stream(1500, 30, 60, 11);
  StreamEngine a(c, m), b(c, m);
  for (const auto& e : events) a.apply(e);
  for (const auto& e : events) b.apply(e);
  EXPECT_EQ(a.state_digest(), b.state_digest());
  EXPECT_GT(a.counters().guard_accepts + a.counters().guard_rollbacks, 10u);
  EXPECT_GT(a.counters().foldins, 0u);
  EXPECT_GT(a.counters().evicted_users, 0u);

  for (std::size_t cut : {1u, 333u, 750u, 1499u}) expect_resume_matches(c, m, events, cut, a.state_digest());
}

// apply_batch is apply() in order under one lock: same results (rejections included), same
// counters, same state, whatever the batch sizes.
TEST(StreamState, ApplyBatchEqualsOneByOne) {
  auto m = random_model(30, 60, 8);
  StreamConfig c = quiet_config();
  c.guard.cycle_events = 97;
  c.guard.holdout_probability = 0.1;
  c.memory.max_users = 25;
  auto events = mixed_stream(1200, 30, 60, 5);
  for (std::size_t j = 3; j < events.size(); j += 101) events[j].timestamp = std::nan("");  // rejected
  StreamEngine one(c, m), batched(c, m);
  std::vector<ApplyResult> want;
  for (const auto& e : events) want.push_back(one.apply(e));
  std::vector<ApplyResult> got(events.size());
  std::vector<std::uint64_t> ns(events.size(), 0);
  std::size_t at = 0;
  for (std::size_t size : {1u, 7u, 128u, 2u, 300u}) {
    while (at < events.size()) {
      const std::size_t n = std::min(size, events.size() - at);
      batched.apply_batch(&events[at], n, &got[at], &ns[at]);
      at += n;
      if (size != 300u) break;  // each size once, the last one takes the rest
    }
  }
  ASSERT_EQ(at, events.size());
  std::size_t rejected = 0;
  for (std::size_t j = 0; j < events.size(); ++j) {
    ASSERT_EQ(got[j].accepted, want[j].accepted) << j;
    EXPECT_EQ(got[j].reason, want[j].reason) << j;
    EXPECT_FALSE(got[j].engine_error);
    rejected += !got[j].accepted;
  }
  EXPECT_GE(rejected, 11u);
  EXPECT_EQ(batched.state_digest(), one.state_digest());
  EXPECT_EQ(batched.counters().events, one.counters().events);
  EXPECT_EQ(batched.counters().rejected, one.counters().rejected);
}

// The popularity sampler is rebuilt a slice per event after each cycle's end: a checkpoint
// taken while a rebuild is half done must resume it to the same table at the same event.
TEST(StreamState, RestoresInTheMiddleOfASamplerRebuild) {
  auto m = random_model(20, 3000, 4);
  StreamConfig c = quiet_config();
  c.guard.cycle_events = 10;  // 3000 items: each rebuild takes several events
  c.guard.holdout_probability = 0.1;
  const auto events = mixed_stream(80, 20, 3000, 5);
  StreamEngine a(c, m);
  for (const auto& e : events) a.apply(e);
  for (std::size_t cut : {11u, 12u, 13u, 22u, 47u}) {
    StreamEngine first(c, m);
    for (std::size_t j = 0; j < cut; ++j) first.apply(events[j]);
    std::stringstream ckpt;
    first.save(ckpt);
    StreamEngine resumed(c, m);
    resumed.restore(ckpt);
    EXPECT_EQ(resumed.state_digest(), first.state_digest()) << cut;
    for (std::size_t j = cut; j < events.size(); ++j) resumed.apply(events[j]);
    EXPECT_EQ(resumed.state_digest(), a.state_digest()) << "cut at " << cut;
  }
}

TEST(StreamState, RestoreRefusesForeignOrBrokenBytes) {
  auto m = random_model(5, 10, 4);
  StreamConfig c = quiet_config();
  StreamEngine a(c, m);
  for (const auto& e : mixed_stream(100, 5, 10, 5)) a.apply(e);
  std::stringstream ckpt;
  a.save(ckpt);
  const std::string bytes = ckpt.str();
  const std::string digest = a.state_digest();

  auto other = random_model(5, 10, 4, 99);  // same shape, other factors
  StreamEngine b(c, other);
  std::stringstream in1(bytes);
  EXPECT_THROW(b.restore(in1), IntegrityError);
  std::stringstream in2(bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(a.restore(in2), IntegrityError);
  EXPECT_EQ(a.state_digest(), digest);  // a failed restore leaves the state as it was
  std::string bad = bytes;
  bad[0] ^= 1;
  std::stringstream in3(bad);
  EXPECT_THROW(a.restore(in3), IntegrityError);
}

TEST(StreamMemory, EvictsLeastRecentlyActiveBeyondTheCap) {
  auto m = random_model(5, 10, 4);
  StreamConfig c = quiet_config();
  c.memory.max_users = 16;
  StreamEngine eng(c, m);
  for (int u = 0; u < 200; ++u) {
    ASSERT_TRUE(eng.apply(ev("user" + std::to_string(u), "i1", EventType::kView, 1000.0 + u)).accepted);
    ASSERT_LE(eng.tracked_users(), 16u);
  }
  EXPECT_GE(eng.counters().evicted_users, 184u);
  EXPECT_EQ(eng.features("user199").session_view_count, 1u);  // the most recent survive
  EXPECT_EQ(eng.features("user0").session_view_count, 0u);    // the oldest are gone
}

// 10M distinct users must not mean 10M ids held: ids of users no longer tracked (and not in
// the holdout or the running cycle) are forgotten, records renumbered, and the result is
// still deterministic and checkpoint-exact across the compactions.
TEST(StreamMemory, ForgetsIdsOfUntrackedUsers) {
  auto m = random_model(30, 60, 8);
  StreamConfig c = quiet_config();
  c.memory.max_users = 20;
  c.guard.holdout_size = 20;
  c.guard.holdout_probability = 0.1;
  c.guard.cycle_events = 50;
  c.journal_capacity = 2000;
  c.guard.replay_capacity = 500;
  const std::size_t budget = 2 * (20 + 20 + 50) + 1024;
  const auto events = mixed_stream(9000, 6000, 60, 21);  // ~5000 distinct users, 30 in the model
  StreamEngine a(c, m);
  std::size_t most = 0;
  for (const auto& e : events) {
    ASSERT_TRUE(a.apply(e).accepted);
    most = std::max(most, a.user_ids_held());
  }
  EXPECT_LE(most, budget + 1);
  EXPECT_LE(a.tracked_users(), 20u);
  EXPECT_GT(a.counters().new_users, budget);  // more distinct ids went through than are held

  // The last event's user is tracked and known; a forgotten stream-born user is unknown
  // again (popularity), a forgotten nightly user still gets its nightly ranking.
  const SessionFeatures f = a.features(events.back().user_id);
  EXPECT_GT(f.last_event_time, 0.0);
  RecommendRequest req;
  req.user_id = "u3";
  req.k = 5;
  EXPECT_EQ(a.recommend(req).items.size(), 5u);

  StreamEngine b(c, m);
  for (const auto& e : events) b.apply(e);
  EXPECT_EQ(a.state_digest(), b.state_digest());
  for (std::size_t cut : {700u, 4321u, 8999u}) {
    StreamEngine first(c, m);
    for (std::size_t j = 0; j < cut; ++j) first.apply(events[j]);
    std::stringstream ckpt;
    first.save(ckpt);
    StreamEngine resumed(c, m);
    resumed.restore(ckpt);
    EXPECT_EQ(resumed.user_ids_held(), first.user_ids_held());
    for (std::size_t j = cut; j < events.size(); ++j) resumed.apply(events[j]);
    EXPECT_EQ(resumed.state_digest(), a.state_digest()) << "cut at " << cut;
  }
}

TEST(StreamSafety, BadInputsAndOverflowNeverReachAFactor) {
  auto m = random_model(3, 6, 4);
  m->item_factors.row(2).setConstant(1e30f);  // finite, but any update through it overflows
  StreamConfig c = quiet_config();
  c.guard.enabled = false;
  StreamEngine eng(c, m);
  const std::string d0 = eng.learned_state_digest();
  Event e = ev("u0", "i1", EventType::kClick, NAN);
  EXPECT_FALSE(eng.apply(e).accepted);
  e = ev("u0", "i1", EventType::kRating, 10);
  e.rating = INFINITY;
  EXPECT_FALSE(eng.apply(e).accepted);
  e = ev("u0", "i1", EventType::kView, 10);
  e.price = INFINITY;
  EXPECT_FALSE(eng.apply(e).accepted);
  EXPECT_FALSE(eng.apply(ev("", "i1", EventType::kView, 10)).accepted);
  EXPECT_FALSE(eng.apply(ev("u0", "", EventType::kClick, 10)).accepted);
  EXPECT_EQ(eng.counters().rejected, 5u);
  EXPECT_EQ(eng.counters().events, 0u);
  EXPECT_EQ(eng.learned_state_digest(), d0);  // rejected events change nothing but the counter
  EXPECT_EQ(eng.tracked_users(), 0u);
  ASSERT_TRUE(eng.apply(ev("u0", "i2", EventType::kClick, 20)).accepted);
  ASSERT_TRUE(eng.apply(ev("newu", "i2", EventType::kClick, 21)).accepted);
  EXPECT_GT(eng.counters().non_finite_skipped, 0u);
  for (const char* u : {"u0", "u1", "newu"})
    for (int i = 0; i < 6; ++i) {
      if (i == 2) continue;
      EXPECT_TRUE(std::isfinite(eng.score(u, "i" + std::to_string(i)))) << u << " i" << i;
    }
  auto f = eng.features("u0");
  for (float x : f.session_embedding) EXPECT_TRUE(std::isfinite(x));
}

TEST(StreamRecommend, ExcludesPurchasedCartAndPageItems) {
  auto m = random_model(3, 30, 4);
  StreamConfig c = quiet_config();
  StreamEngine eng(c, m);
  ASSERT_TRUE(eng.apply(ev("u0", "i5", EventType::kPurchase, 10)).accepted);
  RecommendRequest r;
  r.user_id = "u0";
  r.k = 1000;
  r.page_type = "product";
  r.page_item_id = "i7";
  r.cart_items = {"i9", "i11"};
  auto rec = eng.recommend(r);
  EXPECT_TRUE(rec.known_user);
  EXPECT_EQ(rec.items.size(), 26u);
  for (const auto& s : rec.items)
    for (const char* bad : {"i5", "i7", "i9", "i11"}) EXPECT_NE(s.item_id, bad);
  for (std::size_t j = 1; j < rec.items.size(); ++j) EXPECT_GE(rec.items[j - 1].score, rec.items[j].score);
  // Unknown users get popularity: the only item with events comes first.
  r.user_id = "stranger";
  r.page_item_id.clear();
  r.cart_items.clear();
  r.k = 3;
  rec = eng.recommend(r);
  EXPECT_FALSE(rec.known_user);
  ASSERT_EQ(rec.items.size(), 3u);
  EXPECT_EQ(rec.items[0].item_id, "i5");
}

// The product story: a winter-boots user clicks and searches running shoes; the top 10 turns
// to running shoes at once and returns to the nightly ranking after an idle hour and more.
TEST(StreamStory, RunningShoes) {
  const int k = 8, per = 20;
  auto m = std::make_shared<FactorModel>();
  m->item_factors = FactorMatrix::Zero(3 * per, k);
  std::uint64_t s = 5;
  auto noise = [&s] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return 0.1f * (static_cast<float>((s >> 40) & 0xFFFF) / 65536.0f - 0.5f);
  };
  const char* names[3] = {"boots", "running", "kitchen"};
  for (int g = 0; g < 3; ++g)
    for (int j = 0; j < per; ++j) {
      m->item_ids.intern(std::string(names[g]) + std::to_string(j));
      for (int d = 0; d < k; ++d) m->item_factors(g * per + j, d) = (d == g ? 1.0f : 0.0f) + noise();
    }
  m->user_factors = FactorMatrix::Zero(1, k);
  m->user_factors(0, 0) = 0.7f;  // winter boots, last week
  m->user_factors(0, 2) = 0.2f;
  m->user_ids.intern("alice");
  m->user_bias = Eigen::VectorXf::Zero(1);
  m->item_bias = Eigen::VectorXf::Zero(3 * per);
  StreamConfig c = quiet_config();
  StreamEngine eng(c, m);

  RecommendRequest r;
  r.user_id = "alice";
  auto count_prefix = [](const Recommendation& rec, const std::string& p) {
    return std::count_if(rec.items.begin(), rec.items.end(),
                         [&p](const ScoredItem& x) { return x.item_id.rfind(p, 0) == 0; });
  };
  r.time = 1000.0;
  const auto nightly = eng.recommend(r);
  EXPECT_EQ(count_prefix(nightly, "boots"), 10);

  const double t0 = 10000;
  Event q = ev("alice", "", EventType::kSearch, t0);
  q.query = "running shoes";
  ASSERT_TRUE(eng.apply(q).accepted);
  ASSERT_TRUE(eng.apply(ev("alice", "running3", EventType::kClick, t0 + 5)).accepted);
  ASSERT_TRUE(eng.apply(ev("alice", "running7", EventType::kClick, t0 + 15)).accepted);
  ASSERT_TRUE(eng.apply(ev("alice", "running7", EventType::kAddToCart, t0 + 30)).accepted);
  r.time.reset();  // the watermark
  auto now = eng.recommend(r);
  EXPECT_GE(count_prefix(now, "running"), 8) << "fresh intent should dominate";
  EXPECT_NEAR(now.blend_weight, 1.0, 1e-9);

  r.time = t0 + 30 + 2 * 3600.0;  // two idle hours later
  auto later = eng.recommend(r);
  int overlap = 0;
  for (const auto& a : later.items)
    for (const auto& b : nightly.items) overlap += a.item_id == b.item_id;
  EXPECT_GE(overlap, 8) << "an idle user slides back to the nightly ranking";
  EXPECT_LT(later.blend_weight, 0.2);
}

TEST(StreamSwap, RebuildsOnTheNextBaseline) {
  auto m = random_model(10, 20, 4);
  StreamConfig c = quiet_config();
  StreamEngine eng(c, m);
  const auto events = mixed_stream(300, 10, 20, 21);
  for (const auto& e : events) eng.apply(e);
  auto next = random_model(12, 22, 4, 8);
  next->item_ids = IdMap();
  for (int i = 0; i < 21; ++i) next->item_ids.intern("i" + std::to_string(i));
  next->item_ids.intern("new_i3");  // a stream-born item is in the nightly model now
  next->data_cutoff = events[150].timestamp;
  eng.swap_baseline(next);
  EXPECT_EQ(eng.baseline().get(), next.get());
  for (const char* item : {"i0", "i20", "new_i3"}) EXPECT_TRUE(std::isfinite(eng.score("u1", item)));
  RecommendRequest r;
  r.user_id = "u3";
  EXPECT_EQ(eng.recommend(r).items.size(), 10u);
  // Sessions carried over.
  EXPECT_GT(eng.features(events.back().user_id).session_view_count + eng.features(events.back().user_id).session_click_count +
                eng.features(events.back().user_id).session_search_count + eng.features(events.back().user_id).session_purchase_count +
                eng.features(events.back().user_id).session_cart_count,
            0u);
  for (int j = 0; j < 50; ++j) ASSERT_TRUE(eng.apply(events[j]).accepted);
}

// The int8 first pass plus exact rescoring must give exactly the brute-force top-k of score().
TEST(StreamRecommend, QuantisedPassIsExactAgainstBruteForce) {
  auto m = random_model(40, 3000, 24, 13);
  StreamConfig c = quiet_config();
  StreamEngine eng(c, m);
  for (const auto& e : mixed_stream(600, 40, 3000, 17)) eng.apply(e);
  for (const char* user : {"u3", "u17", "new_u5", "stranger"}) {
    RecommendRequest r;
    r.user_id = user;
    r.k = 25;
    const auto rec = eng.recommend(r);
    std::vector<std::pair<float, std::string>> all;
    for (int i = 0; i < 3000; ++i) {
      const std::string id = "i" + std::to_string(i);
      all.emplace_back(eng.score(user, id), id);
    }
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    ASSERT_EQ(rec.items.size(), 25u) << user;
    for (std::size_t j = 0; j < rec.items.size(); ++j) {
      // Purchased and stream-born items are excluded by recommend; compare scores in order.
      EXPECT_GE(rec.items[j].score, all[std::min<std::size_t>(j + 40, all.size() - 1)].first);
      EXPECT_FLOAT_EQ(rec.items[j].score, eng.score(user, rec.items[j].item_id)) << user << " " << j;
    }
    // Whatever recommend left out scores no higher than its last item (unless excluded).
    for (const auto& entry : all) {
      const float s = entry.first;
      const std::string& id = entry.second;
      if (s <= rec.items.back().score) break;
      const bool in = std::any_of(rec.items.begin(), rec.items.end(), [&](const ScoredItem& x) { return x.item_id == id; });
      EXPECT_TRUE(in) << user << ": " << id << " (" << s << ") beats the last recommended but is missing";
    }
  }
}

TEST(StreamRecommend, ContextScalesDefaultToNoEffect) {
  auto m = random_model(5, 50, 8);
  StreamConfig c = quiet_config();
  StreamEngine plain(c, m);
  c.context.mobile.beta = 0.0f;  // mobile: no session term
  StreamEngine ctx(c, m);
  c.blend.beta = 0.0f;
  StreamEngine nobeta(c, m);
  for (auto* e : {&plain, &ctx, &nobeta}) {
    e->apply(ev("u1", "i3", EventType::kClick, 100));
    e->apply(ev("u1", "i4", EventType::kClick, 110));
  }
  RecommendRequest r;
  r.user_id = "u1";
  r.k = 50;
  r.device = "desktop";
  const auto a = plain.recommend(r), b = ctx.recommend(r);
  ASSERT_EQ(a.items.size(), b.items.size());
  for (std::size_t j = 0; j < a.items.size(); ++j) EXPECT_EQ(a.items[j].score, b.items[j].score);
  r.device = "mobile";
  const auto mob = ctx.recommend(r), nb = nobeta.recommend(r);
  ASSERT_EQ(mob.items.size(), nb.items.size());
  for (std::size_t j = 0; j < mob.items.size(); ++j) EXPECT_EQ(mob.items[j].score, nb.items[j].score);
}

// ---- Bandit exploration inside the engine (issue 8).

Event impression(const std::string& user, std::vector<std::string> items, double t) {
  Event e;
  e.user_id = user;
  e.type = EventType::kImpression;
  e.timestamp = t;
  e.items = std::move(items);
  e.request_id = "r" + std::to_string(static_cast<long long>(t));
  return e;
}

StreamConfig explore_config(int slots) {
  StreamConfig c = quiet_config();
  c.explore.slots = slots;
  c.explore.reward_window_seconds = 100.0;
  c.new_items.min_events = 1;
  return c;
}

// mixed_stream with an impression before every third event, shown to that event's user a
// second earlier and listing its item among others (so some impressions get their reward).
std::vector<Event> stream_with_impressions(int n, int n_users, int n_items, std::uint32_t seed) {
  std::vector<Event> out;
  const auto base = mixed_stream(n, n_users, n_items, seed);
  for (std::size_t j = 0; j < base.size(); ++j) {
    const Event& e = base[j];
    if (j % 3 == 0) {
      std::vector<std::string> shown{"i" + std::to_string(j % n_items), "i" + std::to_string((j * 7 + 3) % n_items)};
      if (!e.item_id.empty()) shown.insert(shown.begin() + static_cast<long>(j % 2), e.item_id);
      out.push_back(impression(e.user_id, shown, e.timestamp - 1.0));
    }
    out.push_back(e);
  }
  return out;
}

TEST(StreamExplore, ImpressionThenClickWithinTheWindowIsAReward) {
  auto m = random_model(3, 10, 4);
  StreamEngine eng(explore_config(2), m);
  ASSERT_TRUE(eng.apply(impression("u0", {"i1", "i2", "i3"}, 1000)).accepted);
  EXPECT_EQ(eng.counters().impressions, 1u);
  ASSERT_TRUE(eng.apply(ev("u0", "i2", EventType::kClick, 1050)).accepted);
  EXPECT_EQ(eng.counters().impression_rewards, 1u);
  EXPECT_EQ(eng.counters().weak_negatives, 0u);
  // Another user's click, and a second click of the same pair, are no further rewards.
  ASSERT_TRUE(eng.apply(ev("u1", "i1", EventType::kClick, 1060)).accepted);
  ASSERT_TRUE(eng.apply(ev("u0", "i2", EventType::kClick, 1070)).accepted);
  EXPECT_EQ(eng.counters().impression_rewards, 1u);
  // Past the window: the click on i3 comes too late; i1 and i3 close as weak negatives.
  ASSERT_TRUE(eng.apply(ev("u0", "i3", EventType::kClick, 1101)).accepted);
  EXPECT_EQ(eng.counters().impression_rewards, 1u);
  EXPECT_EQ(eng.counters().weak_negatives, 2u);
  // An impression without items is a bad event: counted as rejected, nothing else changes.
  const std::string before = eng.learned_state_digest();
  const double wm = eng.watermark();
  EXPECT_FALSE(eng.apply(impression("u0", {}, 1200)).accepted);
  EXPECT_FALSE(eng.apply(impression("u0", {"i1", ""}, 1200)).accepted);
  EXPECT_EQ(eng.learned_state_digest(), before);
  EXPECT_EQ(eng.watermark(), wm);
  EXPECT_EQ(eng.counters().impressions, 1u);
  EXPECT_EQ(eng.counters().rejected, 2u);
}

TEST(StreamExplore, ExpiredImpressionsTrainWeakNegatives) {
  auto m = random_model(3, 10, 4);
  StreamConfig on = explore_config(2);
  on.explore.impression_weight = 0.5f;
  on.sgd.regularization = 0.0f;  // the step is then the weak label's alone
  on.blend.beta = 0.0f;          // score = b_i + (p_u + d_u) . q_i at the user's last event
  StreamConfig off = on;
  off.explore.impression_weight = 0.0f;
  StreamEngine a(on, m), b(off, m);
  for (StreamEngine* e : {&a, &b}) {
    ASSERT_TRUE(e->apply(ev("u0", "i5", EventType::kView, 990)).accepted);
    ASSERT_TRUE(e->apply(impression("u0", {"i1"}, 1000)).accepted);
    ASSERT_TRUE(e->apply(ev("u0", "i5", EventType::kView, 1200)).accepted);  // closes the window
  }
  EXPECT_EQ(a.counters().weak_negatives, 1u);
  EXPECT_EQ(b.counters().weak_negatives, 1u);
  // One extra squared-loss step in `a`, none in `b`.
  EXPECT_EQ(a.counters().sgd_updates, b.counters().sgd_updates + 1);
  EXPECT_NE(a.learned_state_digest(), b.learned_state_digest());
  // The step moved the pair's prediction toward the weak label 0, and only a little.
  const float sa = a.score("u0", "i1"), sb = b.score("u0", "i1");
  ASSERT_NE(sb, 0.0f);
  EXPECT_LT(std::fabs(sa), std::fabs(sb));
  EXPECT_GT(sa * sb, 0.0f);
  EXPECT_TRUE(std::isfinite(sa));
}

TEST(StreamExplore, OnlyThompsonKeepsPosteriorsTheImpressionLoopRunsForEveryPolicy) {
  auto m = random_model(20, 40, 6);
  const auto events = stream_with_impressions(900, 20, 40, 5);
  StreamConfig thompson = explore_config(2), greedy = explore_config(2), epsilon = explore_config(2);
  thompson.explore.policy = stream::ExplorePolicy::kThompson;
  greedy.explore.policy = stream::ExplorePolicy::kGreedy;
  epsilon.explore.policy = stream::ExplorePolicy::kEpsilon;
  StreamEngine t(thompson, m), g(greedy, m), e(epsilon, m);
  for (const auto& ev : events)
    for (StreamEngine* x : {&t, &g, &e}) x->apply(ev);
  EXPECT_GT(t.counters().explored_users, 0u);
  EXPECT_GT(t.counters().impression_rewards, 0u);
  for (StreamEngine* x : {&g, &e}) {
    EXPECT_EQ(x->counters().explored_users, 0u);  // nothing reads a posterior under these policies
    // Rewards and weak negatives (the impression loop) are the same for every policy.
    EXPECT_EQ(x->counters().impression_rewards, t.counters().impression_rewards);
    EXPECT_EQ(x->counters().weak_negatives, t.counters().weak_negatives);
    EXPECT_EQ(x->learned_state_digest(), t.learned_state_digest());
  }
}

TEST(StreamExplore, SlotsZeroLeavesStateAndRankingUnchanged) {
  auto m = random_model(20, 40, 6);
  StreamConfig plain = quiet_config();
  StreamConfig tuned = quiet_config();  // exploration knobs moved, slots still 0: all off
  tuned.explore.policy = stream::ExplorePolicy::kEpsilon;
  tuned.explore.impression_weight = 0.7f;
  tuned.explore.reward_window_seconds = 5.0;
  const auto with_imp = stream_with_impressions(600, 20, 40, 3);
  const auto without = mixed_stream(600, 20, 40, 3);
  StreamEngine a(plain, m), b(tuned, m), c(tuned, m);
  for (const auto& e : with_imp) ASSERT_TRUE(a.apply(e).accepted || e.type != EventType::kImpression);
  for (const auto& e : with_imp) b.apply(e);
  for (const auto& e : without) c.apply(e);
  EXPECT_EQ(a.state_digest(), b.state_digest());
  // Impressions are counted and move the watermark, nothing else.
  EXPECT_EQ(a.learned_state_digest(), c.learned_state_digest());
  EXPECT_EQ(b.counters().impressions, 0u);
  EXPECT_EQ(b.counters().events, c.counters().events + 200);
  for (int u = 0; u < 20; ++u) {
    RecommendRequest r;
    r.user_id = "u" + std::to_string(u);
    r.time = c.watermark();
    const auto x = b.recommend(r), y = c.recommend(r);
    ASSERT_EQ(x.items.size(), y.items.size());
    for (std::size_t j = 0; j < x.items.size(); ++j) {
      EXPECT_EQ(x.items[j].item_id, y.items[j].item_id);
      EXPECT_EQ(x.items[j].score, y.items[j].score);
    }
  }
}

TEST(StreamExplore, AtMostSlotsExploredAndNeverExcludedItems) {
  auto m = random_model(20, 40, 6);
  StreamConfig greedy_cfg = explore_config(0), explore_cfg = explore_config(2);
  explore_cfg.explore.impression_weight = 0.0f;  // same learned state as the greedy engine
  explore_cfg.explore.item_sigma = 2.0;          // wide: exploration certainly fires
  const auto events = stream_with_impressions(900, 20, 40, 9);
  StreamEngine greedy(greedy_cfg, m), eng(explore_cfg, m);
  for (const auto& e : events) {
    greedy.apply(e);
    eng.apply(e);
  }
  ASSERT_EQ(greedy.learned_state_digest(), eng.learned_state_digest());
  std::map<std::string, std::set<std::string>> bought;
  for (const auto& e : events)
    if (e.type == EventType::kPurchase) bought[e.user_id].insert(e.item_id);
  std::size_t explored_total = 0;
  for (int u = 0; u < 25; ++u) {
    RecommendRequest r;
    r.user_id = (u < 20 ? "u" : "new_u") + std::to_string(u % 20);
    r.k = 8;
    r.cart_items = {"i" + std::to_string(u), "new_i" + std::to_string(u % 7)};
    r.page_item_id = "i" + std::to_string(u + 1);
    const auto g = greedy.recommend(r);
    const auto x = eng.recommend(r);
    ASSERT_EQ(x.items.size(), g.items.size());
    std::set<std::string> greedy_ids, seen;
    for (const auto& s : g.items) greedy_ids.insert(s.item_id);
    std::size_t explored = 0;
    for (const auto& s : x.items) {
      EXPECT_TRUE(seen.insert(s.item_id).second) << "duplicate " << s.item_id;
      explored += greedy_ids.count(s.item_id) == 0;
      for (const auto& c : r.cart_items) EXPECT_NE(s.item_id, c);
      EXPECT_NE(s.item_id, r.page_item_id);
      EXPECT_EQ(bought[r.user_id].count(s.item_id), 0u) << r.user_id << " bought " << s.item_id;
      EXPECT_TRUE(std::isfinite(s.score));
    }
    EXPECT_LE(explored, 2u) << r.user_id;
    explored_total += explored;
    // Deterministic: the same request at the same watermark gives the same answer.
    const auto again = eng.recommend(r);
    ASSERT_EQ(again.items.size(), x.items.size());
    for (std::size_t j = 0; j < x.items.size(); ++j) EXPECT_EQ(again.items[j].item_id, x.items[j].item_id);
  }
  EXPECT_GT(explored_total, 0u);
}

TEST(StreamExplore, SaveRestoreMidStreamMatchesAnUninterruptedRun) {
  auto m = random_model(20, 40, 6);
  StreamConfig c = explore_config(2);
  c.guard.cycle_events = 53;
  c.guard.holdout_probability = 0.1;
  c.explore.max_pending_impressions = 40;
  const auto events = stream_with_impressions(900, 20, 40, 21);
  StreamEngine a(c, m);
  for (const auto& e : events) a.apply(e);
  EXPECT_GT(a.counters().impression_rewards, 0u);
  EXPECT_GT(a.counters().weak_negatives, 0u);
  EXPECT_GT(a.counters().explored_users, 0u);
  RecommendRequest r;
  r.user_id = "u3";
  const auto want = a.recommend(r);
  for (std::size_t cut : {1u, 400u, 877u}) {
    StreamEngine first(c, m);
    for (std::size_t j = 0; j < cut; ++j) first.apply(events[j]);
    std::stringstream ckpt;
    first.save(ckpt);
    StreamEngine resumed(c, m);
    resumed.restore(ckpt);
    EXPECT_EQ(resumed.state_digest(), first.state_digest()) << cut;
    for (std::size_t j = cut; j < events.size(); ++j) resumed.apply(events[j]);
    EXPECT_EQ(resumed.state_digest(), a.state_digest()) << "cut at " << cut;
    const auto got = resumed.recommend(r);
    ASSERT_EQ(got.items.size(), want.items.size());
    for (std::size_t j = 0; j < got.items.size(); ++j) EXPECT_EQ(got.items[j].item_id, want.items[j].item_id);
  }
  // The explorer's state is part of the digest.
  StreamConfig other = c;
  other.explore.reward_window_seconds = 50.0;
  StreamEngine d(other, m);
  for (const auto& e : events) d.apply(e);
  EXPECT_EQ(d.learned_state_digest() == a.learned_state_digest() && d.state_digest() == a.state_digest(), false);

  std::stringstream ckpt;
  a.save(ckpt);
  const std::string bytes = ckpt.str();
  // Exploration state is never dropped silently: an engine with exploration off refuses it.
  StreamEngine off(quiet_config(), m);
  std::stringstream in1(bytes);
  EXPECT_THROW(off.restore(in1), IntegrityError);
  // A version-2 checkpoint (before the explorer) is refused cleanly, the state kept.
  std::string v2 = bytes;
  const std::size_t version_at = 8 + std::string("freshrec-stream-state").size();
  ASSERT_EQ(static_cast<unsigned char>(v2[version_at]), 3u);
  v2[version_at] = 2;
  const std::string digest = a.state_digest();
  std::stringstream in2(v2);
  try {
    a.restore(in2);
    ADD_FAILURE() << "a version-2 checkpoint was accepted";
  } catch (const IntegrityError& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported version 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(a.state_digest(), digest);
}

// ---- Edge cases found by the streaming-core audit (sizes 0/1, extreme times, swaps, restores).

// A baseline row that is finite but large (|q| > ~1.8e19: its float norm overflows) is a state
// the engine accepts and runs on; its checkpoint must restore like any other.
TEST(StreamAudit, CheckpointOfABaselineWithAHugeFiniteRowRestores) {
  auto m = random_model(5, 10, 4);
  m->item_factors.row(2).setConstant(1e30f);
  StreamConfig c = quiet_config();
  c.guard.cycle_events = 40;
  const auto events = mixed_stream(200, 5, 10, 3);
  StreamEngine a(c, m);
  for (const auto& e : events) a.apply(e);
  expect_resume_matches(c, m, events, 100, a.state_digest());
}

// A hot swap in the middle of a guard cycle restarts the cycle; the events the old cycle had
// trained must not make the next checkpoint unrestorable (nor grow without bound).
TEST(StreamAudit, CheckpointAfterAMidCycleSwapRestores) {
  auto m = random_model(10, 20, 4);
  StreamConfig c = quiet_config();
  c.guard.cycle_events = 50;
  c.guard.holdout_probability = 0.0;  // every trainable event is trained (joins the cycle)
  auto events = mixed_stream(300, 10, 20, 21);
  for (auto& e : events)
    if (e.type == EventType::kSearch || e.item_id.empty()) e.type = EventType::kClick, e.item_id = "i1";
  auto next = random_model(10, 20, 4, 8);
  next->data_cutoff = events[30].timestamp;
  auto run = [&](StreamEngine& eng, std::size_t from, std::size_t to) {
    for (std::size_t j = from; j < to; ++j) {
      if (j == 30) eng.swap_baseline(next);
      ASSERT_TRUE(eng.apply(events[j]).accepted);
    }
  };
  StreamEngine a(c, m);
  run(a, 0, events.size());
  for (std::size_t cut : {60u, 79u, 130u})  // 30 + 49: one event before the restarted cycle ends
    expect_resume_matches(c, m, next, events, cut, a.state_digest(), run);
}

// score()/recommend() take any double as the request time (in-process callers): with the
// trending term on, the window lookup must not overflow its int64 bucket index.
TEST(StreamAudit, TrendingTermAtExtremeRequestTimes) {
  auto m = random_model(5, 30, 4);
  StreamConfig c = quiet_config();
  c.blend.trending_weight = 0.5f;
  StreamEngine eng(c, m);
  for (const auto& e : mixed_stream(100, 5, 30, 7)) eng.apply(e);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (double t : {1e300, -1e300, 1e30, -1e19, std::nan(""), kInf, -kInf}) {
    RecommendRequest r;
    r.user_id = "u1";
    r.time = t;
    const auto rec = eng.recommend(r);
    EXPECT_EQ(rec.items.size(), 10u) << t;
    (void)eng.score("u1", "i3", t);
  }
}

// Window lengths are validated as finite and > 0; one so short that an event time's bucket
// index leaves int64 must be refused up front, not overflow on the first event.
TEST(StreamAudit, WindowTooShortForItsBucketIndexIsRefused) {
  auto m = random_model(2, 5, 3);
  StreamConfig c = quiet_config();
  c.windows.seconds = {1e-9};
  EXPECT_THROW(StreamEngine(c, m), InputError);
}

// k beyond the catalogue (an in-process caller; HTTP caps it) returns what k = catalogue size
// returns, and neither allocates for k nor overflows k + pool in the explorer.
TEST(StreamAudit, HugeKReturnsTheWholeCatalogue) {
  auto m = random_model(5, 30, 4);
  for (int slots : {0, 2}) {
    StreamConfig c = slots ? explore_config(slots) : quiet_config();
    StreamEngine eng(c, m);
    for (const auto& e : stream_with_impressions(100, 5, 30, 7)) eng.apply(e);
    RecommendRequest r;
    r.user_id = "u1";
    r.k = std::numeric_limits<int>::max();
    const auto rec = eng.recommend(r);
    EXPECT_GE(rec.items.size(), 20u) << slots;
    std::set<std::string> ids;
    for (const auto& x : rec.items) EXPECT_TRUE(ids.insert(x.item_id).second) << "duplicate " << x.item_id;
    r.k = 1000;  // the whole catalogue (30 nightly items + the stream's): the same answer
    const auto all = eng.recommend(r);
    ASSERT_EQ(all.items.size(), rec.items.size()) << slots;
    for (std::size_t j = 0; j < all.items.size(); ++j) EXPECT_EQ(all.items[j].item_id, rec.items[j].item_id) << slots;
  }
}

// Degenerate shapes run the whole path (SGD with negatives, fold-in, guard, exploration,
// recommend, checkpoint round trip, swap) without touching memory they do not own:
// k = 1 and 17, one item (every negative is the positive), no items or users at all.
TEST(StreamAudit, DegenerateShapesRunEndToEnd) {
  struct Shape { int users, items, k; };
  for (const Shape s :
       {Shape{5, 1, 4}, Shape{5, 20, 1}, Shape{5, 20, 17}, Shape{0, 0, 4}, Shape{0, 3, 2}, Shape{4, 0, 3}}) {
    SCOPED_TRACE("users " + std::to_string(s.users) + " items " + std::to_string(s.items) + " k " +
                 std::to_string(s.k));
    auto m = random_model(s.users, s.items, s.k);
    StreamConfig c = explore_config(2);
    c.guard.cycle_events = 23;
    c.guard.holdout_probability = 0.2;
    c.memory.max_users = 4;
    const auto events = stream_with_impressions(400, std::max(s.users, 3), std::max(s.items, 3), 5);
    StreamEngine a(c, m);
    for (const auto& e : events) a.apply(e);
    expect_resume_matches(c, m, events, 250, a.state_digest());
    for (const char* u : {"u0", "new_u1", "nobody"}) {
      RecommendRequest r;
      r.user_id = u;
      for (const auto& x : a.recommend(r).items) EXPECT_TRUE(std::isfinite(x.score)) << u;
      for (float x : a.features(u).session_embedding) EXPECT_TRUE(std::isfinite(x));
    }
    // Swap to another k with fewer items, then go on.
    auto next = random_model(3, std::max(s.items - 1, 0), s.k + 3, 9);
    next->data_cutoff = events[200].timestamp;
    a.swap_baseline(next);
    for (std::size_t j = 0; j < 100; ++j) a.apply(events[j]);
    RecommendRequest r;
    r.user_id = "u0";
    for (const auto& x : a.recommend(r).items) EXPECT_TRUE(std::isfinite(x.score));
    std::stringstream ck2;
    a.save(ck2);
    StreamEngine b(c, next);
    ASSERT_NO_THROW(b.restore(ck2));
    EXPECT_EQ(b.state_digest(), a.state_digest());
  }
}

// The engine trusts its baseline's shapes and values (rows of k floats, finite): a model that
// breaks them (an in-process caller; snapshots are checked on load) is refused up front, at
// construction and at a swap (the running state kept), instead of reading past a row or
// quantising a NaN.
TEST(StreamAudit, InconsistentOrNonFiniteBaselineIsRefused) {
  StreamConfig c = quiet_config();
  auto nan_item = random_model(3, 6, 4);
  nan_item->item_factors(1, 2) = std::nanf("");
  EXPECT_THROW(StreamEngine(c, nan_item), InputError);
  auto narrow_users = random_model(3, 6, 4);
  narrow_users->user_factors = FactorMatrix::Constant(3, 3, 0.1f);
  EXPECT_THROW(StreamEngine(c, narrow_users), InputError);
  auto short_bias = random_model(3, 6, 4);
  short_bias->item_bias = Eigen::VectorXf::Zero(2);
  EXPECT_THROW(StreamEngine(c, short_bias), InputError);

  auto m = random_model(3, 6, 4);
  StreamEngine eng(c, m);
  for (const auto& e : mixed_stream(50, 3, 6, 4)) eng.apply(e);
  const std::string before = eng.state_digest();
  auto inf_user = random_model(3, 6, 4, 9);
  inf_user->user_factors(2, 0) = INFINITY;
  EXPECT_THROW(eng.swap_baseline(inf_user), InputError);
  EXPECT_THROW(eng.swap_baseline(narrow_users), InputError);
  EXPECT_EQ(eng.state_digest(), before);
  EXPECT_EQ(eng.baseline().get(), m.get());
}

// The lifetime counters stop at their maximum instead of wrapping: a popular item passing
// 2^32 events would otherwise become the least popular one (sampler weight, trending).
TEST(StreamAudit, LifetimeCountersSaturate) {
  std::uint32_t c = UINT32_MAX - 1;
  EXPECT_EQ(stream::saturating_increment(c), UINT32_MAX);
  EXPECT_EQ(stream::saturating_increment(c), UINT32_MAX);
  EXPECT_EQ(c, UINT32_MAX);
  std::uint32_t z = 0;
  EXPECT_EQ(stream::saturating_increment(z), 1u);
}

}  // namespace
}  // namespace freshrec
