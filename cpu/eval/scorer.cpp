#include "cpu/eval/scorer.hpp"

#include <algorithm>
#include <string>

#include "cpu/util/error.hpp"

namespace freshrec {

void RankingScorer::score_users(const std::int32_t* users, int count, float* scores) const {
  const auto n = static_cast<std::size_t>(n_items());
  for (int r = 0; r < count; ++r) score_user(users[r], scores + static_cast<std::size_t>(r) * n);
}

void FactorScorer::check_user(std::int32_t user) const {
  if (user < 0 || user >= model_.n_users())
    throw InputError("FactorScorer: user row " + std::to_string(user) + " is outside the model's " +
                     std::to_string(model_.n_users()) + " users");
}

void FactorScorer::score_user(std::int32_t user, float* scores) const {
  score_users(&user, 1, scores);
}

void FactorScorer::score_users(const std::int32_t* users, int count, float* scores) const {
  const int k = model_.factors();
  FactorMatrix block(count, k);
  for (int r = 0; r < count; ++r) {
    check_user(users[r]);
    block.row(r) = model_.user_factors.row(users[r]);
  }
  Eigen::Map<FactorMatrix> out(scores, count, model_.n_items());
  out.noalias() = block * model_.item_factors.transpose();
  if (model_.kind != ModelKind::kExplicit) return;
  for (int r = 0; r < count; ++r) {
    out.row(r).array() += model_.item_bias.transpose().array() + (model_.global_bias + model_.user_bias[users[r]]);
  }
}

PopularityScorer::PopularityScorer(const CsrMatrix& train_user_items)
    : counts_(static_cast<std::size_t>(train_user_items.cols), 0) {
  // Rows hold unique columns, so counting stored entries counts distinct users.
  for (std::int32_t c : train_user_items.indices) ++counts_[c];
  popularity_.assign(counts_.begin(), counts_.end());
}

void PopularityScorer::score_user(std::int32_t, float* scores) const {
  std::copy(popularity_.begin(), popularity_.end(), scores);
}

}  // namespace freshrec
