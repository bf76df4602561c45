#include "cpu/stream/bandit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "cpu/stream/rng.hpp"
#include "cpu/stream/vec_ops.hpp"
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
    : k_(k), precision_(tri(k), 0.0), b_(static_cast<std::size_t>(k)) {
  FRESHREC_ASSERT(k > 0 && prior_precision > 0.0);
  for (int i = 0; i < k; ++i) {
    precision_[col(i, k)] = prior_precision;
    b_[static_cast<std::size_t>(i)] = prior_precision * static_cast<double>(prior_mean[i]);
  }
}

bool UserPosterior::update(const float* x, double y, double w, double noise_variance) {
  return update_many(&x, &y, 1, w, noise_variance) == 1;
}

std::size_t UserPosterior::update_many(const float* const* xs, const double* ys, std::size_t m, double w,
                                      double noise_variance) {
  if (!(std::isfinite(w) && w > 0.0 && noise_variance > 0.0)) return 0;
  const int k = k_;
  const auto kk = static_cast<std::size_t>(k);
  const double s2 = w / noise_variance;
  if (!std::isfinite(s2)) return 0;
  // The accepted observations as doubles, row after row; coef[n] = s2 (one weight for all).
  thread_local std::vector<double> xd;
  xd.resize(m * kk);
  // The diagonal of A as the accepted observations grow it: every entry of A is at most
  // max(diag) (A is positive definite), so keeping the diagonal and b below kMaxEntry keeps
  // the whole state finite (each term alone being finite is not enough: their sum can
  // overflow, and a checkpoint refuses non-finite entries). The margin absorbs the rounding
  // of the batched column update below.
  constexpr double kMaxEntry = std::numeric_limits<double>::max() / 4;
  thread_local std::vector<double> diag;
  diag.resize(kk);
  for (int i = 0; i < k; ++i) diag[static_cast<std::size_t>(i)] = precision_[col(i, k)];
  std::size_t taken = 0;
  for (std::size_t n = 0; n < m; ++n) {
    const float* x = xs[n];
    double* row = &xd[taken * kk];
    double ss = 0.0;
    for (int i = 0; i < k; ++i) {
      row[i] = static_cast<double>(x[i]);
      ss += row[i] * row[i];
    }
    // Every term entering A is at most s2 |x|^2 and every term entering b at most
    // |y| sqrt(s2) sqrt(s2 |x|^2) (Cauchy-Schwarz): both finite means all are.
    const double sx = s2 * ss;
    if (!(std::isfinite(sx) && std::isfinite(ys[n]) && std::isfinite(std::fabs(ys[n]) * std::sqrt(s2) * std::sqrt(sx)))) continue;
    const double wy = s2 * ys[n];
    bool fits = true;
    for (int i = 0; i < k && fits; ++i) {
      const auto ii = static_cast<std::size_t>(i);
      fits = std::fabs(diag[ii] + s2 * row[i] * row[i]) <= kMaxEntry && std::fabs(b_[ii] + wy * row[i]) <= kMaxEntry;
    }
    if (!fits) continue;
    for (int i = 0; i < k; ++i) {
      const auto ii = static_cast<std::size_t>(i);
      diag[ii] += s2 * row[i] * row[i];
      b_[ii] += wy * row[i];
    }
    ++taken;
  }
  // A += s2 sum_n x_n x_n^T down the packed columns, four observations per pass so each
  // column is loaded and stored once per four (contiguous, vectorised multiply-adds).
  for (int c = 0; c < k; ++c) {
    double* ac = &precision_[col(c, k)];
    const int len = k - c;
    std::size_t n = 0;
    for (; n + 4 <= taken; n += 4) {
      const double* x0 = &xd[n * kk];
      const double* x1 = x0 + kk;
      const double* x2 = x1 + kk;
      const double* x3 = x2 + kk;
      const double a0 = s2 * x0[c], a1 = s2 * x1[c], a2 = s2 * x2[c], a3 = s2 * x3[c];
      for (int i = 0; i < len; ++i) ac[i] += a0 * x0[c + i] + a1 * x1[c + i] + a2 * x2[c + i] + a3 * x3[c + i];
    }
    for (; n < taken; ++n) {
      const double* x0 = &xd[n * kk];
      const double a0 = s2 * x0[c];
      for (int i = 0; i < len; ++i) ac[i] += a0 * x0[c + i];
    }
  }
  observations_ += taken;
  return taken;
}

