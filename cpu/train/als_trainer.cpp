#include "cpu/train/als_trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "cpu/train/config_check.hpp"
#include "cpu/train/gram.hpp"
#include "cpu/train/loss.hpp"
#include "cpu/train/parallel.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

/// Per-thread buffers of the CG solve, grown to the longest row seen and then reused.
struct CgScratch {
  FactorMatrix gathered;  ///< the row's item vectors, one per stored entry
  Eigen::VectorXf c_minus_1, v, r, p, Ap;
};

/// Conjugate gradient on one row, as implicit's _least_squares_cg. `A` is YtY + reg I;
/// the Yt(C_u - I)Y term is applied through G, the row's item vectors gathered once
/// into contiguous memory: the four passes over them (residual + 3 steps) become
/// sequential GEMVs instead of one scattered dot and axpy per entry and pass.
/// `x` holds the warm start on entry.
void solve_row_cg(const CsrMatrix& Cui, std::int32_t u, const FactorMatrix& Y, const Eigen::MatrixXf& A,
                  int cg_steps, Eigen::VectorXf& x, CgScratch& s) {
  const int k = static_cast<int>(x.size());
  const std::int64_t b = Cui.row_begin(u);
  const Eigen::Index n = static_cast<Eigen::Index>(Cui.row_end(u) - b);
  // The width is checked too: a thread whose first row is empty would otherwise keep
  // the 0x0 scratch and form a 0x0 * k product below.
  if (s.gathered.rows() < n || s.gathered.cols() != k) s.gathered.resize(std::max<Eigen::Index>(n, 1), k);
  const int row_bytes = k * static_cast<int>(sizeof(float));
  for (Eigen::Index j = 0; j < n; ++j) {
    // Rows of Y are scattered; fetching a few ahead overlaps their cache misses.
    if (j + 8 < n) {
      const char* ahead = reinterpret_cast<const char*>(Y.row(Cui.indices[b + j + 8]).data());
      for (int line = 0; line < row_bytes; line += 64) __builtin_prefetch(ahead + line);
    }
    s.gathered.row(j) = Y.row(Cui.indices[b + j]);
  }
  const auto G = s.gathered.topRows(n);
  const Eigen::Map<const Eigen::VectorXf> c(Cui.values.data() + b, n);
  s.c_minus_1.resize(n);
  s.c_minus_1.array() = c.array() - 1.0f;
  s.v.resize(n);

  // r = b - A x, with b = Gt c and A x = (YtY + reg I) x + Gt ((c - 1) .* G x)
  s.r.noalias() = -(A * x);
  s.v.noalias() = G * x;
  s.v.array() = c.array() - s.c_minus_1.array() * s.v.array();
  s.r.noalias() += G.transpose() * s.v;
  s.p = s.r;
  float rsold = s.r.squaredNorm();
  if (rsold < 1e-20f) return;
  for (int it = 0; it < cg_steps; ++it) {
    s.Ap.noalias() = A * s.p;
    s.v.noalias() = G * s.p;
    s.v.array() *= s.c_minus_1.array();
    s.Ap.noalias() += G.transpose() * s.v;
    const float alpha = rsold / s.p.dot(s.Ap);
    x += alpha * s.p;
    s.r -= alpha * s.Ap;
    const float rsnew = s.r.squaredNorm();
    if (rsnew < 1e-20f) break;
    s.p = s.r + (rsnew / rsold) * s.p;
    rsold = rsnew;
  }
}

/// Exact solve: forms A = YtY + reg I + sum (c - 1) y y^T and b = sum c y, then LLT.
/// The rank updates go through a gathered block of scaled rows so Eigen can use its
/// SYRK kernel instead of one outer product per entry. Returns false if A is not SPD.
bool solve_row_cholesky(const CsrMatrix& Cui, std::int32_t u, const FactorMatrix& Y, const Eigen::MatrixXf& A0,
                        Eigen::MatrixXf& A, Eigen::VectorXf& rhs, Eigen::MatrixXf& gathered,
                        Eigen::LLT<Eigen::MatrixXf>& llt, Eigen::VectorXf& x) {
  const int k = static_cast<int>(x.size());
  const std::int64_t b = Cui.row_begin(u), e = Cui.row_end(u);
  const Eigen::Index block = gathered.cols();
  A = A0;
  rhs.setZero();
  for (std::int64_t start = b; start < e; start += block) {
    const Eigen::Index m = static_cast<Eigen::Index>(std::min<std::int64_t>(block, e - start));
    for (Eigen::Index j = 0; j < m; ++j) {
      const float* y = Y.row(Cui.indices[start + j]).data();
      const float c = Cui.values[start + j];
      axpy_n(c, y, rhs.data(), k);
      const float s = std::sqrt(std::max(c - 1.0f, 0.0f));
      float* g = gathered.col(j).data();
      for (int t = 0; t < k; ++t) g[t] = s * y[t];
    }
    A.selfadjointView<Eigen::Lower>().rankUpdate(gathered.leftCols(m));
  }
  llt.compute(A);  // reads the lower triangle only
  if (llt.info() != Eigen::Success) return false;
  x = llt.solve(rhs);
  return true;
}

}  // namespace

