#include "cpu/train/config_check.hpp"

#include <cmath>
#include <string>

#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

void require(bool ok, const char* key, const std::string& rule, double got) {
  if (!ok) throw InputError(std::string("train.") + key + ": must be " + rule + ", got " + std::to_string(got));
}

}  // namespace

void validate_train_config(const TrainConfig& c) {
  require(c.factors >= 1 && c.factors <= 4096, "factors", "in [1, 4096]", c.factors);
  require(c.iterations >= 0, "iterations", ">= 0", c.iterations);
  require(std::isfinite(c.regularization) && c.regularization >= 0.0f, "regularization", "finite and >= 0",
          c.regularization);
  require(c.threads >= 0, "threads", ">= 0 (0 = all cores)", c.threads);
  require(std::isfinite(c.init_scale) && c.init_scale >= 0.0f, "init_scale", "finite and >= 0", c.init_scale);
  if (c.algorithm == Algorithm::kAls) {
    if (c.solver == AlsSolver::kConjugateGradient) require(c.cg_steps >= 1, "cg_steps", ">= 1", c.cg_steps);
  } else {
    require(std::isfinite(c.learning_rate) && c.learning_rate > 0.0f, "learning_rate", "finite and > 0",
            c.learning_rate);
    require(std::isfinite(c.lr_decay) && c.lr_decay > 0.0f && c.lr_decay <= 1.0f, "lr_decay", "in (0, 1]",
            c.lr_decay);
    require(std::isfinite(c.min_learning_rate) && c.min_learning_rate >= 0.0f, "min_learning_rate",
            "finite and >= 0", c.min_learning_rate);
    require(std::isfinite(c.bias_regularization) && c.bias_regularization >= 0.0f, "bias_regularization",
            "finite and >= 0", c.bias_regularization);
  }
}

}  // namespace freshrec
