#include "cpu/train/gram.hpp"

#include <omp.h>

#include <vector>

namespace freshrec {

Eigen::MatrixXf gram_matrix(const FactorMatrix& Y, int threads) {
  const Eigen::Index n = Y.rows(), k = Y.cols();
  constexpr int kChunks = 16;
  std::vector<Eigen::MatrixXf> part(kChunks, Eigen::MatrixXf::Zero(k, k));
  // Each chunk must be one serial product so the thread count cannot change the
  // arithmetic. Eigen's GEMM stays serial by itself only inside a region of more than one
  // thread; with threads = 1 it would fork and block the depth differently, so this
  // thread's nested regions are limited to one thread (a per-task setting).
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);
#pragma omp for schedule(static, 1)
    for (int c = 0; c < kChunks; ++c) {
      const Eigen::Index b = n * c / kChunks, e = n * (c + 1) / kChunks;
      if (e > b) part[c].noalias() = Y.middleRows(b, e - b).transpose() * Y.middleRows(b, e - b);
    }
  }
  Eigen::MatrixXf g = Eigen::MatrixXf::Zero(k, k);
  for (const auto& p : part) g += p;
  return g;
}

}  // namespace freshrec
