// Each kernel family against a small CPU reference in double precision (as ggml's
// test-backend-ops and faiss's GPU tests): Gram matrix, CG step, Cholesky solve, implicit
// loss, one SGD update, CSR/CSC build. Device cases skip without a GPU; the error-path,
// RAII and trace-hook cases run everywhere.
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <gtest/gtest.h>

#include "cpu/train/loss.hpp"
#include "cpu/util/trace.hpp"
#include "cuda/als_kernels.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/device_csr.hpp"
#include "cuda/sgd_kernels.hpp"
#include "tests/cuda/test_data.hpp"

namespace freshrec {
namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class KernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
    res_ = std::make_unique<GpuResources>(0);
  }
  template <class T>
  DeviceBuffer<T> to_device(const std::vector<T>& host) {
    DeviceBuffer<T> d(*res_, host.size());
    d.upload(host.data(), host.size());
    return d;
  }
  template <class T>
  std::vector<T> to_host(const DeviceBuffer<T>& d) {
    std::vector<T> host(d.size());
    d.download(host.data(), host.size());
    res_->synchronize();
    return host;
  }
  /// A CSR matrix, the other side's factors Y and their Gram matrix (+ reg I) on the device.
  struct DeviceSystem {
    DeviceBuffer<float> y, gram;
    DeviceBuffer<std::int64_t> indptr;
    DeviceBuffer<std::int32_t> indices;
    DeviceBuffer<float> values;
    DeviceCsrView view;
  };
  DeviceSystem upload_system(const CsrMatrix& m, const std::vector<float>& Y, int k, float reg) {
    DeviceSystem d;
    d.y = to_device(Y);
    d.gram = DeviceBuffer<float>(*res_, static_cast<std::size_t>(gram_stride(k)) * gram_stride(k));
    compute_gram(*res_, d.y.data(), m.cols, k, reg, d.gram.data());
    d.indptr = to_device(m.indptr);
    d.indices = to_device(m.indices);
    d.values = to_device(m.values);
    d.view = {m.rows, m.cols, m.nnz(), d.indptr.data(), d.indices.data(), d.values.data()};
    return d;
  }
  std::unique_ptr<GpuResources> res_;
};

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, double scale) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

