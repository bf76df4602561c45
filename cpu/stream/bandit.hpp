#pragma once
/// Per-event bandit exploration on the factor space (the brief's fourth online strategy).
///
/// Thompson sampling, not LinUCB: a Thompson draw is one random user vector per request,
/// scored against the catalogue with the same dot products the greedy ranking already
/// computes (O(n k) plus an O(k^2) triangular solve), whereas LinUCB's bonus
/// sqrt(q_i^T Sigma q_i) costs O(k^2) per item, i.e. O(n k^2) per request over a full
/// catalogue. Thompson is also randomised, so two requests of one user explore different
/// items instead of hammering the single largest bonus, and it needs no tuned
/// exploration constant beyond the prior it already has.
///
/// Model: the click reward of item i for user u is y = theta_u . q_i + noise (variance
/// noise_variance), with the prior theta_u ~ N(p_u, I / prior_precision) around the nightly
/// vector. Each observation x = q_i with weight w adds (w / noise_variance) x x^T to the
/// precision A and (w / noise_variance) y x to b; the mean is A^-1 b. A itself is stored, not
/// its Cholesky factor: an update is then k(k+1)/2 independent multiply-adds (vectorised, no
/// sqrt/divide chain — the factor update was most of the bandit's ingest cost), and a reader
/// (one per recommend request) factors A in O(k^3 / 6) when it needs a draw or the mean.
/// Items carry their own scalar uncertainty sigma_i^2 = 1 / (1/item_sigma^2 + n_i/noise_variance)
/// where n_i is the evidence about the item (interactions in the nightly data plus
/// impressions seen by the stream), so new and rarely shown items are the ones explored.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/stream/binary_io.hpp"

namespace freshrec::stream {

/// Which items fill the exploration slots.
enum class ExplorePolicy : std::uint8_t {
  kGreedy = 0,    ///< no exploration: the top-K by the point estimate
  kEpsilon = 1,   ///< each slot, with probability epsilon, shows a uniformly drawn item
  kThompson = 2,  ///< the slots go to items a posterior draw ranks in its top-K and greedy does not
};

/// "stream.explore:" knobs. Defaults: exploration off (policy greedy) so a deployment opts in.
struct ExploreConfig {
  ExplorePolicy policy = ExplorePolicy::kGreedy;
  int slots = 2;                   ///< at most this many of the top-K go to exploration
  double epsilon = 0.1;            ///< epsilon-greedy: chance per slot
  double prior_precision = 1.0;    ///< 1/variance of the prior around the nightly user vector
  double noise_variance = 1.0;     ///< variance of the linear reward model
  double item_sigma = 0.3;         ///< score std-dev of an item with no evidence at all
  double reward_window_seconds = 1800.0;  ///< a click/purchase this soon after an impression is its reward
  float impression_weight = 0.1f;  ///< weight of an impression without a reward (a weak negative)
  std::size_t max_pending_impressions = 100000;  ///< impressions awaiting their window (oldest closed early)
  std::size_t max_items_per_impression = 50;     ///< items of one impression tracked (rank order)
};

/// Gaussian posterior over one user's vector, dimension k, in host memory:
/// k(k+1)/2 doubles of packed precision and k of b, plus one counter:
/// 8 (k(k+1)/2 + k) + 8 bytes, i.e. 4.5 KiB for k = 32, 17 KiB for k = 64. Neither the mean
/// nor a factor is stored: the hot path (one update per closed impression) needs neither, and
/// a reader computes them in O(k^3 / 6) when it does.
class UserPosterior {
 public:
  /// How a checkpoint stored the matrix: format 1 of the explorer kept the Cholesky factor.
  enum class StoredAs : std::uint8_t { kPrecision, kCholesky };

  UserPosterior() = default;
  /// Prior N(prior_mean, I / prior_precision); `prior_mean` holds k floats.
  UserPosterior(const float* prior_mean, int k, double prior_precision);

  /// Observes reward `y` for an item with vector `x` (k floats) and weight `w` (> 0):
  /// A += (w / noise_variance) x x^T, b += (w / noise_variance) y x, O(k^2). Returns false and
  /// changes nothing when x, y or w is not finite or w <= 0, or when the sums in A or b would
  /// leave a quarter of the double range (the state stays finite, so it checkpoints).
  bool update(const float* x, double y, double w, double noise_variance);
  /// update() of m observations (xs[j], ys[j]) with one weight. Observations update() would
  /// refuse are skipped. Returns how many were taken.
  std::size_t update_many(const float* const* xs, const double* ys, std::size_t m, double w, double noise_variance);
  /// Moves the prior mean from `old_mean` to `new_mean` (a hot-swapped nightly vector),
  /// keeping the evidence: b += prior_precision (new - old).
  void rebase(const float* old_mean, const float* new_mean, double prior_precision);

