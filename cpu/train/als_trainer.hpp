#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "cpu/train/trainer.hpp"

namespace freshrec {

/// Implicit-feedback ALS (Hu, Koren & Volinsky 2008) on the CPU, as in the `implicit`
/// library: per half-step Y^T Y is formed once and each row solves
/// (Y^T Y + Y^T (C_u - I) Y + reg I) x_u = Y^T C_u p_u, either by conjugate gradient
/// warm-started from the current x_u (cg_steps steps, Y^T C_u Y never formed) or exactly
/// by Cholesky. Rows are solved in parallel; each solve reads only the other side, so
/// the result is independent of scheduling and thread count.
class AlsTrainer final : public Trainer {
 public:
  /// Validates `config` (InputError naming the key) and keeps a copy.
  explicit AlsTrainer(const TrainConfig& config);
  /// "cpu-als-cg" or "cpu-als-cholesky".
  std::string name() const override;
  /// Alternates user and item half-steps config.iterations times on the confidences of
  /// `data` (values must be finite and > 0), starting from `model`'s factors.
  void fit(const TrainingSet& data, FactorModel& model, const IterationCallback& on_iteration) override;
  /// Row solves whose result was not finite (the row kept its previous value) in the
  /// last fit; 0 unless regularization is 0 and a system was singular.
  std::int64_t rejected_rows() const noexcept { return rejected_rows_; }

 private:
  TrainConfig config_;
  std::int64_t rejected_rows_ = 0;
};

/// One ALS half-step: re-solves every row of X (rows of `Cui`) against the fixed `Y`.
/// `Cui` holds confidences (rows of X x rows of Y). Returns the number of rows whose
/// solve was not finite and were left unchanged. Host memory, `threads` OpenMP threads.
std::int64_t als_solve_rows(const CsrMatrix& Cui, const FactorMatrix& Y, FactorMatrix& X, float regularization,
                            AlsSolver solver, int cg_steps, int threads);

}  // namespace freshrec
