#pragma once
#include <cstdint>

#include <nlohmann/json.hpp>

#include "cpu/data/interaction_log.hpp"
#include "cpu/eval/eval_config.hpp"
#include "cpu/eval/split.hpp"
#include "cpu/model/factor_model.hpp"

namespace freshrec {

/// Metrics of the trained model and of the popularity baseline, as the metrics JSON
/// spells them ("ndcg@10", …; explicit models add "rmse" and "mae").
struct EvaluationResult {
  nlohmann::json model = nlohmann::json::object();
  nlohmann::json baseline = nlohmann::json::object();
  std::int64_t users = 0;             ///< users ranked
  std::int64_t cold_users_skipped = 0;  ///< test users without a training pair
};

/// Ranks the full catalogue for every test user (training items excluded) with `model`
/// and with item popularity, through the same evaluation path.
EvaluationResult evaluate_model_and_baseline(const InteractionLog& log, const Split& split, const FactorModel& model,
                                             const EvalConfig& config);

}  // namespace freshrec
