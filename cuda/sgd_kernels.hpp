#pragma once
/// Biased matrix factorisation by SGD on the device, in the spirit of cuMF_SGD: samples
/// shuffled once, then each epoch the warps take blocks of 32 consecutive samples in a
/// freshly permuted block order and update lock-free (Hogwild: a race between two warps
/// on one row loses an update, which SGD tolerates). A warp handles one sample at a time,
/// a lane holding k/32 components of p_u and q_i. Every pointer is device memory; every
/// call runs on res.stream().
#include <cstdint>

#include "cuda/resources.hpp"

namespace freshrec {

/// Hyperparameters of one epoch (same meaning as TrainConfig's).
struct SgdStep {
  float learning_rate = 0.01f;
  float regularization = 0.01f;       ///< L2 on p_u and q_i
  float bias_regularization = 0.01f;  ///< L2 on b_u and b_i
  float global_bias = 0.0f;           ///< mu in mu + b_u + b_i + p_u . q_i
};

/// The model arrays an epoch updates in place (device).
struct SgdModel {
  float* user_factors = nullptr;  ///< n_users x k, row-major
  float* item_factors = nullptr;  ///< n_items x k, row-major
  float* user_bias = nullptr;     ///< n_users
  float* item_bias = nullptr;     ///< n_items
  int k = 0;
};

/// The samples (user, item, rating), n of them, each array device memory.
struct SgdSamples {
  const std::int32_t* user = nullptr;
  const std::int32_t* item = nullptr;
  const float* rating = nullptr;
  std::int64_t n = 0;
};

/// Permutes the n samples in place into a random order fixed by `seed` (a sort by
/// hashed keys: deterministic, independent of the device).
void shuffle_samples(GpuResources& res, std::int32_t* user, std::int32_t* item, float* rating, std::int64_t n,
                     std::uint64_t seed);

/// One epoch: every sample once, e = r - (mu + b_u + b_i + p_u . q_i), then
/// b_u += lr (e - lambda_b b_u), b_i likewise, p_u += lr (e q_i - lambda p_u),
/// q_i += lr (e p_u - lambda q_i) from the values read before the update. A sample whose
/// update is not finite (error, bias or any component) is skipped whole, as on the CPU. `epoch_seed` picks the block order.
void sgd_epoch(GpuResources& res, const SgdSamples& samples, const SgdModel& model, const SgdStep& step,
               std::uint64_t epoch_seed);

/// Sum over samples of (r - prediction)^2 (double), returned to the host.
double sgd_squared_error(GpuResources& res, const SgdSamples& samples, const SgdModel& model, float global_bias);

}  // namespace freshrec
