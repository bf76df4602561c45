#pragma once
#include <cstdint>
#include <vector>

#include "cpu/data/csr.hpp"
#include "cpu/model/factor_model.hpp"

namespace freshrec {

/// Scores the whole catalogue for a user, so a model and its baselines go through one
/// evaluation path. Implementations are read-only after construction and safe to call
/// from several threads at once.
class RankingScorer {
 public:
  virtual ~RankingScorer() = default;
  /// Catalogue size: the length of one user's score row.
  virtual std::int32_t n_items() const = 0;
  /// Writes the score of every item for user row `user` to scores[0 .. n_items()), higher
  /// is better. `scores` is caller-owned host memory.
  virtual void score_user(std::int32_t user, float* scores) const = 0;
  /// Scores `count` users at once into row-major `scores` (count x n_items(), caller-owned
  /// host memory). The default calls score_user per row; a scorer whose batch is cheaper
  /// (one matrix product for the factor model) overrides it.
  virtual void score_users(const std::int32_t* users, int count, float* scores) const;
};

/// Scores of a trained FactorModel: FactorModel::score for every item (p_u . q_i, plus
/// global + b_u + b_i for explicit models), equal up to float rounding order. Keeps a reference: `model`
/// must outlive the scorer. Throws InputError in score_user(s) for a user row the model
/// does not have.
class FactorScorer final : public RankingScorer {
 public:
  explicit FactorScorer(const FactorModel& model) : model_(model) {}
  std::int32_t n_items() const override { return model_.n_items(); }
  void score_user(std::int32_t user, float* scores) const override;
  /// One GEMM (users' factors x item factors^T) per call instead of a GEMV per user.
  void score_users(const std::int32_t* users, int count, float* scores) const override;

 private:
  void check_user(std::int32_t user) const;
  const FactorModel& model_;
};

/// Popularity baseline: the score of an item is the number of distinct users who have
/// it in training, the same for every user.
class PopularityScorer final : public RankingScorer {
 public:
  /// `train_user_items`: n_users x n_items training pairs (any stored entry counts once).
  explicit PopularityScorer(const CsrMatrix& train_user_items);
  std::int32_t n_items() const override { return static_cast<std::int32_t>(popularity_.size()); }
  void score_user(std::int32_t user, float* scores) const override;
  /// Distinct training users per item.
  const std::vector<std::int64_t>& counts() const noexcept { return counts_; }

 private:
  std::vector<std::int64_t> counts_;
  std::vector<float> popularity_;  // counts_ as scores (exact up to 2^24 users an item)
};

}  // namespace freshrec