  /// The posterior mean A^-1 b (k doubles): a Cholesky factorisation and two triangular
  /// solves, O(k^3 / 6).
  std::vector<double> mean() const;
  /// The same into `out` (k doubles); no allocation after a thread's first call.
  void mean_into(double* out) const;
  /// A draw minus the mean: L^-T z for standard normals z (k doubles in/out), A = L L^T, so
  /// that mean() + offset ~ N(mean, A^-1). O(k^3 / 6).
  void sample_offset(const double* z, double* offset) const;
  /// Posterior variance of x . theta (x: k floats): |L^-1 x|^2, O(k^3 / 6). For tests and
  /// the simulation's item widths.
  double variance_along(const float* x) const;

  /// Starts loading the matrix and b into the cache (a hint, before an update).
  void prefetch() const noexcept;

  int dim() const noexcept { return k_; }
  std::uint64_t observations() const noexcept { return observations_; }
  /// Bytes of host memory this posterior holds (the formula above).
  std::size_t memory_bytes() const noexcept;

  void save(BinaryWriter& w) const;
  /// Reads what save() wrote for dimension k (or, with kCholesky, what format 1 wrote);
  /// throws IntegrityError on malformed bytes: non-finite entries, a non-positive diagonal.
  static UserPosterior load(BinaryReader& r, int k, StoredAs stored = StoredAs::kPrecision);

 private:
  int k_ = 0;
  std::vector<double> precision_;  ///< packed lower triangle of A, column-major (see bandit.cpp)
  std::vector<double> b_;
  std::uint64_t observations_ = 0;
};

/// Evidence per item behind its exploration width (dense item indices, host memory, 4 bytes an item).
class ItemEvidence {
 public:
  /// Grows to hold `n` items (new ones start with no evidence).
  void resize(std::size_t n) { count_.resize(n, 0.0f); }
  std::size_t size() const noexcept { return count_.size(); }
  /// Adds `n` observations of `item` (grows as needed).
  void add(std::uint32_t item, float n = 1.0f);
  float count(std::uint32_t item) const noexcept { return item < count_.size() ? count_[item] : 0.0f; }
  /// Score std-dev of `item`: 1 / sqrt(1/item_sigma^2 + count/noise_variance).
  double sigma(std::uint32_t item, const ExploreConfig& cfg) const noexcept;
  const std::vector<float>& counts() const noexcept { return count_; }
  std::vector<float>& counts() noexcept { return count_; }

 private:
  std::vector<float> count_;
};

/// Deterministic standard normals from a counter-based hash: the same (seed, user, request,
/// index) always gives the same value, so exploration needs no mutable RNG on the read path.
double hashed_normal(std::uint64_t seed, std::uint64_t user, std::uint64_t request, std::uint64_t index) noexcept;
/// Uniform in [0, 1) from the same kind of key.
double hashed_uniform(std::uint64_t seed, std::uint64_t user, std::uint64_t request, std::uint64_t index) noexcept;

/// One recommended slot.
struct ExploreSlot {
  std::uint32_t item = 0;
  float score = 0.0f;     ///< the greedy score (also for an explored item)
  bool explored = false;  ///< placed by exploration, not by the greedy ranking
};

/// What select_with_exploration needs about one request.
struct ExploreRequest {
  int k = 10;
  std::uint64_t seed = 0;
  std::uint64_t user = 0;      ///< a stable user key (hashed into the draw)
  std::uint64_t request = 0;   ///< request counter or watermark bits: a new draw per request
};

/// Picks the top-k of `greedy_scores` (one per item; -inf or `excluded[i]` = never shown),
/// then lets `cfg.policy` replace at most cfg.slots of them:
///  - Thompson: sampled score s_i + offset . q_i + sigma_i z_i, where offset is the user's
///    posterior draw minus its mean (`posterior` may be null: item uncertainty only), q_i
///    are the rows of `item_vectors` (n x k floats, row-major; null: no user term) and sigma_i
///    is `item_sd[i]` when given (e.g. sqrt(p_u^T Sigma_i p_u) from an item posterior, exact
///    for that user) else evidence.sigma(i) (one width per item, O(1)); the slots go to the
///    items the sampled top-k holds and the greedy top-k does not, best sampled first;
///  - epsilon: each slot with probability epsilon takes a uniformly drawn eligible item.
/// The greedy items keep their order and come first; explored items fill the last slots.
/// Deterministic in (request, inputs). O(n k) for Thompson, O(n log k) otherwise.
std::vector<ExploreSlot> select_with_exploration(const std::vector<float>& greedy_scores,
                                                 const std::vector<std::uint8_t>& excluded,
                                                 const float* item_vectors, int dim,
                                                 const UserPosterior* posterior, const ItemEvidence& evidence,
                                                 const ExploreConfig& cfg, const ExploreRequest& request,
                                                 const std::vector<float>* item_sd = nullptr);

/// "greedy" | "epsilon" | "thompson".
const char* explore_policy_name(ExplorePolicy p) noexcept;

}  // namespace freshrec::stream
