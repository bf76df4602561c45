#pragma once
#include <functional>
#include <memory>
#include <string>

#include "cpu/model/factor_model.hpp"
#include "cpu/train/train_config.hpp"
#include "cpu/train/training_set.hpp"

namespace freshrec {

/// What one iteration (ALS sweep or SGD epoch) reports.
struct IterationReport {
  int iteration = 0;        ///< 1-based
  double loss = 0.0;        ///< training loss after the iteration; NaN when not computed
  double seconds = 0.0;     ///< wall time of the iteration (loss computation excluded)
};
using IterationCallback = std::function<void(const IterationReport&)>;

/// One interface, two backends (cpu/ Eigen, cuda/). A trainer is configured at
/// construction and trains a model in place.
class Trainer {
 public:
  virtual ~Trainer() = default;
  /// e.g. "cpu-als-cg", "cuda-sgd".
  virtual std::string name() const = 0;
  /// Runs config.iterations iterations on `data`. `model` must already be sized
  /// (see initialize_factors) and its current factors are the starting point, which
  /// is how warm start works. Calls `on_iteration` after every iteration.
  virtual void fit(const TrainingSet& data, FactorModel& model, const IterationCallback& on_iteration) = 0;
};

/// Sizes `model` for `data` and fills it with N(0, init_scale^2) factors drawn from
/// `seed`; rows whose id is present in `warm` keep warm's vectors and biases (a warm
/// start from the previous snapshot). Id maps are taken from `log`.
void initialize_factors(const InteractionLog& log, const TrainingSet& data, const TrainConfig& config,
                        ModelKind kind, const FactorModel* warm, FactorModel& model);

/// The factory: picks the backend once. For Backend::kAuto, uses CUDA when the build
/// has it and a device answers, else the CPU with one warning line on stderr.
/// `chosen` (optional) receives "cpu" or "cuda".
std::unique_ptr<Trainer> make_trainer(const TrainConfig& config, std::string* chosen = nullptr);

/// The CPU implementations (also used directly by tests as the reference).
std::unique_ptr<Trainer> make_cpu_trainer(const TrainConfig& config);

}  // namespace freshrec
