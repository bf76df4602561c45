#include "cpu/train/gram.hpp"

#include <vector>

namespace freshrec {

Eigen::MatrixXf gram_matrix(const FactorMatrix& Y, int threads) {
  const Eigen::Index n = Y.rows(), k = Y.cols();
  constexpr int kChunks = 16;
  std::vector<Eigen::MatrixXf> part(kChunks, Eigen::MatrixXf::Zero(k, k));
  // Inside the parallel region Eigen's own GEMM threading stays off, so each chunk is
  // one serial product and the thread count cannot change the arithmetic.
#pragma omp parallel for schedule(static, 1) num_threads(threads)
  for (int c = 0; c < kChunks; ++c) {
    const Eigen::Index b = n * c / kChunks, e = n * (c + 1) / kChunks;
    if (e > b) part[c].noalias() = Y.middleRows(b, e - b).transpose() * Y.middleRows(b, e - b);
  }
  Eigen::MatrixXf g = Eigen::MatrixXf::Zero(k, k);
  for (const auto& p : part) g += p;
  return g;
}

}  // namespace freshrec
