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
  // Scratch buffers live in the Core: a fold-in runs on up to max_events events of every
  // new user and must not allocate.
  auto& agg = fold_agg_;
  agg.assign(u.history.begin(), u.history.end());
  if (u.history.size() == static_cast<std::size_t>(cfg_.foldin.max_events)) {
    // Ring is full: reorder oldest-first so "latest rating wins" is well defined.
    std::rotate(agg.begin(), agg.begin() + u.history_head, agg.end());
  }
  std::stable_sort(agg.begin(), agg.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  auto& merged = fold_merged_;
  merged.clear();
  for (const auto& [item, v] : agg) {
    if (!merged.empty() && merged.back().first == item) {
      if (explicit_) merged.back().second = v;  // latest rating wins
      else merged.back().second += v;
    } else {
      merged.emplace_back(item, v);
    }
  }

  Eigen::MatrixXd& a = fold_a_;
  Eigen::VectorXd& b = fold_b_;
  if (a.rows() != k) {
    a.resize(k, k);
    b.resize(k);
    fold_y_.resize(k);
    fold_yb_.resize(k);
  }
  double* y = fold_y_.data();
  double* yb = fold_yb_.data();
  const double lambda = cfg_.foldin.regularization;
  // Lower triangle of A (column-major: column j holds rows j..k-1 contiguously), both outer
  // products of an item in one pass over the triangle: a_ij += (c y_j) y_i - yb_j yb_i.
  auto build = [&] {
    if (explicit_) a.setZero();
    else a = info_->gram;
    a.diagonal().array() += lambda;
    b.setZero();
    for (const auto& [item, v] : merged) {
      const float* row = items_.row(item).data();
      for (int d = 0; d < k; ++d) y[d] = static_cast<double>(row[d]);
      double c = 1.0, target = 0.0;
      const float* base_row = nullptr;
      if (explicit_) {
        target = static_cast<double>(v) - base_->global_bias - item_bias_[item];
      } else {
        c = 1.0 + static_cast<double>(cfg_.foldin.alpha) * v;
        const std::int32_t br = item_base_row_[item];
        if (br >= 0) base_row = base_->item_factors.row(br).data();
      }
      if (base_row) {
        for (int d = 0; d < k; ++d) yb[d] = static_cast<double>(base_row[d]);
        for (int j = 0; j < k; ++j) {
          const double cy = c * y[j], byj = yb[j];
          double* col = &a(0, j);
          for (int i = j; i < k; ++i) col[i] = (col[i] + cy * y[i]) - byj * yb[i];
        }
      } else {
        for (int j = 0; j < k; ++j) {
          const double cy = c * y[j];
          double* col = &a(0, j);
          for (int i = j; i < k; ++i) col[i] += cy * y[i];
        }
      }
      const double scale = explicit_ ? target : c;
      for (int d = 0; d < k; ++d) b[d] += scale * y[d];
    }
    // The loops above wrote the lower triangle only; mirror it.
    a.triangularView<Eigen::StrictlyUpper>() = a.transpose();
  };
  build();
  Eigen::VectorXd& x = fold_x_;
  x = b;
  bool ok;
  {
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(a);  // factorises in place: no allocation
    ok = llt.info() == Eigen::Success;
    if (ok) llt.solveInPlace(x);
  }
  if (!ok) {
    build();  // the in-place attempt overwrote A
    x = a.ldlt().solve(b);  // not positive definite by rounding (moved items): still solvable
  }
  // Finite in double is not enough: a value beyond FLT_MAX becomes Inf as a float.
  float* xf = scratch_nd_.data();
  bool finite = true;
  for (int d = 0; d < k; ++d) {
    xf[d] = static_cast<float>(x[d]);
    finite = finite && std::isfinite(xf[d]);
  }
  if (!finite) {
    ++counters_.non_finite_skipped;
    return;
  }
  touch_user(slot);
  float* dlt = &user_delta_[static_cast<std::size_t>(slot) * k];
  std::copy_n(xf, k, dlt);
  ++counters_.foldins;
}

}  // namespace freshrec::stream
