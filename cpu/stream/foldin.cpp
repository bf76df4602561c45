// Exact fold-in of a user absent from the baseline (implicit's recalculate_user).
#include <algorithm>
#include <cmath>

#include <Eigen/Cholesky>

#include "cpu/stream/engine_core.hpp"

namespace freshrec::stream {

// Implicit: solve (YᵀY + Yᵀ(C−I)Y + λI) x = YᵀC p over the user's last max_events events,
// c_i = 1 + alpha * (sum of the event weights on item i), p_i = 1 for touched items.
// YᵀY is the baseline items' Gram, computed once per baseline. The touched items enter
// with their *current* vectors: their baseline outer product is swapped for the current one
// (A += c y yᵀ − y_b y_bᵀ; new items, absent from the Gram, add c y yᵀ). Untouched items
// that moved by SGD keep their baseline outer product: item rates are small and every
// swap recomputes the Gram, so the approximation is bounded and deterministic.
// Explicit baselines: ridge regression on the ratings, (Σ y yᵀ + λI) x = Σ y (r − μ − b_i),
// the latest rating per item counting.
void Core::fold_in(std::int32_t slot) {
  UserState& u = users_[slot];
  if (u.history.empty()) return;
  const int k = k_;
  // Aggregate per item in history order (sorted by key for a fixed summation order).
  std::vector<std::pair<std::uint32_t, float>> agg(u.history.begin(), u.history.end());
  if (u.history.size() == static_cast<std::size_t>(cfg_.foldin.max_events)) {
    // Ring is full: reorder oldest-first so "latest rating wins" is well defined.
    std::rotate(agg.begin(), agg.begin() + u.history_head, agg.end());
  }
  std::stable_sort(agg.begin(), agg.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::uint32_t, float>> merged;
  merged.reserve(agg.size());
  for (const auto& [item, v] : agg) {
    if (!merged.empty() && merged.back().first == item) {
      if (explicit_) merged.back().second = v;  // latest rating wins
      else merged.back().second += v;
    } else {
      merged.emplace_back(item, v);
    }
  }

  Eigen::MatrixXd a(k, k);
  Eigen::VectorXd b = Eigen::VectorXd::Zero(k);
  const double lambda = cfg_.foldin.regularization;
  if (explicit_) {
    a.setZero();
  } else {
    a = info_->gram;
  }
  a.diagonal().array() += lambda;
  for (const auto& [item, v] : merged) {
    const Eigen::VectorXd y = items_.row(item).transpose().cast<double>();
    if (explicit_) {
      const double target = static_cast<double>(v) - base_->global_bias - item_bias_[item];
      a.selfadjointView<Eigen::Lower>().rankUpdate(y, 1.0);
      b += target * y;
    } else {
      const double c = 1.0 + static_cast<double>(cfg_.foldin.alpha) * v;
      a.selfadjointView<Eigen::Lower>().rankUpdate(y, c);
      const std::int32_t br = item_base_row_[item];
      if (br >= 0) {
        const Eigen::VectorXd yb = base_->item_factors.row(br).transpose().cast<double>();
        a.selfadjointView<Eigen::Lower>().rankUpdate(yb, -1.0);
      }
      b += c * y;
    }
  }
  // rankUpdate wrote the lower triangle only; mirror it.
  a.triangularView<Eigen::StrictlyUpper>() = a.transpose();
  Eigen::LLT<Eigen::MatrixXd> llt(a);
  Eigen::VectorXd x;
  if (llt.info() == Eigen::Success) {
    x = llt.solve(b);
  } else {
    x = a.ldlt().solve(b);  // not positive definite by rounding (moved items): still solvable
  }
  if (!x.allFinite()) {
    ++counters_.non_finite_skipped;
    return;
  }
  touch_user(slot);
  float* dlt = &user_delta_[static_cast<std::size_t>(slot) * k];
  for (int d = 0; d < k; ++d) dlt[d] = static_cast<float>(x[d]);
  ++counters_.foldins;
}

}  // namespace freshrec::stream
