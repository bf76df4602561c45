// One test body for both backends (as implicit's shared test mixin and faiss's GPU-vs-CPU
// comparisons): the typed tests run the same checks on the CPU and the CUDA trainer, the
// parity tests train both from the same start and compare. CUDA cases skip without a device.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cpu/train/trainer.hpp"
#include "cpu/util/error.hpp"
#include "cuda/cuda_backend.hpp"
#include "tests/cuda/test_data.hpp"

namespace freshrec {
namespace {

using testing::make_model;
using testing::make_problem;
using testing::ndcg_at_k;
using testing::popularity_ndcg_at_k;

struct CpuBackend {
  static std::unique_ptr<Trainer> make(const TrainConfig& c) { return make_cpu_trainer(c); }
  static bool available(std::string*) { return true; }
};
struct CudaBackend {
  static std::unique_ptr<Trainer> make(const TrainConfig& c) { return make_cuda_trainer(c); }
  static bool available(std::string* why) { return cuda_device_available(why); }
};

TrainConfig als_config(AlsSolver solver) {
  TrainConfig c;
  c.algorithm = Algorithm::kAls;
  c.factors = 16;
  c.iterations = 8;
  c.regularization = 0.05f;
  c.threads = 2;
  c.solver = solver;
  c.cg_steps = 3;
  return c;
}

TrainConfig sgd_config() {
  TrainConfig c;
  c.algorithm = Algorithm::kSgd;
  c.factors = 16;
  c.iterations = 25;
  c.learning_rate = 0.02f;
  c.lr_decay = 0.97f;
  c.regularization = 0.02f;
  c.bias_regularization = 0.01f;
  c.threads = 2;
  return c;
}

std::vector<double> fit(Trainer& t, const TrainingSet& data, FactorModel& m) {
  std::vector<double> losses;
  t.fit(data, m, [&](const IterationReport& r) { losses.push_back(r.loss); });
  return losses;
}

bool all_finite(const FactorModel& m) {
  return m.user_factors.allFinite() && m.item_factors.allFinite() && m.user_bias.allFinite() &&
         m.item_bias.allFinite();
}

template <class Backend>
class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!Backend::available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  }
};
using Backends = ::testing::Types<CpuBackend, CudaBackend>;
TYPED_TEST_SUITE(BackendTest, Backends);

TYPED_TEST(BackendTest, ImplicitAlsLearnsBeyondPopularity) {
  for (AlsSolver solver : {AlsSolver::kConjugateGradient, AlsSolver::kCholesky}) {
    const auto p = make_problem(400, 300, 20, false, 7);
    FactorModel m = make_model(p.train, 16, false, 11);
    auto trainer = TypeParam::make(als_config(solver));
    const std::vector<double> losses = fit(*trainer, p.train, m);
    ASSERT_EQ(losses.size(), 8u);
    for (std::size_t i = 1; i < losses.size(); ++i) EXPECT_LE(losses[i], losses[i - 1] * (1 + 1e-5)) << trainer->name();
    EXPECT_TRUE(all_finite(m));
    EXPECT_GT(ndcg_at_k(m, p, 10), 1.2 * popularity_ndcg_at_k(p, 10)) << trainer->name();
  }
}

TYPED_TEST(BackendTest, SgdFitsTheRatings) {
  const auto p = make_problem(400, 300, 20, true, 8);
  FactorModel m = make_model(p.train, 16, true, 12);
  const double start = std::sqrt([&] {
    double s = 0;
    const CsrMatrix& R = p.train.user_items;
    for (std::int32_t u = 0; u < R.rows; ++u)
      for (std::int64_t n = R.row_begin(u); n < R.row_end(u); ++n) s += std::pow(R.values[n] - m.score(u, R.indices[n]), 2);
    return s / R.nnz();
  }());
  auto trainer = TypeParam::make(sgd_config());
  const std::vector<double> rmse = fit(*trainer, p.train, m);
  ASSERT_EQ(rmse.size(), 25u);
  EXPECT_TRUE(all_finite(m));
  EXPECT_LT(rmse.back(), 0.75 * start) << trainer->name();
  EXPECT_LT(rmse.back(), rmse.front()) << trainer->name();
}

