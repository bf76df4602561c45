#pragma once
#include <cstdint>
#include <map>
#include <string>

#include <Eigen/Core>

#include "cpu/data/id_map.hpp"

namespace freshrec {

/// Row-major float matrix: row r is the factor vector of user/item r.
using FactorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// What the factors were trained for; decides how scores are read.
enum class ModelKind : std::uint8_t {
  kImplicit = 0,  ///< implicit-feedback ALS: score = p_u . q_i (+ item bias, zero here)
  kExplicit = 1,  ///< biased MF on ratings: score = global + b_u + b_i + p_u . q_i
};

/// The long-term model: factors, biases and the id maps that give rows meaning.
/// Everything lives in host memory.
struct FactorModel {
  ModelKind kind = ModelKind::kImplicit;
  FactorMatrix user_factors;  ///< n_users x k
  FactorMatrix item_factors;  ///< n_items x k
  Eigen::VectorXf user_bias;  ///< n_users (zeros for implicit models)
  Eigen::VectorXf item_bias;  ///< n_items (zeros for implicit models)
  float global_bias = 0.0f;
  IdMap user_ids;             ///< row r of user_factors is user_ids.id(r)
  IdMap item_ids;             ///< row r of item_factors is item_ids.id(r)
  double data_cutoff = 0.0;   ///< latest event time (epoch s) the model was trained on
  /// Hyperparameters and provenance, written into the snapshot manifest as strings.
  std::map<std::string, std::string> hyperparameters;

  int factors() const noexcept { return static_cast<int>(item_factors.cols()); }
  std::int32_t n_users() const noexcept { return static_cast<std::int32_t>(user_factors.rows()); }
  std::int32_t n_items() const noexcept { return static_cast<std::int32_t>(item_factors.rows()); }

  /// Predicted score of (user row u, item row i).
  float score(std::int32_t u, std::int32_t i) const {
    float s = user_factors.row(u).dot(item_factors.row(i));
    if (kind == ModelKind::kExplicit) s += global_bias + user_bias[u] + item_bias[i];
    return s;
  }
};

}  // namespace freshrec
