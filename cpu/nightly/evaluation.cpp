#include "cpu/nightly/evaluation.hpp"

#include "cpu/eval/ranking_metrics.hpp"
#include "cpu/eval/rating_metrics.hpp"
#include "cpu/eval/scorer.hpp"
#include "cpu/eval/test_set.hpp"

namespace freshrec {

EvaluationResult evaluate_model_and_baseline(const InteractionLog& log, const Split& split, const FactorModel& model,
                                             const EvalConfig& config) {
  const TestSet test = build_test_set(log, split);
  const CsrMatrix train_pairs = build_train_pairs(log, split);
  EvaluationResult result;

  const FactorScorer model_scorer(model);
  const RankingMetrics m = evaluate_ranking(model_scorer, train_pairs, test, config.k, config.threads);
  const PopularityScorer popularity(train_pairs);
  const RankingMetrics b = evaluate_ranking(popularity, train_pairs, test, config.k, config.threads);
  for (const auto& [name, value] : m.to_map()) result.model[name] = value;
  for (const auto& [name, value] : b.to_map()) result.baseline[name] = value;
  result.users = m.users_evaluated;
  result.cold_users_skipped = m.cold_users_skipped;

  if (model.kind == ModelKind::kExplicit) {
    const ErrorMetrics e = evaluate_ratings(model, test, observed_rating_range(log));
    for (const auto& [name, value] : e.to_map()) result.model[name] = value;
  }
  return result;
}

}  // namespace freshrec
