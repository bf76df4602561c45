#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "cpu/data/interaction_log.hpp"
#include "cpu/eval/test_set.hpp"
#include "cpu/model/factor_model.hpp"

namespace freshrec {

/// Closed interval of valid ratings; predictions are clipped into it before scoring.
struct RatingRange {
  float min = 1.0f;
  float max = 5.0f;
};

/// Rating-prediction error of an explicit model on the test pairs.
struct ErrorMetrics {
  double rmse = 0.0;        ///< sqrt(mean((clip(prediction) - rating)^2))
  double mae = 0.0;         ///< mean(|clip(prediction) - rating|)
  std::int64_t pairs = 0;   ///< test pairs with a rating that were scored

  /// {"rmse", "mae"}.
  std::map<std::string, double> to_map() const;
};

/// Smallest and largest rating among the log's rating events. Throws InputError when
/// the log has no rating event (nothing to measure an explicit model against).
RatingRange observed_rating_range(const InteractionLog& log);

/// RMSE and MAE of `model` on every test pair that has a rating (its latest one, see
/// TestSet), the prediction FactorModel::score clipped into `range`. Pairs without a
/// rating are skipped. Throws InputError when the test set is wider than the model or
/// the range is empty, IntegrityError when the model predicts NaN.
ErrorMetrics evaluate_ratings(const FactorModel& model, const TestSet& test, RatingRange range);

}  // namespace freshrec