std::int64_t als_solve_rows(const CsrMatrix& Cui, const FactorMatrix& Y, FactorMatrix& X, float regularization,
                            AlsSolver solver, int cg_steps, int threads) {
  const int k = static_cast<int>(X.cols());
  FRESHREC_ASSERT(Cui.rows == X.rows() && Cui.cols == Y.rows() && Y.cols() == k);
  Eigen::MatrixXf A0 = gram_matrix(Y, threads);
  A0.diagonal().array() += regularization;
  std::int64_t rejected = 0;
#pragma omp parallel num_threads(threads) reduction(+ : rejected)
  {
    Eigen::VectorXf x(k), rhs(k);
    CgScratch cg;
    Eigen::MatrixXf A, gathered;
    Eigen::LLT<Eigen::MatrixXf> llt(k);
    if (solver == AlsSolver::kCholesky) {
      A.resize(k, k);
      gathered.resize(k, 256);
    }
#pragma omp for schedule(dynamic, 32)
    for (std::int32_t u = 0; u < Cui.rows; ++u) {
      x = X.row(u).transpose();
      bool ok = true;
      if (solver == AlsSolver::kCholesky)
        ok = solve_row_cholesky(Cui, u, Y, A0, A, rhs, gathered, llt, x);
      else
        solve_row_cg(Cui, u, Y, A0, cg_steps, x, cg);
      // A singular or overflowing solve keeps the previous row: never write NaN/Inf.
      if (ok && x.allFinite())
        X.row(u) = x.transpose();
      else
        ++rejected;
    }
  }
  return rejected;
}

AlsTrainer::AlsTrainer(const TrainConfig& config) : config_(config) {
  config_.algorithm = Algorithm::kAls;
  validate_train_config(config_);
}

std::string AlsTrainer::name() const {
  return config_.solver == AlsSolver::kCholesky ? "cpu-als-cholesky" : "cpu-als-cg";
}

void AlsTrainer::fit(const TrainingSet& data, FactorModel& model, const IterationCallback& on_iteration) {
  if (model.n_users() != data.n_users() || model.n_items() != data.n_items() || model.factors() != config_.factors ||
      model.user_factors.cols() != config_.factors)
    throw InputError(name() + ": model is " + std::to_string(model.n_users()) + " users x " +
                     std::to_string(model.n_items()) + " items x " + std::to_string(model.factors()) +
                     " factors but the training set is " + std::to_string(data.n_users()) + " x " +
                     std::to_string(data.n_items()) + " and train.factors is " + std::to_string(config_.factors) +
                     " (call initialize_factors first)");
  if (data.item_users.rows != data.n_items() || data.item_users.nnz() != data.user_items.nnz())
    throw InputError(name() + ": training set's item_users is not the transpose of user_items");
  for (float c : data.user_items.values)
    if (!(std::isfinite(c) && c > 0.0f))
      throw InputError(name() + ": confidences must be finite and > 0, found " + std::to_string(c));

  const int threads = resolve_threads(config_.threads);
  rejected_rows_ = 0;
  for (int it = 1; it <= config_.iterations; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    rejected_rows_ += als_solve_rows(data.user_items, model.item_factors, model.user_factors, config_.regularization,
                                     config_.solver, config_.cg_steps, threads);
    rejected_rows_ += als_solve_rows(data.item_users, model.user_factors, model.item_factors, config_.regularization,
                                     config_.solver, config_.cg_steps, threads);
    IterationReport report;
    report.iteration = it;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report.loss = config_.compute_loss ? implicit_als_loss(data.user_items, model.user_factors, model.item_factors,
                                                           config_.regularization, threads)
                                       : NAN;
    if (on_iteration) on_iteration(report);
  }
}

}  // namespace freshrec
