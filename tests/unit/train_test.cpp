// CPU trainers: training-set construction, implicit ALS (CG and Cholesky), biased SGD,
// warm start, determinism, divergence guard and the backend factory.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "cpu/data/csr.hpp"
#include "cpu/train/als_trainer.hpp"
#include "cpu/train/gram.hpp"
#include "cpu/train/loss.hpp"
#include "cpu/train/random.hpp"
#include "cpu/train/sgd_trainer.hpp"
#include "cpu/train/trainer.hpp"
#include "cpu/train/training_set.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

struct Ev {
  const char* user;
  const char* item;
  EventType type;
  double t;
  float value = 1.0f;
};

InteractionLog make_log(const std::vector<Ev>& events) {
  InteractionLog log;
  for (const Ev& e : events) log.add(log.users.intern(e.user), log.items.intern(e.item), e.t, e.value, e.type);
  return log;
}

float value_at(const CsrMatrix& m, std::int32_t r, std::int32_t c) {
  for (std::int64_t n = m.row_begin(r); n < m.row_end(r); ++n)
    if (m.indices[n] == c) return m.values[n];
  return NAN;
}

/// A random implicit log: each user touches ~density of the items with random types
/// and times in the last `days` before t=1e6.
InteractionLog random_implicit_log(int users, int items, double density, std::uint64_t seed) {
  InteractionLog log;
  Rng rng(seed);
  for (int u = 0; u < users; ++u) log.users.intern("u" + std::to_string(u));
  for (int i = 0; i < items; ++i) log.items.intern("i" + std::to_string(i));
  for (int u = 0; u < users; ++u)
    for (int i = 0; i < items; ++i)
      if (rng.uniform() < density) {
        const int n = 1 + static_cast<int>(rng.below(3));
        for (int k = 0; k < n; ++k)
          log.add(u, i, 1e6 - rng.uniform() * 86400.0 * 10, 1.0f, static_cast<EventType>(rng.below(4)));
      }
  return log;
}

TrainConfig als_config(AlsSolver solver, int cg_steps, int iterations) {
  TrainConfig c;
  c.algorithm = Algorithm::kAls;
  c.backend = Backend::kCpu;
  c.factors = 8;
  c.iterations = iterations;
  c.regularization = 0.1f;
  c.threads = 2;
  c.solver = solver;
  c.cg_steps = cg_steps;
  c.init_scale = 0.1f;
  c.seed = 11;
  return c;
}

std::vector<double> fit_losses(Trainer& trainer, const TrainingSet& data, FactorModel& model) {
  std::vector<double> losses;
  trainer.fit(data, model, [&](const IterationReport& r) { losses.push_back(r.loss); });
  return losses;
}

bool all_finite(const FactorModel& m) {
  return m.user_factors.allFinite() && m.item_factors.allFinite() && m.user_bias.allFinite() &&
         m.item_bias.allFinite() && std::isfinite(m.global_bias);
}

// ---------------------------------------------------------------- training sets

TEST(TrainingSet, ImplicitConfidenceMatchesHandComputedValues) {
  const double cutoff = 1000.0;
  InteractionLog log = make_log({
      {"u1", "a", EventType::kView, 1000.0},          // age 0: w 1
      {"u1", "a", EventType::kPurchase, 900.0},       // age 100: w 8 * e^-1
      {"u1", "b", EventType::kSearch, 1000.0},        // weight 0: not stored at all
      {"u2", "b", EventType::kRating, 950.0, 4.0f},   // age 50, weight_by_rating: 1 * 4 * e^-0.5
      {"u2", "a", EventType::kClick, 1000.0},         // masked out below
      {"u2", "c", EventType::kAddToCart, 1200.0},     // after the cutoff: counts as age 0
  });
  ConfidenceConfig conf;
  conf.alpha = 2.0f;
  conf.lambda_long = 0.01;
  conf.weight_by_rating = true;
  std::vector<std::uint8_t> mask{1, 1, 1, 1, 0, 1};
  TrainingSet s = build_implicit_training_set(log, mask, conf, cutoff);

  ASSERT_EQ(s.n_users(), 2);
  ASSERT_EQ(s.n_items(), 3);
  EXPECT_EQ(s.user_items.nnz(), 3);  // (u1,a), (u2,b), (u2,c)
  EXPECT_NEAR(value_at(s.user_items, 0, 0), 1.0 + 2.0 * (1.0 + 8.0 * std::exp(-1.0)), 1e-5);
  EXPECT_TRUE(std::isnan(value_at(s.user_items, 0, 1)));
  EXPECT_NEAR(value_at(s.user_items, 1, 1), 1.0 + 2.0 * 4.0 * std::exp(-0.5), 1e-5);
  EXPECT_TRUE(std::isnan(value_at(s.user_items, 1, 0)));
  EXPECT_NEAR(value_at(s.user_items, 1, 2), 1.0 + 2.0 * 4.0, 1e-5);
  EXPECT_EQ(s.cutoff, cutoff);
  // The transpose carries the same values.
  EXPECT_EQ(s.item_users.nnz(), 3);
  EXPECT_NEAR(value_at(s.item_users, 1, 1), value_at(s.user_items, 1, 1), 0.0f);
}

