#include "cpu/train/loss.hpp"

#include <cmath>
#include <vector>

#include <Eigen/Core>

#include "cpu/train/gram.hpp"
#include "cpu/train/parallel.hpp"

namespace freshrec {

double implicit_als_loss(const CsrMatrix& Cui, const FactorMatrix& X, const FactorMatrix& Y, float regularization,
                         int threads) {
  const int k = static_cast<int>(X.cols());
  const Eigen::MatrixXf YtY = gram_matrix(Y, threads);
  const std::int32_t users = Cui.rows;
  // Per-row partial sums, added up serially: an OpenMP reduction's order would vary
  // with the thread count and so would the last bits of the loss.
  std::vector<double> row_loss(users), row_conf(users), row_norm(users);
#pragma omp parallel num_threads(threads)
  {
    Eigen::VectorXf r(k);
#pragma omp for schedule(dynamic, 64)
    for (std::int32_t u = 0; u < users; ++u) {
      const float* xu = X.row(u).data();
      // (A x_u - 2 b) . x_u without forming A = YtY + Yt(C_u - I)Y, b = Yt C_u p_u.
      r.noalias() = YtY * Eigen::Map<const Eigen::VectorXf>(xu, k);
      double loss = 0.0, conf_sum = 0.0;
      for (std::int64_t n = Cui.row_begin(u); n < Cui.row_end(u); ++n) {
        const float* yi = Y.row(Cui.indices[n]).data();
        float c = Cui.values[n];
        float temp;
        if (c > 0) {
          temp = -2.0f * c;
        } else {  // implicit's convention for negative feedback: preference 0, confidence |c|
          temp = 0.0f;
          c = -c;
        }
        temp += (c - 1.0f) * dot_n(yi, xu, k);
        axpy_n(temp, yi, r.data(), k);
        conf_sum += c;
        loss += c;
      }
      loss += dot_n(r.data(), xu, k);
      row_loss[u] = loss;
      row_conf[u] = conf_sum;
      row_norm[u] = dot_n(xu, xu, k);
    }
  }
  double loss = 0.0, total_confidence = 0.0, user_norm = 0.0, item_norm = 0.0;
  for (std::int32_t u = 0; u < users; ++u) {
    loss += row_loss[u];
    total_confidence += row_conf[u];
    user_norm += row_norm[u];
  }
  for (Eigen::Index i = 0; i < Y.rows(); ++i) item_norm += static_cast<double>(Y.row(i).squaredNorm());
  loss += regularization * (item_norm + user_norm);
  const double denom =
      total_confidence + static_cast<double>(Cui.rows) * static_cast<double>(Cui.cols) - static_cast<double>(Cui.nnz());
  return denom > 0.0 ? loss / denom : NAN;
}

double rating_rmse(const CsrMatrix& R, const FactorModel& model, int threads) {
  if (R.nnz() == 0) return NAN;
  std::vector<double> row_sse(R.rows);
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
  for (std::int32_t u = 0; u < R.rows; ++u) {
    double sse = 0.0;
    for (std::int64_t n = R.row_begin(u); n < R.row_end(u); ++n) {
      const double e = static_cast<double>(R.values[n]) - model.score(u, R.indices[n]);
      sse += e * e;
    }
    row_sse[u] = sse;
  }
  double sse = 0.0;
  for (double s : row_sse) sse += s;
  return std::sqrt(sse / static_cast<double>(R.nnz()));
}

}  // namespace freshrec
