#pragma once
// Small deterministic problems shared by the CUDA tests: a planted low-rank taste model
// sampled into implicit confidences or explicit ratings, a held-out item per user, and a
// tiny NDCG@K helper (so these tests do not depend on the eval module's split API).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <vector>

#include "cpu/data/csr.hpp"
#include "cpu/model/factor_model.hpp"
#include "cpu/train/random.hpp"
#include "cpu/train/training_set.hpp"

namespace freshrec::testing {

struct Problem {
  TrainingSet train;
  std::vector<std::int32_t> held_out;  ///< per user, one item not in train
};

/// n_users x n_items, every user with `per_user` training items drawn from a rank-4
/// taste model (plus one held out); every item is seen at least once.
inline Problem make_problem(std::int32_t n_users, std::int32_t n_items, int per_user, bool explicit_ratings,
                            std::uint64_t seed) {
  Rng rng(seed);
  constexpr int r = 4;
  std::vector<double> U(static_cast<std::size_t>(n_users) * r), V(static_cast<std::size_t>(n_items) * r);
  for (double& v : U) v = rng.normal();
  for (double& v : V) v = rng.normal();
  std::vector<CooEntry> coo;
  Problem p;
  p.held_out.resize(static_cast<std::size_t>(n_users));
  std::vector<std::pair<double, std::int32_t>> scored(static_cast<std::size_t>(n_items));
  for (std::int32_t u = 0; u < n_users; ++u) {
    for (std::int32_t i = 0; i < n_items; ++i) {
      double s = 0.0;
      for (int f = 0; f < r; ++f) s += U[u * r + f] * V[i * r + f];
      scored[i] = {s + 0.7 * rng.normal(), i};  // noisy taste: the order is learnable, not trivial
    }
    std::partial_sort(scored.begin(), scored.begin() + per_user + 1, scored.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    p.held_out[u] = scored[static_cast<std::size_t>(rng.uniform() * (per_user + 1))].second;
    for (int j = 0; j <= per_user; ++j) {
      const std::int32_t i = scored[j].second;
      if (i == p.held_out[u]) continue;
      const float value = explicit_ratings ? static_cast<float>(std::clamp(3.0 + scored[j].first, 1.0, 5.0))
                                           : 1.0f + 2.0f * static_cast<float>(1 + (rng.next() % 3));
      coo.push_back({u, i, value});
    }
  }
  // Every item at least once (a solver sees no empty row, as on real data after filtering).
  std::vector<char> seen(static_cast<std::size_t>(n_items), 0);
  for (const CooEntry& e : coo) seen[e.col] = 1;
  for (std::int32_t i = 0; i < n_items; ++i)
    if (!seen[i]) coo.push_back({static_cast<std::int32_t>(i % n_users), i, explicit_ratings ? 3.0f : 1.0f});
  p.train.user_items = build_csr(n_users, n_items, coo, DuplicatePolicy::kLast);
  p.train.item_users = p.train.user_items.transpose();
  double sum = 0.0;
  for (float v : p.train.user_items.values) sum += v;
  p.train.rating_mean = explicit_ratings ? sum / static_cast<double>(p.train.user_items.nnz()) : 0.0;
  return p;
}

/// A model sized for `data`, N(0, scale^2) factors from `seed`, zero biases.
inline FactorModel make_model(const TrainingSet& data, int k, bool explicit_model, std::uint64_t seed,
                              float scale = 0.1f) {
  FactorModel m;
  m.kind = explicit_model ? ModelKind::kExplicit : ModelKind::kImplicit;
  Rng rng(seed);
  m.user_factors.resize(data.n_users(), k);
  m.item_factors.resize(data.n_items(), k);
  for (Eigen::Index i = 0; i < m.user_factors.size(); ++i) m.user_factors.data()[i] = scale * rng.normal();
  for (Eigen::Index i = 0; i < m.item_factors.size(); ++i) m.item_factors.data()[i] = scale * rng.normal();
  m.user_bias = Eigen::VectorXf::Zero(data.n_users());
  m.item_bias = Eigen::VectorXf::Zero(data.n_items());
  m.global_bias = explicit_model ? static_cast<float>(data.rating_mean) : 0.0f;
  return m;
}

/// Leave-one-out NDCG@k: rank of the held-out item among the items the user did not
/// train on (gain 1 / log2(rank + 1) when within the top k).
inline double ndcg_at_k(const FactorModel& m, const Problem& p, int k) {
  const CsrMatrix& R = p.train.user_items;
  double total = 0.0;
  for (std::int32_t u = 0; u < R.rows; ++u) {
    const std::int32_t target = p.held_out[u];
    const float ts = m.score(u, target);
    const std::set<std::int32_t> seen(R.indices.begin() + R.row_begin(u), R.indices.begin() + R.row_end(u));
    int better = 0;
    for (std::int32_t i = 0; i < R.cols; ++i)
      if (i != target && !seen.count(i) && m.score(u, i) > ts) ++better;
    if (better < k) total += 1.0 / std::log2(better + 2.0);
  }
  return total / R.rows;
}

/// NDCG@k of ranking items by popularity (training count): the floor a model must beat.
inline double popularity_ndcg_at_k(const Problem& p, int k) {
  FactorModel m;
  m.kind = ModelKind::kExplicit;
  m.user_factors = FactorMatrix::Zero(p.train.n_users(), 1);
  m.item_factors = FactorMatrix::Zero(p.train.n_items(), 1);
  m.user_bias = Eigen::VectorXf::Zero(p.train.n_users());
  m.item_bias = Eigen::VectorXf::Zero(p.train.n_items());
  for (std::int32_t i = 0; i < p.train.n_items(); ++i)
    m.item_bias[i] = static_cast<float>(p.train.item_users.row_size(i));
  return ndcg_at_k(m, p, k);
}

}  // namespace freshrec::testing