TEST(TrainingSet, ImplicitDropsPairsWhoseDecayUnderflows) {
  InteractionLog log = make_log({{"u", "old", EventType::kView, 0.0}, {"u", "new", EventType::kView, 1e6}});
  ConfidenceConfig conf;
  conf.lambda_long = 1.0;  // e^-1e6 underflows to 0
  TrainingSet s = build_implicit_training_set(log, {}, conf, 1e6);
  EXPECT_EQ(s.user_items.nnz(), 1);
  EXPECT_NEAR(value_at(s.user_items, 0, 1), 2.0, 1e-6);
}

TEST(TrainingSet, ImplicitRejectsBadConfigAndMask) {
  InteractionLog log = make_log({{"u", "i", EventType::kView, 0.0}});
  ConfidenceConfig conf;
  conf.alpha = -1.0f;
  try {
    build_implicit_training_set(log, {}, conf, 0.0);
    FAIL() << "negative alpha accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("train.confidence.alpha"), std::string::npos);
  }
  conf.alpha = 1.0f;
  conf.weights[EventType::kClick] = NAN;
  EXPECT_THROW(build_implicit_training_set(log, {}, conf, 0.0), InputError);
  EXPECT_THROW(build_implicit_training_set(log, {1, 0}, ConfidenceConfig{}, 0.0), InputError);
}

TEST(TrainingSet, ExplicitKeepsLatestRatingByEventTime) {
  InteractionLog log = make_log({
      {"u1", "a", EventType::kRating, 300.0, 5.0f},  // latest although listed first
      {"u1", "a", EventType::kRating, 100.0, 1.0f},
      {"u1", "b", EventType::kRating, 200.0, 3.0f},
      {"u1", "b", EventType::kView, 400.0},           // not a rating: ignored
      {"u2", "a", EventType::kRating, 50.0, 2.0f},
  });
  TrainingSet s = build_explicit_training_set(log, {});
  EXPECT_EQ(s.user_items.nnz(), 3);
  EXPECT_FLOAT_EQ(value_at(s.user_items, 0, 0), 5.0f);
  EXPECT_FLOAT_EQ(value_at(s.user_items, 0, 1), 3.0f);
  EXPECT_FLOAT_EQ(value_at(s.user_items, 1, 0), 2.0f);
  EXPECT_NEAR(s.rating_mean, (5.0 + 3.0 + 2.0) / 3.0, 1e-9);
  EXPECT_EQ(s.cutoff, 300.0);
  // Masking the latest rating exposes the older one.
  TrainingSet m = build_explicit_training_set(log, {0, 1, 1, 1, 1});
  EXPECT_FLOAT_EQ(value_at(m.user_items, 0, 0), 1.0f);
}

// ---------------------------------------------------------------- ALS

