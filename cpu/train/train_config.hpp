#pragma once
#include <cstdint>
#include <string>

#include "cpu/data/event_type.hpp"

namespace freshrec {

enum class Algorithm { kAls, kSgd };
enum class Backend { kAuto, kCpu, kCuda };
enum class AlsSolver { kConjugateGradient, kCholesky };

/// How raw events become the ALS confidence c = 1 + alpha * sum w(type) * exp(-lambda_long * age),
/// age = cutoff - event time (seconds). Summed over repeated (user, item) events.
struct ConfidenceConfig {
  float alpha = 1.0f;
  double lambda_long = 0.0;  ///< 1/seconds; 0 disables time decay
  EventWeights weights;
  bool weight_by_rating = false;  ///< multiply w by the rating value for rating events
};

/// Every knob of the nightly trainer, with the defaults used when YAML omits it.
struct TrainConfig {
  Algorithm algorithm = Algorithm::kAls;
  Backend backend = Backend::kAuto;
  int factors = 64;
  int iterations = 15;
  float regularization = 0.01f;  ///< L2 on factors
  int threads = 0;               ///< 0: all hardware threads
  std::uint64_t seed = 42;
  float init_scale = 0.01f;      ///< std-dev of the random initial factors
  bool compute_loss = true;      ///< report the training loss after each iteration

  // implicit ALS
  AlsSolver solver = AlsSolver::kConjugateGradient;
  int cg_steps = 3;              ///< CG steps per user per iteration (warm-started)
  ConfidenceConfig confidence;

  // explicit biased SGD
  float learning_rate = 0.01f;
  float lr_decay = 0.95f;        ///< multiplied in after each epoch
  float min_learning_rate = 1e-4f;
  float bias_regularization = 0.01f;
};

}  // namespace freshrec