// --- CPU vs CUDA from the same start ----------------------------------------------------
class AlsParityTest : public ::testing::TestWithParam<AlsSolver> {};

TEST_P(AlsParityTest, SameLossAndNdcgAsCpu) {
  std::string why;
  if (!cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  const auto p = make_problem(500, 350, 25, false, 21);
  const FactorModel start = make_model(p.train, 16, false, 5);
  FactorModel cpu_model = start, gpu_model = start;
  auto cpu = make_cpu_trainer(als_config(GetParam()));
  auto gpu = make_cuda_trainer(als_config(GetParam()));
  const auto cpu_loss = fit(*cpu, p.train, cpu_model);
  const auto gpu_loss = fit(*gpu, p.train, gpu_model);
  ASSERT_EQ(cpu_loss.size(), gpu_loss.size());
  for (std::size_t i = 0; i < cpu_loss.size(); ++i)
    EXPECT_NEAR(gpu_loss[i], cpu_loss[i], 1e-3 * std::abs(cpu_loss[i])) << "iteration " << i + 1;
  const double cpu_ndcg = ndcg_at_k(cpu_model, p, 10), gpu_ndcg = ndcg_at_k(gpu_model, p, 10);
  EXPECT_NEAR(gpu_ndcg, cpu_ndcg, 0.01 * cpu_ndcg);
  EXPECT_TRUE(all_finite(gpu_model));
}

INSTANTIATE_TEST_SUITE_P(Solvers, AlsParityTest,
                         ::testing::Values(AlsSolver::kConjugateGradient, AlsSolver::kCholesky),
                         [](const auto& info) {
                           return info.param == AlsSolver::kCholesky ? std::string("Cholesky") : std::string("CG");
                         });

// SGD visits samples in a different order on each backend (both are Hogwild-style), so
// the factors differ sample by sample; what must agree is where training ends up.
TEST(SgdParityTest, SameRmseAsCpuWithinOrderNoise) {
  std::string why;
  if (!cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  const auto p = make_problem(500, 350, 25, true, 22);
  const FactorModel start = make_model(p.train, 16, true, 6);
  FactorModel cpu_model = start, gpu_model = start;
  const auto cpu_rmse = fit(*make_cpu_trainer(sgd_config()), p.train, cpu_model);
  const auto gpu_rmse = fit(*make_cuda_trainer(sgd_config()), p.train, gpu_model);
  EXPECT_NEAR(gpu_rmse.back(), cpu_rmse.back(), 0.03 * cpu_rmse.back());
  EXPECT_FLOAT_EQ(gpu_model.global_bias, cpu_model.global_bias);
}

TEST(CudaBackendTest, RejectsAModelOfTheWrongShape) {
  std::string why;
  if (!cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  const auto p = make_problem(50, 40, 5, false, 3);
  FactorModel m = make_model(p.train, 8, false, 1);  // config says 16
  EXPECT_THROW(make_cuda_trainer(als_config(AlsSolver::kConjugateGradient))->fit(p.train, m, {}), InputError);
}

TEST(CudaBackendTest, RejectsTooManyFactorsAtConstruction) {
  TrainConfig c = als_config(AlsSolver::kConjugateGradient);
  c.factors = 512;
  EXPECT_THROW(make_cuda_trainer(c), InputError);  // no device needed: checked before any CUDA call
}

TEST(CudaBackendTest, ReportsStatsOfTheLastFit) {
  std::string why;
  if (!cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  const auto p = make_problem(200, 150, 10, false, 4);
  FactorModel m = make_model(p.train, 16, false, 2);
  auto t = make_cuda_trainer(als_config(AlsSolver::kConjugateGradient));
  t->fit(p.train, m, {});
  const auto& stats = dynamic_cast<const CudaTrainer&>(*t).last_stats();
  EXPECT_EQ(stats.iteration_seconds.size(), 8u);
  EXPECT_GT(stats.upload_bytes, 0u);
  EXPECT_GT(stats.peak_device_bytes, 0u);
  EXPECT_LE(stats.peak_device_bytes, stats.planned_device_bytes);
}

}  // namespace
}  // namespace freshrec