TEST(AlsLoss, MatchesDenseDefinition) {
  InteractionLog log = random_implicit_log(7, 5, 0.4, 3);
  ConfidenceConfig conf;
  conf.alpha = 3.0f;
  TrainingSet s = build_implicit_training_set(log, {}, conf, log.max_timestamp());
  FactorMatrix X(7, 3), Y(5, 3);
  Rng rng(5);
  for (int n = 0; n < X.size(); ++n) X.data()[n] = static_cast<float>(rng.normal());
  for (int n = 0; n < Y.size(); ++n) Y.data()[n] = static_cast<float>(rng.normal());
  const float reg = 0.3f;
  double num = 0.0, den = 0.0;
  for (int u = 0; u < 7; ++u)
    for (int i = 0; i < 5; ++i) {
      const float c_stored = value_at(s.user_items, u, i);
      const double c = std::isnan(c_stored) ? 1.0 : c_stored, p = std::isnan(c_stored) ? 0.0 : 1.0;
      const double d = p - X.row(u).dot(Y.row(i));
      num += c * d * d;
      den += c;
    }
  num += reg * (X.squaredNorm() + Y.squaredNorm());
  EXPECT_NEAR(implicit_als_loss(s.user_items, X, Y, reg, 2), num / den, 1e-5 * num / den);
}

class AlsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = random_implicit_log(60, 40, 0.15, 21);
    ConfidenceConfig conf;
    conf.alpha = 2.0f;
    conf.lambda_long = 1.0 / 86400.0;
    data_ = build_implicit_training_set(log_, {}, conf, log_.max_timestamp());
  }
  FactorModel init(const TrainConfig& c) {
    FactorModel m;
    initialize_factors(log_, data_, c, ModelKind::kImplicit, nullptr, m);
    return m;
  }
  InteractionLog log_;
  TrainingSet data_;
};

TEST_F(AlsFixture, ConjugateGradientAgreesWithCholesky) {
  const TrainConfig cg = als_config(AlsSolver::kConjugateGradient, 40, 6);
  const TrainConfig ch = als_config(AlsSolver::kCholesky, 0, 6);
  FactorModel a = init(cg), b = init(ch);
  ASSERT_TRUE(a.user_factors == b.user_factors);  // same seed, same start
  AlsTrainer cg_trainer(cg), ch_trainer(ch);
  EXPECT_EQ(cg_trainer.name(), "cpu-als-cg");
  EXPECT_EQ(ch_trainer.name(), "cpu-als-cholesky");
  const auto la = fit_losses(cg_trainer, data_, a);
  const auto lb = fit_losses(ch_trainer, data_, b);
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 6u);
  EXPECT_NEAR(la.back(), lb.back(), 1e-3 * lb.back());
  const double scale = b.user_factors.cwiseAbs().maxCoeff();
  EXPECT_LT((a.user_factors - b.user_factors).cwiseAbs().maxCoeff(), 1e-2 * scale);
  EXPECT_LT((a.item_factors - b.item_factors).cwiseAbs().maxCoeff(), 1e-2 * scale);
  EXPECT_EQ(cg_trainer.rejected_rows(), 0);
  EXPECT_EQ(ch_trainer.rejected_rows(), 0);
}

TEST_F(AlsFixture, LossDecreasesForBothSolvers) {
  for (AlsSolver solver : {AlsSolver::kConjugateGradient, AlsSolver::kCholesky}) {
    const TrainConfig c = als_config(solver, 3, 8);
    FactorModel m = init(c);
    const double start = implicit_als_loss(data_.user_items, m.user_factors, m.item_factors, c.regularization, 1);
    AlsTrainer trainer(c);
    const auto losses = fit_losses(trainer, data_, m);
    ASSERT_EQ(losses.size(), 8u);
    EXPECT_LT(losses.front(), start) << trainer.name();
    for (std::size_t n = 1; n < losses.size(); ++n)
      EXPECT_LE(losses[n], losses[n - 1] * (1.0 + 1e-6)) << trainer.name() << " iteration " << n + 1;
    EXPECT_LT(losses.back(), 0.9 * losses.front()) << trainer.name();
    EXPECT_TRUE(all_finite(m));
  }
}

