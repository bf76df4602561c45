#include "cpu/stream/bandit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "cpu/stream/rng.hpp"
#include "cpu/util/error.hpp"

namespace freshrec::stream {
namespace {

inline std::size_t tri(int k) { return static_cast<std::size_t>(k) * (static_cast<std::size_t>(k) + 1) / 2; }
// Packed lower triangle, column-major: column c holds rows c..k-1 contiguously from
// col(c, k) = sum_{j<c} (k - j), so the rank-1 update and the solves run down contiguous
// memory (and vectorise). The diagonal entry of column c is its first.
inline std::size_t col(int c, int k) {
  const auto cc = static_cast<std::size_t>(c), kk = static_cast<std::size_t>(k);
  return cc * kk - (cc * (cc - (cc > 0 ? 1 : 0))) / 2;
}

std::uint64_t mix_key(std::uint64_t seed, std::uint64_t user, std::uint64_t request, std::uint64_t index) noexcept {
  std::uint64_t x = seed;
  std::uint64_t h = splitmix64(x);
  x = h ^ user;
  h = splitmix64(x);
  x = h ^ request;
  h = splitmix64(x);
  x = h ^ index;
  return splitmix64(x);
}

}  // namespace

UserPosterior::UserPosterior(const float* prior_mean, int k, double prior_precision)
    : k_(k), chol_(tri(k), 0.0), b_(static_cast<std::size_t>(k)) {
  FRESHREC_ASSERT(k > 0 && prior_precision > 0.0);
  const double d = std::sqrt(prior_precision);
  for (int i = 0; i < k; ++i) {
    chol_[col(i, k)] = d;
    b_[static_cast<std::size_t>(i)] = prior_precision * static_cast<double>(prior_mean[i]);
  }
}

bool UserPosterior::update(const float* x, double y, double w, double noise_variance) {
  if (!(std::isfinite(y) && std::isfinite(w) && w > 0.0 && noise_variance > 0.0)) return false;
  const double s = std::sqrt(w / noise_variance);
  // Scratch on the stack for the usual sizes; the rank-1 update consumes its vector.
  double small[128];
  std::vector<double> big;
  double* v = small;
  if (k_ > 128) {
    big.resize(static_cast<std::size_t>(k_));
    v = big.data();
  }
  for (int i = 0; i < k_; ++i) {
    v[i] = s * static_cast<double>(x[i]);
    if (!std::isfinite(v[i])) return false;
  }
  // Rank-1 Cholesky update of A = L L^T to A + v v^T (Golub & Van Loan); L stays positive
  // on its diagonal because the update only adds.
  for (int c = 0; c < k_; ++c) {
    double* lc = &chol_[col(c, k_)];  // lc[i - c] = L(i, c)
    const double lcc = lc[0];
    // sqrt of the sum rather than std::hypot: hypot's overflow care costs ~20x here, and
    // both terms are bounded (finite input, positive diagonal).
    const double r = std::sqrt(lcc * lcc + v[c] * v[c]);
    const double cs = r / lcc, sn = v[c] / lcc, inv_cs = lcc / r;
    lc[0] = r;
    for (int i = c + 1; i < k_; ++i) {
      double& lic = lc[i - c];
      lic = (lic + sn * v[i]) * inv_cs;
      v[i] = cs * v[i] - sn * lic;
    }
  }
  const double wy = w / noise_variance * y;
  for (int i = 0; i < k_; ++i) b_[static_cast<std::size_t>(i)] += wy * static_cast<double>(x[i]);
  ++observations_;
  return true;
}

std::size_t UserPosterior::update_many(const float* const* xs, const double* ys, std::size_t m, double w,
                                      double noise_variance) {
  if (!(std::isfinite(w) && w > 0.0 && noise_variance > 0.0)) return 0;
  std::size_t taken = 0;
  if (m < kRefactorAt) {
    for (std::size_t j = 0; j < m; ++j) taken += update(xs[j], ys[j], w, noise_variance);
    return taken;
  }
  const int k = k_;
  const auto kk = static_cast<std::size_t>(k);
  const double s2 = w / noise_variance;
  // Dense column-major lower triangle: a[c * k + i] = A(i, c), i >= c.
  thread_local std::vector<double> a, packed;
  a.assign(kk * kk, 0.0);
  for (int c = 0; c < k; ++c) {  // A = L L^T
    const double* lc = &chol_[col(c, k)];
    for (int j = c; j < k; ++j) {
      const double ljc = lc[j - c];
      double* aj = &a[static_cast<std::size_t>(j) * kk];
      for (int i = j; i < k; ++i) aj[i] += lc[i - c] * ljc;
    }
  }
  thread_local std::vector<std::size_t> ok;
  ok.clear();
  for (std::size_t n = 0; n < m; ++n) {
    const float* x = xs[n];
    bool finite = std::isfinite(ys[n]);
    for (int i = 0; i < k && finite; ++i) finite = std::isfinite(s2 * static_cast<double>(x[i]) * static_cast<double>(x[i]));
    if (!finite) continue;
    ok.push_back(n);
    for (int j = 0; j < k; ++j) {
      const double xj = s2 * static_cast<double>(x[j]);
      double* aj = &a[static_cast<std::size_t>(j) * kk];
      for (int i = j; i < k; ++i) aj[i] += static_cast<double>(x[i]) * xj;
    }
  }
  if (ok.empty()) return 0;
  // Right-looking Cholesky into a packed copy: the posterior changes only if it succeeds.
  packed.assign(chol_.size(), 0.0);
  for (int j = 0; j < k; ++j) {
    double* aj = &a[static_cast<std::size_t>(j) * kk];
    if (!(aj[j] > 0.0) || !std::isfinite(aj[j])) {
      // Cannot happen for a positive-definite A plus outer products; never keep a broken
      // factor if rounding says otherwise: take them one by one instead.
      for (std::size_t n : ok) taken += update(xs[n], ys[n], w, noise_variance);
      return taken;
    }
    const double d = std::sqrt(aj[j]);
    double* lj = &packed[col(j, k)];
    const double inv = 1.0 / d;
    for (int i = j; i < k; ++i) lj[i - j] = aj[i] * inv;
    lj[0] = d;
    for (int c = j + 1; c < k; ++c) {
      const double lcj = lj[c - j];
      double* ac = &a[static_cast<std::size_t>(c) * kk];
      for (int i = c; i < k; ++i) ac[i] -= lj[i - j] * lcj;
    }
  }
  chol_.swap(packed);
  for (std::size_t n : ok) {
    const double wy = s2 * ys[n];
    for (int i = 0; i < k; ++i) b_[static_cast<std::size_t>(i)] += wy * static_cast<double>(xs[n][i]);
  }
  observations_ += ok.size();
  return ok.size();
}

void UserPosterior::rebase(const float* old_mean, const float* new_mean, double prior_precision) {
  for (int i = 0; i < k_; ++i)
    b_[static_cast<std::size_t>(i)] += prior_precision * (static_cast<double>(new_mean[i]) - static_cast<double>(old_mean[i]));
}

std::vector<double> UserPosterior::mean() const {
  std::vector<double> m(static_cast<std::size_t>(k_));
  mean_into(m.data());
  return m;
}

namespace {
// Solves L y = rhs in place (column-oriented forward substitution).
void forward(const std::vector<double>& chol, int k, double* y) {
  for (int c = 0; c < k; ++c) {
    const double* lc = &chol[col(c, k)];
    y[c] /= lc[0];
    const double yc = y[c];
    for (int i = c + 1; i < k; ++i) y[i] -= lc[i - c] * yc;
  }
}
// Solves L^T x = rhs in place (row i of L^T is column i of L: contiguous).
void backward(const std::vector<double>& chol, int k, double* x) {
  for (int i = k - 1; i >= 0; --i) {
    const double* li = &chol[col(i, k)];
    double acc = x[i];
    for (int j = i + 1; j < k; ++j) acc -= li[j - i] * x[j];
    x[i] = acc / li[0];
  }
}
}  // namespace

void UserPosterior::mean_into(double* m) const {
  // A mean = b: L y = b, then L^T mean = y.
  std::copy(b_.begin(), b_.end(), m);
  forward(chol_, k_, m);
  backward(chol_, k_, m);
}

void UserPosterior::sample_offset(const double* z, double* offset) const {
  // L^T offset = z: cov(offset) = L^-T L^-1 = A^-1.
  std::copy(z, z + k_, offset);
  backward(chol_, k_, offset);
}

double UserPosterior::variance_along(const float* x) const {
  std::vector<double> y(x, x + k_);
  forward(chol_, k_, y.data());
  double sum = 0.0;
  for (double v : y) sum += v * v;
  return sum;
}

std::size_t UserPosterior::memory_bytes() const noexcept {
  return sizeof(double) * (chol_.size() + b_.size()) + sizeof(observations_);
}

void UserPosterior::save(BinaryWriter& w) const {
  w.put<std::uint64_t>(observations_);
  w.put_vector(chol_);
  w.put_vector(b_);
}

UserPosterior UserPosterior::load(BinaryReader& r, int k) {
  UserPosterior p;
  p.k_ = k;
  p.observations_ = r.get<std::uint64_t>();
  p.chol_ = r.get_vector<double>(tri(k));
  p.b_ = r.get_vector<double>(static_cast<std::uint64_t>(k));
  for (int i = 0; i < k; ++i) {
    const double d = p.chol_[col(i, k)];
    if (!(std::isfinite(d) && d > 0.0)) r.fail("bandit posterior: Cholesky diagonal is not positive");
  }
  return p;
}

void ItemEvidence::add(std::uint32_t item, float n) {
  if (item >= count_.size()) count_.resize(static_cast<std::size_t>(item) + 1, 0.0f);
  count_[item] += n;
}

double ItemEvidence::sigma(std::uint32_t item, const ExploreConfig& cfg) const noexcept {
  const double prior = 1.0 / (cfg.item_sigma * cfg.item_sigma);
  return 1.0 / std::sqrt(prior + static_cast<double>(count(item)) / cfg.noise_variance);
}

double hashed_uniform(std::uint64_t seed, std::uint64_t user, std::uint64_t request, std::uint64_t index) noexcept {
  return static_cast<double>(mix_key(seed, user, request, index) >> 11) * 0x1.0p-53;
}

double hashed_normal(std::uint64_t seed, std::uint64_t user, std::uint64_t request, std::uint64_t index) noexcept {
  // Box-Muller on two independent 53-bit uniforms of one 64-bit key (split by a second mix).
  const std::uint64_t a = mix_key(seed, user, request, index);
  std::uint64_t x = a;
  const std::uint64_t b = splitmix64(x);
  const double u1 = (static_cast<double>(a >> 11) + 0.5) * 0x1.0p-53;  // (0, 1): log is finite
  const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

const char* explore_policy_name(ExplorePolicy p) noexcept {
  switch (p) {
    case ExplorePolicy::kGreedy: return "greedy";
    case ExplorePolicy::kEpsilon: return "epsilon";
    case ExplorePolicy::kThompson: return "thompson";
  }
  return "unknown";
}

namespace {

// Indices of the top-k finite, non-excluded entries of `s`, best first (ties: lower index).
std::vector<std::uint32_t> top_k(const std::vector<float>& s, const std::vector<std::uint8_t>& excluded, int k) {
  std::vector<std::uint32_t> idx;
  idx.reserve(s.size());
  for (std::uint32_t i = 0; i < s.size(); ++i)
    if (std::isfinite(s[i]) && !(i < excluded.size() && excluded[i])) idx.push_back(i);
  const std::size_t kk = std::min<std::size_t>(idx.size(), static_cast<std::size_t>(std::max(k, 0)));
  auto better = [&](std::uint32_t a, std::uint32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(), better);
  idx.resize(kk);
  return idx;
}

}  // namespace

std::vector<ExploreSlot> select_with_exploration(const std::vector<float>& greedy_scores,
                                                 const std::vector<std::uint8_t>& excluded,
                                                 const float* item_vectors, int dim,
                                                 const UserPosterior* posterior, const ItemEvidence& evidence,
                                                 const ExploreConfig& cfg, const ExploreRequest& req,
                                                 const std::vector<float>* item_sd) {
  const std::vector<std::uint32_t> greedy = top_k(greedy_scores, excluded, req.k);
  const int slots = std::clamp(cfg.slots, 0, static_cast<int>(greedy.size()));
  std::vector<std::uint32_t> picks;
  if (cfg.policy == ExplorePolicy::kThompson && slots > 0) {
    // One posterior draw for the user (index space [0, dim)), one normal per item (index
    // space offset by dim) so every draw is independent and reproducible.
    std::vector<double> offset(static_cast<std::size_t>(dim), 0.0);
    if (posterior && posterior->dim() == dim) {
      std::vector<double> z(static_cast<std::size_t>(dim));
      for (int d = 0; d < dim; ++d) z[static_cast<std::size_t>(d)] = hashed_normal(req.seed, req.user, req.request, static_cast<std::uint64_t>(d));
      posterior->sample_offset(z.data(), offset.data());
    }
    std::vector<float> sampled(greedy_scores.size(), -std::numeric_limits<float>::infinity());
    for (std::uint32_t i = 0; i < greedy_scores.size(); ++i) {
      if (!std::isfinite(greedy_scores[i]) || (i < excluded.size() && excluded[i])) continue;
      double s = greedy_scores[i];
      if (item_vectors) {
        const float* q = item_vectors + static_cast<std::size_t>(i) * static_cast<std::size_t>(dim);
        for (int d = 0; d < dim; ++d) s += offset[static_cast<std::size_t>(d)] * static_cast<double>(q[d]);
      }
      const double sd = item_sd && i < item_sd->size() ? static_cast<double>((*item_sd)[i]) : evidence.sigma(i, cfg);
      s += sd * hashed_normal(req.seed, req.user, req.request, static_cast<std::uint64_t>(dim) + i);
      sampled[i] = static_cast<float>(s);
    }
    const std::vector<std::uint32_t> thompson = top_k(sampled, excluded, req.k);
    for (std::uint32_t i : thompson) {
      if (static_cast<int>(picks.size()) >= slots) break;
      if (std::find(greedy.begin(), greedy.end(), i) == greedy.end()) picks.push_back(i);
    }
  } else if (cfg.policy == ExplorePolicy::kEpsilon && slots > 0) {
    std::vector<std::uint32_t> eligible;
    for (std::uint32_t i = 0; i < greedy_scores.size(); ++i)
      if (std::isfinite(greedy_scores[i]) && !(i < excluded.size() && excluded[i]) &&
          std::find(greedy.begin(), greedy.end(), i) == greedy.end())
        eligible.push_back(i);
    for (int s = 0; s < slots && !eligible.empty(); ++s) {
      if (hashed_uniform(req.seed, req.user, req.request, 2 * static_cast<std::uint64_t>(s)) >= cfg.epsilon) continue;
      const auto j = static_cast<std::size_t>(hashed_uniform(req.seed, req.user, req.request, 2 * static_cast<std::uint64_t>(s) + 1) *
                                              static_cast<double>(eligible.size()));
      picks.push_back(eligible[std::min(j, eligible.size() - 1)]);
      eligible.erase(eligible.begin() + static_cast<std::ptrdiff_t>(std::min(j, eligible.size() - 1)));
    }
  }
  std::vector<ExploreSlot> out;
  out.reserve(greedy.size());
  const std::size_t keep = greedy.size() - picks.size();
  for (std::size_t r = 0; r < keep; ++r) out.push_back({greedy[r], greedy_scores[greedy[r]], false});
  for (std::uint32_t i : picks) out.push_back({i, greedy_scores[i], true});
  return out;
}

}  // namespace freshrec::stream