double rel_error(const std::vector<double>& ref, const std::vector<float>& got) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (ref[i] - got[i]) * (ref[i] - got[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

MatD gram_ref(const std::vector<float>& F, int n, int k, double reg) {
  MatD G = MatD::Zero(k, k);
  for (int r = 0; r < n; ++r)
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b) G(a, b) += static_cast<double>(F[r * k + a]) * F[r * k + b];
  G.diagonal().array() += reg;
  return G;
}

/// `full` with row r cut to its first keep(r, size) entries.
template <class Keep>
CsrMatrix cut_rows(const CsrMatrix& full, Keep keep) {
  CsrMatrix m;
  m.rows = full.rows;
  m.cols = full.cols;
  for (std::int32_t r = 0; r < full.rows; ++r) {
    const std::int64_t len = keep(r, full.row_size(r));
    for (std::int64_t n = full.row_begin(r); n < full.row_begin(r) + len; ++n) {
      m.indices.push_back(full.indices[n]);
      m.values.push_back(full.values[n]);
    }
    m.indptr.push_back(m.nnz());
  }
  return m;
}

// The system row r of `m` solves, in double: A = G + sum (c-1) y y^T, b = sum c y.
void system_ref(const CsrMatrix& m, std::int32_t r, const std::vector<float>& Y, int k, const MatD& G, MatD& A,
                Eigen::VectorXd& b) {
  A = G;
  b = Eigen::VectorXd::Zero(k);
  for (std::int64_t n = m.row_begin(r); n < m.row_end(r); ++n) {
    const double c = m.values[n];
    Eigen::VectorXd y(k);
    for (int t = 0; t < k; ++t) y[t] = Y[static_cast<std::size_t>(m.indices[n]) * k + t];
    A += (c - 1.0) * y * y.transpose();
    b += c * y;
  }
}

TEST_F(KernelTest, GramMatchesCpu) {
  for (int k : {7, 32, 40, 64, 130}) {
    const int n = 300;
    const auto F = random_floats(static_cast<std::size_t>(n) * k, 100 + k, 0.5);
    auto dF = to_device(F);
    const int ld = gram_stride(k);
    DeviceBuffer<float> dG(*res_, static_cast<std::size_t>(ld) * ld);
    compute_gram(*res_, dF.data(), n, k, 0.25f, dG.data());
    const auto G = to_host(dG);
    const MatD ref = gram_ref(F, n, k, 0.25);
    std::vector<double> r;
    std::vector<float> g;
    for (int a = 0; a < ld; ++a)
      for (int b = 0; b < ld; ++b) {
        r.push_back(a < k && b < k ? ref(a, b) : 0.0);
        g.push_back(G[static_cast<std::size_t>(a) * ld + b]);
      }
    EXPECT_LT(rel_error(r, g), 1e-5) << "k=" << k;
  }
}

TEST_F(KernelTest, CgStepMatchesCpuAndConvergesToTheExactSolution) {
  // Short rows (30 entries), and long ones (700: every warp of a long-row block takes
  // several 32-entry chunks, the last one partial).
  struct Shape { std::int32_t users, items; int per_user; };
  for (const Shape shape : {Shape{60, 90, 30}, Shape{12, 1500, 700}}) {
    for (int k : {16, 64, 70}) {
      SCOPED_TRACE("rows of " + std::to_string(shape.per_user) + " entries");
      const auto p = testing::make_problem(shape.users, shape.items, shape.per_user, false, 300 + k);
      // Even rows keep their first 60% of entries, so a threshold of 80% splits the rows
      // between the warp path and the block path (make_problem's rows are all one length);
      // every fifth row is empty (a user with no training entries).
      const CsrMatrix m = cut_rows(p.train.user_items, [](std::int32_t r, std::int64_t size) {
        return r % 5 == 3 ? 0 : r % 2 != 0 ? size : size * 3 / 5;
      });
      const std::int64_t mixed = shape.per_user * 4 / 5;
      const auto Y = random_floats(static_cast<std::size_t>(m.cols) * k, 1 + k, 0.3);
      const auto X0 = random_floats(static_cast<std::size_t>(m.rows) * k, 2 + k, 0.3);
      const MatD G = gram_ref(Y, m.cols, k, 0.1);
      const DeviceSystem d = upload_system(m, Y, k, 0.1f);

      std::vector<double> ref1, ref_exact;
      for (std::int32_t r = 0; r < m.rows; ++r) {
        MatD A;
        Eigen::VectorXd b;
        system_ref(m, r, Y, k, G, A, b);
        Eigen::VectorXd x0(k);
        for (int t = 0; t < k; ++t) x0[t] = X0[static_cast<std::size_t>(r) * k + t];
        const Eigen::VectorXd res = b - A * x0;
        const Eigen::VectorXd x1 = x0 + (res.dot(res) / res.dot(A * res)) * res;
        const Eigen::VectorXd xs = A.llt().solve(b);
        for (int t = 0; t < k; ++t) {
          ref1.push_back(x1[t]);
          ref_exact.push_back(xs[t]);
        }
      }
      // Every row by a warp (the default for rows this short), every row by a block (the
      // long-row path), and a mix of both in one call (the shortened rows by warps).
      for (const std::int64_t long_rows : {kCgLongRowEntries, std::int64_t{0}, mixed}) {
        // One CG step from the warm start: x1 = x0 + (r.r / r.Ar) r, r = b - A x0.
        auto dX = to_device(X0);
        als_cg_update(*res_, d.view, d.y.data(), d.gram.data(), dX.data(), k, 1, long_rows);
        EXPECT_LT(rel_error(ref1, to_host(dX)), 1e-4) << "k=" << k << " long rows > " << long_rows;

        // Many steps: CG reaches the exact solution (float precision).
        auto dX2 = to_device(X0);
        als_cg_update(*res_, d.view, d.y.data(), d.gram.data(), dX2.data(), k, 3 * k, long_rows);
        EXPECT_LT(rel_error(ref_exact, to_host(dX2)), 2e-3) << "k=" << k << " long rows > " << long_rows;
      }
    }
  }
}

TEST_F(KernelTest, CholeskySolveMatchesCpu) {
  for (int k : {8, 33, 64, 128}) {
    const auto p = testing::make_problem(70, 150, 40, false, 400 + k);
    // Every seventh row empty: it solves (G + reg I) x = 0, x = 0.
    const CsrMatrix m =
        cut_rows(p.train.user_items, [](std::int32_t r, std::int64_t size) { return r % 7 == 5 ? 0 : size; });
    const auto Y = random_floats(static_cast<std::size_t>(m.cols) * k, 3 + k, 0.3);
    const MatD G = gram_ref(Y, m.cols, k, 0.1);
    const DeviceSystem d = upload_system(m, Y, k, 0.1f);
    // Poisoned start: every row must be overwritten by the solve.
    DeviceBuffer<float> dX = to_device(std::vector<float>(static_cast<std::size_t>(m.rows) * k, 1e6f));
    als_cholesky_update(*res_, d.view, d.y.data(), d.gram.data(), dX.data(), k);
    std::vector<double> ref;
    for (std::int32_t r = 0; r < m.rows; ++r) {
      MatD A;
      Eigen::VectorXd b;
      system_ref(m, r, Y, k, G, A, b);
      const Eigen::VectorXd xs = A.llt().solve(b);
      for (int t = 0; t < k; ++t) ref.push_back(xs[t]);
    }
    EXPECT_LT(rel_error(ref, to_host(dX)), 1e-3) << "k=" << k;
  }
}

TEST_F(KernelTest, ImplicitLossMatchesCpu) {
  const int k = 24;
  const auto p = testing::make_problem(80, 70, 12, false, 500);
  const CsrMatrix& m = p.train.user_items;
  const FactorModel model = testing::make_model(p.train, k, false, 9, 0.3f);
  const float reg = 0.07f;
  const double ref = implicit_als_loss(m, model.user_factors, model.item_factors, reg, 1);
  auto dX = to_device(std::vector<float>(model.user_factors.data(), model.user_factors.data() + model.user_factors.size()));
  const DeviceSystem d = upload_system(
      m, std::vector<float>(model.item_factors.data(), model.item_factors.data() + model.item_factors.size()), k, reg);
  DeviceBuffer<double> terms(*res_, 2);
  als_loss_terms(*res_, d.view, dX.data(), d.y.data(), d.gram.data(), k, terms.data());
  const auto t = to_host(terms);
  const double item_norm = sum_of_squares(*res_, d.y.data(), static_cast<std::int64_t>(d.y.size()));
  const double got = (t[0] + reg * item_norm) / (t[1] + double(m.rows) * m.cols - m.nnz());
  EXPECT_NEAR(got, ref, 1e-5 * std::abs(ref));
}

TEST_F(KernelTest, SgdUpdateOfOneSampleMatchesTheFormula) {
  for (int k : {5, 64, 100}) {
    const int nu = 3, ni = 4;
    auto P = random_floats(static_cast<std::size_t>(nu) * k, 7 + k, 0.3);
    auto Q = random_floats(static_cast<std::size_t>(ni) * k, 8 + k, 0.3);
    std::vector<float> bu{0.1f, -0.2f, 0.3f}, bi{0.05f, 0.0f, -0.1f, 0.2f};
    auto dP = to_device(P), dQ = to_device(Q), dbu = to_device(bu), dbi = to_device(bi);
    auto su = to_device(std::vector<std::int32_t>{2}), si = to_device(std::vector<std::int32_t>{1});
    auto sr = to_device(std::vector<float>{4.5f});
    SgdStep step;
    step.learning_rate = 0.05f;
    step.regularization = 0.02f;
    step.bias_regularization = 0.01f;
    step.global_bias = 3.5f;
    sgd_epoch(*res_, {su.data(), si.data(), sr.data(), 1}, {dP.data(), dQ.data(), dbu.data(), dbi.data(), k}, step, 1);
    double dot = 0;
    for (int t = 0; t < k; ++t) dot += double(P[2 * k + t]) * Q[1 * k + t];
    const double e = 4.5 - (3.5 + bu[2] + bi[1] + dot);
    std::vector<double> ref_p(P.begin(), P.end()), ref_q(Q.begin(), Q.end());
    for (int t = 0; t < k; ++t) {
      ref_p[2 * k + t] = P[2 * k + t] + 0.05 * (e * Q[k + t] - 0.02 * P[2 * k + t]);
      ref_q[k + t] = Q[k + t] + 0.05 * (e * P[2 * k + t] - 0.02 * Q[k + t]);
    }
    EXPECT_LT(rel_error(ref_p, to_host(dP)), 1e-6) << "k=" << k;
    EXPECT_LT(rel_error(ref_q, to_host(dQ)), 1e-6) << "k=" << k;
    const auto gbu = to_host(dbu), gbi = to_host(dbi);
    EXPECT_NEAR(gbu[2], bu[2] + 0.05 * (e - 0.01 * bu[2]), 1e-6);
    EXPECT_NEAR(gbi[1], bi[1] + 0.05 * (e - 0.01 * bi[1]), 1e-6);
    EXPECT_EQ(gbu[0], bu[0]);  // untouched rows stay as they were
    EXPECT_EQ(gbi[3], bi[3]);
  }
}

TEST_F(KernelTest, SgdShuffleIsAPermutation) {
  const std::int64_t n = 10000;
  std::vector<std::int32_t> u(n), i(n);
  std::vector<float> r(n);
  for (std::int64_t e = 0; e < n; ++e) {
    u[e] = static_cast<std::int32_t>(e);
    i[e] = static_cast<std::int32_t>(2 * e);
    r[e] = static_cast<float>(3 * e);
  }
  auto du = to_device(u), di = to_device(i);
  auto dr = to_device(r);
  shuffle_samples(*res_, du.data(), di.data(), dr.data(), n, 77);
  const auto hu = to_host(du), hi = to_host(di);
  const auto hr = to_host(dr);
  std::vector<char> seen(n, 0);
  std::int64_t moved = 0;
  for (std::int64_t e = 0; e < n; ++e) {
    ASSERT_EQ(hi[e], 2 * hu[e]);  // the triple travels together
    ASSERT_EQ(hr[e], 3.0f * hu[e]);
    ASSERT_FALSE(seen[hu[e]]);
    seen[hu[e]] = 1;
    moved += hu[e] != e;
  }
  EXPECT_GT(moved, n * 9 / 10);
}

TEST_F(KernelTest, CsrBuildMatchesCpuWithDuplicatesSummed) {
  Rng rng(99);
  const std::int32_t rows = 300, cols = 170;
  std::vector<CooEntry> coo;
  for (int e = 0; e < 5000; ++e)
    coo.push_back({static_cast<std::int32_t>(rng.next() % rows), static_cast<std::int32_t>(rng.next() % cols),
                   static_cast<float>(rng.uniform() + 0.5)});
  std::vector<std::int32_t> hr, hc;
  std::vector<float> hv;
  for (const auto& e : coo) {
    hr.push_back(e.row);
    hc.push_back(e.col);
    hv.push_back(e.value);
  }
  auto dr = to_device(hr), dc = to_device(hc);
  auto dv = to_device(hv);
  for (bool transpose : {false, true}) {
    const CsrMatrix by_row = build_csr(rows, cols, coo, DuplicatePolicy::kSum);
    const CsrMatrix ref = transpose ? by_row.transpose() : by_row;
    DeviceCsr got = transpose ? build_device_csr(*res_, cols, rows, dc.data(), dr.data(), dv.data(), 5000)
                              : build_device_csr(*res_, rows, cols, dr.data(), dc.data(), dv.data(), 5000);
    ASSERT_EQ(got.nnz, ref.nnz());
    EXPECT_EQ(to_host(got.indptr), ref.indptr);
    EXPECT_EQ(to_host(got.indices), ref.indices);
    const auto vals = to_host(got.values);
    for (std::size_t n = 0; n < vals.size(); ++n) ASSERT_NEAR(vals[n], ref.values[n], 1e-5);
  }
  // CSR -> COO rows
  const CsrMatrix m = build_csr(rows, cols, coo, DuplicatePolicy::kSum);
  auto ip = to_device(m.indptr);
  DeviceBuffer<std::int32_t> out(*res_, static_cast<std::size_t>(m.nnz()));
  expand_csr_rows(*res_, ip.data(), rows, out.data());
  const auto expanded = to_host(out);
  for (std::int32_t r = 0; r < rows; ++r)
    for (std::int64_t n = m.row_begin(r); n < m.row_end(r); ++n) ASSERT_EQ(expanded[n], r);
}

TEST_F(KernelTest, MemoryPlanRefusesWhatCannotFitWithBothNumbers) {
  std::size_t free_b = 0, total_b = 0;
  res_->memory_info(&free_b, &total_b);
  EXPECT_NO_THROW(res_->require_free(1 << 20, "small"));
  try {
    res_->require_free(total_b + (std::size_t{1} << 30), "cuda-als-cg");
    FAIL() << "expected a refusal";
  } catch (const CudaError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cuda-als-cg: needs "), std::string::npos) << msg;
    EXPECT_NE(msg.find(" GiB free"), std::string::npos) << msg;
  }
  EXPECT_EQ(res_->bytes_in_use(), 0u);  // refused before anything was allocated
}

// --- no device needed ------------------------------------------------------------------
TEST(CudaCheckTest, ErrorNamesTheCallAndTheLine) {
  try {
    CUDA_CHECK(cudaSetDevice(1 << 20));
    FAIL() << "cudaSetDevice(1 << 20) should fail";
  } catch (const CudaError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cudaSetDevice(1 << 20)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("kernels_test.cpp:"), std::string::npos) << msg;
  }
  cudaGetLastError();
}