TEST_F(AlsFixture, DeterministicForSeedAndIndependentOfThreads) {
  TrainConfig c = als_config(AlsSolver::kConjugateGradient, 3, 4);
  FactorModel a = init(c), b = init(c);
  AlsTrainer(c).fit(data_, a, nullptr);
  AlsTrainer(c).fit(data_, b, nullptr);
  EXPECT_TRUE(a.user_factors == b.user_factors);
  EXPECT_TRUE(a.item_factors == b.item_factors);
  c.threads = 1;
  FactorModel one = init(c);
  AlsTrainer(c).fit(data_, one, nullptr);
  EXPECT_TRUE(one.user_factors == a.user_factors);
  EXPECT_TRUE(one.item_factors == a.item_factors);
  c.seed = 12;
  FactorModel other = init(c);
  AlsTrainer(c).fit(data_, other, nullptr);
  EXPECT_FALSE(other.user_factors == a.user_factors);
}

TEST_F(AlsFixture, SkipsLossWhenNotRequestedAndChecksModelShape) {
  TrainConfig c = als_config(AlsSolver::kConjugateGradient, 3, 2);
  c.compute_loss = false;
  FactorModel m = init(c);
  const auto losses = fit_losses(*make_cpu_trainer(c), data_, m);
  ASSERT_EQ(losses.size(), 2u);
  EXPECT_TRUE(std::isnan(losses[0]));
  FactorModel wrong;
  c.factors = 4;
  initialize_factors(log_, data_, c, ModelKind::kImplicit, nullptr, wrong);
  c.factors = 8;
  EXPECT_THROW(AlsTrainer(c).fit(data_, wrong, nullptr), InputError);
}

// A user with no training entries (possible after a time split) solves (YtY + reg I) x = 0.
// The empty row comes first so that a thread's scratch is still unsized when it meets it.
TEST(AlsSolveRows, EmptyRowsSolveToZeroWithBothSolvers) {
  const int k = 4;
  CsrMatrix cui = build_csr(4, 3, {{1, 0, 3.0f}, {1, 2, 1.5f}, {3, 1, 2.0f}}, DuplicatePolicy::kSum);
  FactorMatrix Y(3, k);
  Y << 0.3f, -0.1f, 0.2f, 0.5f, /**/ -0.4f, 0.2f, 0.1f, 0.3f, /**/ 0.1f, 0.6f, -0.2f, 0.2f;
  for (AlsSolver solver : {AlsSolver::kCholesky, AlsSolver::kConjugateGradient}) {
    FactorMatrix X = FactorMatrix::Constant(4, k, 0.5f);
    EXPECT_EQ(als_solve_rows(cui, Y, X, 0.1f, solver, 2 * k, 1), 0);
    ASSERT_TRUE(X.allFinite());
    EXPECT_LT(X.row(0).cwiseAbs().maxCoeff(), 1e-5f) << static_cast<int>(solver);
    EXPECT_LT(X.row(2).cwiseAbs().maxCoeff(), 1e-5f) << static_cast<int>(solver);
    EXPECT_GT(X.row(1).cwiseAbs().maxCoeff(), 1e-2f) << static_cast<int>(solver);
    EXPECT_GT(X.row(3).cwiseAbs().maxCoeff(), 1e-2f) << static_cast<int>(solver);
  }
}

// gram_matrix sums 16 fixed chunks so the thread count cannot change the arithmetic. With
// threads = 1 its region has one thread, and Eigen's GEMM then forks on its own (it only
// stays serial inside a region of more than one thread) with a different depth blocking:
// YtY, and every ALS iterate after it, differed in the last bits between threads = 1 and
// threads = 2. Chunks deeper than Eigen's depth block (~300) and k = 32 make it fork.
TEST(GramMatrix, SameBitsForAnyThreadCount) {
  Rng rng(3);
  FactorMatrix Y(16 * 1500, 32);
  for (Eigen::Index r = 0; r < Y.rows(); ++r)
    for (Eigen::Index c = 0; c < Y.cols(); ++c) Y(r, c) = static_cast<float>(rng.normal());
  const int saved = omp_get_max_threads();
  omp_set_num_threads(4);  // what Eigen forks to when left alone, whatever the machine
  const Eigen::MatrixXf one = gram_matrix(Y, 1);
  const Eigen::MatrixXf two = gram_matrix(Y, 2);
  const Eigen::MatrixXf four = gram_matrix(Y, 4);
  EXPECT_EQ(omp_get_max_threads(), 4);  // the caller's setting is left alone
  omp_set_num_threads(saved);
  EXPECT_TRUE(one == two) << "max |diff| " << (one - two).cwiseAbs().maxCoeff();
  EXPECT_TRUE(four == two) << "max |diff| " << (four - two).cwiseAbs().maxCoeff();
}

