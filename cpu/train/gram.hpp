#pragma once
#include <Eigen/Core>

#include "cpu/model/factor_model.hpp"

namespace freshrec {

/// Y^T Y (k x k, host memory) using `threads` threads. Summed over a fixed number of
/// row chunks in a fixed order, so the result is bit-identical for any thread count.
Eigen::MatrixXf gram_matrix(const FactorMatrix& Y, int threads);

}  // namespace freshrec
