#pragma once
#include <cstdint>
#include <string>

#include "cpu/train/trainer.hpp"

namespace freshrec {

/// Biased matrix factorisation for explicit ratings, r ~ global + b_u + b_i + p_u . q_i,
/// trained by SGD with L2 regularisation and a per-epoch learning-rate decay with a
/// floor. The global bias stays at its initial value (the rating mean): learning it
/// would make every thread write one shared number.
///
/// Parallel and deterministic in the LIBMF way: users and items are split (after a
/// seeded permutation, for balance) into T x T blocks, T = threads. Each epoch runs T
/// sub-rounds; in sub-round r thread t shuffles and processes block (t, (t + r) mod T),
/// so no two threads touch the same user or item row and the result depends only on the
/// seed and T.
class SgdTrainer final : public Trainer {
 public:
  /// Validates `config` (InputError naming the key) and keeps a copy.
  explicit SgdTrainer(const TrainConfig& config);
  /// "cpu-sgd".
  std::string name() const override;
  /// Runs config.iterations epochs over the ratings of `data`, starting from `model`.
  /// The reported loss is the RMSE on the training ratings after the epoch.
  void fit(const TrainingSet& data, FactorModel& model, const IterationCallback& on_iteration) override;
  /// Updates skipped in the last fit because they would have written a non-finite
  /// value (divergence, usually a learning rate that is too high).
  std::int64_t skipped_updates() const noexcept { return skipped_updates_; }

 private:
  TrainConfig config_;
  std::int64_t skipped_updates_ = 0;
};

}  // namespace freshrec