// ---------------------------------------------------------------- warm start

TEST(WarmStart, KnownRowsKeepFactorsNewRowsStartSmallAndRandom) {
  InteractionLog old_log = make_log({{"alice", "boots", EventType::kPurchase, 10.0},
                                     {"bob", "shoes", EventType::kView, 20.0},
                                     {"bob", "boots", EventType::kView, 30.0}});
  TrainConfig c = als_config(AlsSolver::kCholesky, 0, 3);
  c.factors = 4;
  TrainingSet old_data = build_implicit_training_set(old_log, {}, ConfidenceConfig{}, 30.0);
  FactorModel old_model;
  initialize_factors(old_log, old_data, c, ModelKind::kImplicit, nullptr, old_model);
  AlsTrainer(c).fit(old_data, old_model, nullptr);

  // New log: different first-seen order, one new user and one new item.
  InteractionLog log = make_log({{"carol", "socks", EventType::kClick, 40.0},
                                 {"bob", "boots", EventType::kView, 50.0},
                                 {"alice", "shoes", EventType::kView, 60.0}});
  TrainingSet data = build_implicit_training_set(log, {}, ConfidenceConfig{}, 60.0);
  c.seed = 99;
  FactorModel m;
  initialize_factors(log, data, c, ModelKind::kImplicit, &old_model, m);
  ASSERT_EQ(m.n_users(), 3);
  ASSERT_EQ(m.n_items(), 3);
  for (const char* user : {"alice", "bob"})
    EXPECT_TRUE(m.user_factors.row(*m.user_ids.find(user)) == old_model.user_factors.row(*old_model.user_ids.find(user)))
        << user;
  for (const char* item : {"boots", "shoes"})
    EXPECT_TRUE(m.item_factors.row(*m.item_ids.find(item)) == old_model.item_factors.row(*old_model.item_ids.find(item)))
        << item;
  const auto carol = m.user_factors.row(*m.user_ids.find("carol"));
  const auto socks = m.item_factors.row(*m.item_ids.find("socks"));
  EXPECT_GT(carol.norm(), 0.0f);
  EXPECT_LT(carol.cwiseAbs().maxCoeff(), 6.0f * c.init_scale);
  EXPECT_GT(socks.norm(), 0.0f);
  EXPECT_LT(socks.cwiseAbs().maxCoeff(), 6.0f * c.init_scale);

  c.factors = 5;
  FactorModel bad;
  EXPECT_THROW(initialize_factors(log, data, c, ModelKind::kImplicit, &old_model, bad), InputError);
}