void UserPosterior::prefetch() const noexcept {
  prefetch_bytes(precision_.data(), sizeof(double) * precision_.size());
  prefetch_bytes(b_.data(), sizeof(double) * b_.size());
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
// Cholesky factor L of the packed precision A (same packed layout), right-looking, into
// `chol`. False when A is not numerically positive definite (cannot happen for a prior
// precision plus outer products; checked so a reader never divides by zero).
bool cholesky(const std::vector<double>& a, int k, std::vector<double>& chol) {
  chol = a;
  for (int j = 0; j < k; ++j) {
    double* lj = &chol[col(j, k)];
    if (!(lj[0] > 0.0) || !std::isfinite(lj[0])) return false;
    const double d = std::sqrt(lj[0]);
    const double inv = 1.0 / d;
    lj[0] = d;
    for (int i = j + 1; i < k; ++i) lj[i - j] *= inv;
    for (int c = j + 1; c < k; ++c) {
      const double lcj = lj[c - j];
      double* ac = &chol[col(c, k)];
      for (int i = c; i < k; ++i) ac[i - c] -= lj[i - j] * lcj;
    }
  }
  return true;
}
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
// The Cholesky factor of `a` in per-thread scratch (readers are const and may run
// concurrently), or null when `a` does not factor.
const std::vector<double>* factor(const std::vector<double>& a, int k) {
  thread_local std::vector<double> chol;
  return cholesky(a, k, chol) ? &chol : nullptr;
}
}  // namespace

void UserPosterior::mean_into(double* m) const {
  // A mean = b: L y = b, then L^T mean = y.
  const std::vector<double>* chol = factor(precision_, k_);
  if (!chol) {
    std::fill(m, m + k_, 0.0);
    return;
  }
  std::copy(b_.begin(), b_.end(), m);
  forward(*chol, k_, m);
  backward(*chol, k_, m);
}

void UserPosterior::sample_offset(const double* z, double* offset) const {
  // L^T offset = z: cov(offset) = L^-T L^-1 = A^-1.
  const std::vector<double>* chol = factor(precision_, k_);
  if (!chol) {
    std::fill(offset, offset + k_, 0.0);
    return;
  }
  std::copy(z, z + k_, offset);
  backward(*chol, k_, offset);
}

double UserPosterior::variance_along(const float* x) const {
  const std::vector<double>* chol = factor(precision_, k_);
  if (!chol) return 0.0;
  std::vector<double> y(x, x + k_);
  forward(*chol, k_, y.data());
  double sum = 0.0;
  for (double v : y) sum += v * v;
  return sum;
}

std::size_t UserPosterior::memory_bytes() const noexcept {
  return sizeof(double) * (precision_.size() + b_.size()) + sizeof(observations_);
}

void UserPosterior::save(BinaryWriter& w) const {
  w.put<std::uint64_t>(observations_);
  w.put_vector(precision_);
  w.put_vector(b_);
}

UserPosterior UserPosterior::load(BinaryReader& r, int k, StoredAs stored) {
  UserPosterior p;
  p.k_ = k;
  p.observations_ = r.get<std::uint64_t>();
  std::vector<double> packed = r.get_vector<double>(tri(k));
  p.b_ = r.get_vector<double>(static_cast<std::uint64_t>(k));
  for (double v : packed)
    if (!std::isfinite(v)) r.fail("bandit posterior: non-finite precision entry");
  for (double v : p.b_)
    if (!std::isfinite(v)) r.fail("bandit posterior: non-finite b entry");
  for (int i = 0; i < k; ++i) {
    if (!(packed[col(i, k)] > 0.0))
      r.fail(stored == StoredAs::kCholesky ? "bandit posterior: Cholesky diagonal is not positive"
                                           : "bandit posterior: precision diagonal is not positive");
  }
  if (stored == StoredAs::kCholesky) {
    // Format 1 kept L with A = L L^T: rebuild A.
    p.precision_.assign(tri(k), 0.0);
    for (int c = 0; c < k; ++c) {
      const double* lc = &packed[col(c, k)];
      for (int j = c; j < k; ++j) {
        const double ljc = lc[j - c];
        double* aj = &p.precision_[col(j, k)];
        for (int i = j; i < k; ++i) aj[i - j] += lc[i - c] * ljc;
      }
    }
  } else {
    // Not refactored here (O(k^3) per user would slow a restore of many posteriors): the
    // checkpoint is checksummed, and a reader treats a matrix that does not factor as no draw.
    p.precision_ = std::move(packed);
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
