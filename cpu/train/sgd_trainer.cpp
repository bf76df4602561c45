#include "cpu/train/sgd_trainer.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

#include "cpu/train/config_check.hpp"
#include "cpu/train/loss.hpp"
#include "cpu/train/parallel.hpp"
#include "cpu/train/random.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

constexpr std::size_t kPrefetchDistance = 8;

struct Rating {
  std::int32_t user;
  std::int32_t item;
  float value;
};

/// Block of each row: rows are permuted by `seed` first so that popular (often
/// low-numbered) ids spread over all blocks instead of piling into block 0.
std::vector<std::int32_t> assign_blocks(std::int32_t n, int blocks, std::uint64_t seed) {
  std::vector<std::int32_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(seed);
  shuffle_in_place(perm.data(), perm.size(), rng);
  std::vector<std::int32_t> block(static_cast<std::size_t>(n));
  for (std::int32_t pos = 0; pos < n; ++pos)
    block[perm[pos]] = static_cast<std::int32_t>(static_cast<std::int64_t>(pos) * blocks / n);
  return block;
}

}  // namespace

SgdTrainer::SgdTrainer(const TrainConfig& config) : config_(config) {
  config_.algorithm = Algorithm::kSgd;
  validate_train_config(config_);
}

std::string SgdTrainer::name() const { return "cpu-sgd"; }

void SgdTrainer::fit(const TrainingSet& data, FactorModel& model, const IterationCallback& on_iteration) {
  const int k = config_.factors;
  if (model.n_users() != data.n_users() || model.n_items() != data.n_items() || model.factors() != k ||
      model.user_factors.cols() != k || model.user_bias.size() != data.n_users() ||
      model.item_bias.size() != data.n_items())
    throw InputError(name() + ": model is " + std::to_string(model.n_users()) + " users x " +
                     std::to_string(model.n_items()) + " items x " + std::to_string(model.factors()) +
                     " factors but the training set is " + std::to_string(data.n_users()) + " x " +
                     std::to_string(data.n_items()) + " and train.factors is " + std::to_string(k) +
                     " (call initialize_factors first)");
  const CsrMatrix& R = data.user_items;
  for (float v : R.values)
    if (!std::isfinite(v)) throw InputError(name() + ": training ratings must be finite, found " + std::to_string(v));

  const int T = std::max(1, resolve_threads(config_.threads));
  const std::vector<std::int32_t> user_block = assign_blocks(R.rows, T, derive_seed(config_.seed, 0x5347, 0));
  const std::vector<std::int32_t> item_block = assign_blocks(R.cols, T, derive_seed(config_.seed, 0x5347, 1));

  // Counting pass then fill, so the T*T blocks are sized once (20M ratings: no regrowth).
  std::vector<std::vector<Rating>> blocks(static_cast<std::size_t>(T) * T);
  {
    std::vector<std::int64_t> count(blocks.size(), 0);
    for (std::int32_t u = 0; u < R.rows; ++u)
      for (std::int64_t n = R.row_begin(u); n < R.row_end(u); ++n)
        ++count[static_cast<std::size_t>(user_block[u]) * T + item_block[R.indices[n]]];
    for (std::size_t b = 0; b < blocks.size(); ++b) blocks[b].reserve(static_cast<std::size_t>(count[b]));
    for (std::int32_t u = 0; u < R.rows; ++u)
      for (std::int64_t n = R.row_begin(u); n < R.row_end(u); ++n)
        blocks[static_cast<std::size_t>(user_block[u]) * T + item_block[R.indices[n]]].push_back(
            {u, R.indices[n], R.values[n]});
  }

  float* P = model.user_factors.data();
  float* Q = model.item_factors.data();
  float* bu = model.user_bias.data();
  float* bi = model.item_bias.data();
  const float mu = model.global_bias;
  const float reg = config_.regularization, breg = config_.bias_regularization;
  skipped_updates_ = 0;
  const int row_bytes = k * static_cast<int>(sizeof(float));

  for (int epoch = 1; epoch <= config_.iterations; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const float lr = std::max(config_.min_learning_rate,
                              static_cast<float>(config_.learning_rate * std::pow(double(config_.lr_decay), epoch - 1)));
    std::int64_t skipped = 0;
#pragma omp parallel num_threads(T) reduction(+ : skipped)
    {
      // OpenMP may grant fewer threads than asked; each thread then plays several of
      // the T roles. Blocks of one sub-round are disjoint, so the result is unchanged.
      const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
      std::vector<float> np(static_cast<std::size_t>(k)), nq(static_cast<std::size_t>(k));
      for (int round = 0; round < T; ++round) {
        for (int role = tid; role < T; role += nt) {
          const std::size_t b = static_cast<std::size_t>(role) * T + static_cast<std::size_t>((role + round) % T);
          std::vector<Rating>& block = blocks[b];
          Rng rng(derive_seed(config_.seed, static_cast<std::uint64_t>(epoch), b));
          shuffle_in_place(block.data(), block.size(), rng);
          const std::size_t count = block.size();
          for (std::size_t n = 0; n < count; ++n) {
            // The rows of a shuffled rating are cache misses; asking for those of a
            // rating a few steps ahead hides most of that latency behind this update.
            if (n + kPrefetchDistance < count) {
              const Rating& ahead = block[n + kPrefetchDistance];
              const char* pa = reinterpret_cast<const char*>(P + static_cast<std::int64_t>(ahead.user) * k);
              const char* qa = reinterpret_cast<const char*>(Q + static_cast<std::int64_t>(ahead.item) * k);
              for (int line = 0; line < row_bytes; line += 64) {
                __builtin_prefetch(pa + line, 1);
                __builtin_prefetch(qa + line, 1);
              }
            }
            const Rating& x = block[n];
            float* p = P + static_cast<std::int64_t>(x.user) * k;
            float* q = Q + static_cast<std::int64_t>(x.item) * k;
            const float e = x.value - (mu + bu[x.user] + bi[x.item] + dot_n(p, q, k));
            const float nbu = bu[x.user] + lr * (e - breg * bu[x.user]);
            const float nbi = bi[x.item] + lr * (e - breg * bi[x.item]);
            // v * 0 is 0 for finite v and NaN otherwise: one vectorised pass tells
            // whether the whole update is finite before any of it is written.
            float guard = e * 0.0f + nbu * 0.0f + nbi * 0.0f;
            float* npd = np.data();
            float* nqd = nq.data();
#pragma omp simd reduction(+ : guard)
            for (int j = 0; j < k; ++j) {
              npd[j] = p[j] + lr * (e * q[j] - reg * p[j]);
              nqd[j] = q[j] + lr * (e * p[j] - reg * q[j]);
              guard += npd[j] * 0.0f + nqd[j] * 0.0f;
            }
            if (!(guard == 0.0f)) {
              ++skipped;
              continue;
            }
            std::copy(npd, npd + k, p);
            std::copy(nqd, nqd + k, q);
            bu[x.user] = nbu;
            bi[x.item] = nbi;
          }
        }
#pragma omp barrier
      }
    }
    skipped_updates_ += skipped;
    IterationReport report;
    report.iteration = epoch;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report.loss = config_.compute_loss ? rating_rmse(R, model, T) : NAN;
    if (on_iteration) on_iteration(report);
  }
  if (skipped_updates_ > 0)
    std::fprintf(stderr, "freshrec: %s skipped %lld non-finite updates (diverging; lower train.learning_rate)\n",
                 name().c_str(), static_cast<long long>(skipped_updates_));
}

}  // namespace freshrec