TEST(Initialize, NormalInitHasRequestedScale) {
  InteractionLog log = random_implicit_log(400, 300, 0.02, 4);
  TrainingSet data = build_implicit_training_set(log, {}, ConfidenceConfig{}, log.max_timestamp());
  TrainConfig c;
  c.factors = 16;
  c.init_scale = 0.5f;
  FactorModel m;
  initialize_factors(log, data, c, ModelKind::kImplicit, nullptr, m);
  const double n = static_cast<double>(m.user_factors.size());
  const double mean = m.user_factors.sum() / n;
  const double sd = std::sqrt(m.user_factors.squaredNorm() / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(sd, 0.5, 0.02);
}

// ---------------------------------------------------------------- SGD

/// Ratings from a planted rank-3 biased model; every user/item appears in the log.
struct Planted {
  InteractionLog log;
  std::vector<std::uint8_t> train_mask;
  std::vector<std::size_t> held_out;
  std::vector<float> truth;  ///< noiseless value of each event
};

Planted planted_ratings(int users, int items, double density, std::uint64_t seed) {
  Planted p;
  Rng rng(seed);
  const int rank = 3;
  std::vector<double> P(users * rank), Q(items * rank), bu(users), bi(items);
  for (double& v : P) v = rng.normal() * 0.8;
  for (double& v : Q) v = rng.normal() * 0.8;
  for (double& v : bu) v = rng.normal() * 0.3;
  for (double& v : bi) v = rng.normal() * 0.3;
  for (int u = 0; u < users; ++u) p.log.users.intern("u" + std::to_string(u));
  for (int i = 0; i < items; ++i) p.log.items.intern("i" + std::to_string(i));
  for (int u = 0; u < users; ++u)
    for (int i = 0; i < items; ++i) {
      if (rng.uniform() >= density) continue;
      double r = 3.5 + bu[u] + bi[i];
      for (int f = 0; f < rank; ++f) r += P[u * rank + f] * Q[i * rank + f];
      const bool held = rng.uniform() < 0.1;
      if (held) p.held_out.push_back(p.log.size());
      p.train_mask.push_back(held ? 0 : 1);
      p.truth.push_back(static_cast<float>(r));
      p.log.add(u, i, 1000.0 + p.log.size(), static_cast<float>(r), EventType::kRating);
    }
  return p;
}

TrainConfig sgd_config() {
  TrainConfig c;
  c.algorithm = Algorithm::kSgd;
  c.backend = Backend::kCpu;
  c.factors = 8;
  c.iterations = 60;
  c.learning_rate = 0.03f;
  c.lr_decay = 0.97f;
  c.min_learning_rate = 0.003f;
  c.regularization = 0.01f;
  c.bias_regularization = 0.01f;
  c.init_scale = 0.1f;
  c.threads = 2;
  c.seed = 5;
  return c;
}

TEST(Sgd, RecoversPlantedLowRankMatrix) {
  Planted p = planted_ratings(300, 200, 0.3, 77);
  TrainingSet data = build_explicit_training_set(p.log, p.train_mask);
  const TrainConfig c = sgd_config();
  FactorModel m;
  initialize_factors(p.log, data, c, ModelKind::kExplicit, nullptr, m);
  EXPECT_FLOAT_EQ(m.global_bias, static_cast<float>(data.rating_mean));
  SgdTrainer trainer(c);
  EXPECT_EQ(trainer.name(), "cpu-sgd");
  const auto rmse = fit_losses(trainer, data, m);
  ASSERT_EQ(rmse.size(), static_cast<std::size_t>(c.iterations));
  EXPECT_LT(rmse.back(), 0.5 * rmse.front());

  double sse = 0.0, sst = 0.0, mean = 0.0;
  for (std::size_t e : p.held_out) mean += p.truth[e];
  mean /= static_cast<double>(p.held_out.size());
  for (std::size_t e : p.held_out) {
    const double d = p.truth[e] - m.score(p.log.user[e], p.log.item[e]);
    sse += d * d;
    sst += (p.truth[e] - mean) * (p.truth[e] - mean);
  }
  const double held_rmse = std::sqrt(sse / p.held_out.size());
  const double spread = std::sqrt(sst / p.held_out.size());
  EXPECT_LT(held_rmse, 0.15 * spread) << "held-out RMSE " << held_rmse << " vs rating sd " << spread;
  EXPECT_EQ(trainer.skipped_updates(), 0);
}

TEST(Sgd, DeterministicForSeedAndThreadCount) {
  Planted p = planted_ratings(120, 90, 0.3, 8);
  TrainingSet data = build_explicit_training_set(p.log, {});
  TrainConfig c = sgd_config();
  c.iterations = 5;
  FactorModel a, b;
  initialize_factors(p.log, data, c, ModelKind::kExplicit, nullptr, a);
  initialize_factors(p.log, data, c, ModelKind::kExplicit, nullptr, b);
  SgdTrainer(c).fit(data, a, nullptr);
  SgdTrainer(c).fit(data, b, nullptr);
  EXPECT_TRUE(a.user_factors == b.user_factors);
  EXPECT_TRUE(a.item_factors == b.item_factors);
  EXPECT_TRUE(a.user_bias == b.user_bias);
  EXPECT_TRUE(a.item_bias == b.item_bias);
  c.seed = 6;
  FactorModel other;
  initialize_factors(p.log, data, c, ModelKind::kExplicit, nullptr, other);
  SgdTrainer(c).fit(data, other, nullptr);
  EXPECT_FALSE(other.user_factors == a.user_factors);
}

TEST(Sgd, HugeLearningRateNeverWritesNonFinite) {
  Planted p = planted_ratings(80, 60, 0.4, 9);
  TrainingSet data = build_explicit_training_set(p.log, {});
  TrainConfig c = sgd_config();
  c.iterations = 5;
  c.learning_rate = 1e4f;
  c.lr_decay = 1.0f;
  FactorModel m;
  initialize_factors(p.log, data, c, ModelKind::kExplicit, nullptr, m);
  SgdTrainer trainer(c);
  ::testing::internal::CaptureStderr();
  trainer.fit(data, m, nullptr);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(all_finite(m));
  EXPECT_GT(trainer.skipped_updates(), 0);
  EXPECT_NE(err.find("non-finite"), std::string::npos);
}

TEST(Sgd, LearningRateDecaysToFloor) {
  // With decay 0.1 and a floor, epoch 3+ runs at the floor; a floor of 0 would freeze
  // the model, so the floor run must keep moving the factors.
  Planted p = planted_ratings(50, 40, 0.3, 10);
  TrainingSet data = build_explicit_training_set(p.log, {});
  TrainConfig c = sgd_config();
  c.lr_decay = 0.01f;
  c.iterations = 3;
  c.min_learning_rate = 0.0f;
  FactorModel frozen;
  initialize_factors(p.log, data, c, ModelKind::kExplicit, nullptr, frozen);
  SgdTrainer(c).fit(data, frozen, nullptr);
  FactorModel after_two = frozen;
  c.iterations = 1;
  c.learning_rate = 0.03f * 0.01f * 0.01f * 0.01f;  // epoch 4 of the decayed schedule: ~0
  SgdTrainer(c).fit(data, after_two, nullptr);
  EXPECT_LT((after_two.user_factors - frozen.user_factors).cwiseAbs().maxCoeff(), 1e-5f);
  c.min_learning_rate = 0.02f;
  FactorModel floored = frozen;
  SgdTrainer(c).fit(data, floored, nullptr);
  EXPECT_GT((floored.user_factors - frozen.user_factors).cwiseAbs().maxCoeff(), 1e-3f);
}

// ---------------------------------------------------------------- factory and config

TEST(Factory, PicksTheCpuTrainers) {
  TrainConfig c;
  c.backend = Backend::kCpu;
  std::string chosen;
  EXPECT_EQ(make_trainer(c, &chosen)->name(), "cpu-als-cg");
  EXPECT_EQ(chosen, "cpu");
  c.solver = AlsSolver::kCholesky;
  EXPECT_EQ(make_cpu_trainer(c)->name(), "cpu-als-cholesky");
  c.algorithm = Algorithm::kSgd;
  EXPECT_EQ(make_cpu_trainer(c)->name(), "cpu-sgd");
}

#if !FRESHREC_WITH_CUDA
TEST(Factory, WithoutCudaAutoFallsBackWithOneWarningAndCudaIsAnError) {
  TrainConfig c;
  c.backend = Backend::kAuto;
  std::string chosen;
  ::testing::internal::CaptureStderr();
  auto t = make_trainer(c, &chosen);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(chosen, "cpu");
  EXPECT_EQ(t->name(), "cpu-als-cg");
  EXPECT_EQ(err, "freshrec: no CUDA device (this build has no CUDA backend); training on the CPU\n");
  c.backend = Backend::kCuda;
  try {
    make_trainer(c);
    FAIL() << "cuda backend accepted by a CPU-only build";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("train.backend"), std::string::npos);
  }
}
#endif

TEST(Factory, RejectsBadConfigNamingTheKey) {
  TrainConfig c;
  c.cg_steps = 0;
  try {
    make_cpu_trainer(c);
    FAIL() << "cg_steps 0 accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("train.cg_steps"), std::string::npos);
  }
  c = TrainConfig{};
  c.algorithm = Algorithm::kSgd;
  c.learning_rate = NAN;
  EXPECT_THROW(make_cpu_trainer(c), InputError);
  c = TrainConfig{};
  c.factors = 0;
  EXPECT_THROW(make_cpu_trainer(c), InputError);
}

}  // namespace
}  // namespace freshrec