TEST(CudaCheckTest, CublasErrorNamesTheStatus) {
  try {
    CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE);
    FAIL();
  } catch (const CudaError& e) {
    EXPECT_NE(std::string(e.what()).find("CUBLAS_STATUS_INVALID_VALUE"), std::string::npos);
  }
}

TEST(DeviceBufferTest, IsMoveOnly) {
  static_assert(!std::is_copy_constructible_v<DeviceBuffer<float>>);
  static_assert(!std::is_copy_assignable_v<DeviceBuffer<float>>);
  static_assert(std::is_nothrow_move_constructible_v<DeviceBuffer<float>>);
  static_assert(std::is_nothrow_move_assignable_v<DeviceBuffer<float>>);
  DeviceBuffer<float> empty;
  DeviceBuffer<float> moved(std::move(empty));
  EXPECT_EQ(moved.size(), 0u);
  EXPECT_EQ(moved.data(), nullptr);
}

TEST(DeviceProbeTest, ReportsAReasonEitherWay) {
  std::string why;
  const bool available = cuda_device_available(&why);
  EXPECT_FALSE(why.empty()) << "available=" << available;
}

std::vector<std::string>* g_events = nullptr;
void record_push(const char* name) { g_events->push_back(std::string("push ") + name); }
void record_pop() { g_events->push_back("pop"); }

TEST(TraceTest, RangesCallTheInstalledHooksInOrder) {
  std::vector<std::string> events;
  g_events = &events;
  static const TraceHooks hooks{&record_push, &record_pop};
  const TraceHooks* previous = trace_hooks();
  EXPECT_NE(previous, nullptr) << "the CUDA backend installs NVTX hooks at static-init time";
  set_trace_hooks(&hooks);
  {
    FRESHREC_TRACE_RANGE("outer");
    FRESHREC_TRACE_RANGE("inner");
  }
  set_trace_hooks(previous);
  EXPECT_EQ(events, (std::vector<std::string>{"push outer", "push inner", "pop", "pop"}));
}

}  // namespace
}  // namespace freshrec
