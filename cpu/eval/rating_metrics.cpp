#include "cpu/eval/rating_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "cpu/util/error.hpp"

namespace freshrec {

std::map<std::string, double> ErrorMetrics::to_map() const { return {{"rmse", rmse}, {"mae", mae}}; }

RatingRange observed_rating_range(const InteractionLog& log) {
  bool any = false;
  RatingRange r;
  for (std::size_t e = 0; e < log.size(); ++e) {
    if (log.type[e] != EventType::kRating || !std::isfinite(log.value[e])) continue;
    r.min = any ? std::min(r.min, log.value[e]) : log.value[e];
    r.max = any ? std::max(r.max, log.value[e]) : log.value[e];
    any = true;
  }
  if (!any) throw InputError("interaction log has no rating events: RMSE/MAE need an explicit (rating) log");
  return r;
}

ErrorMetrics evaluate_ratings(const FactorModel& model, const TestSet& test, RatingRange range) {
  if (!(range.min <= range.max))
    throw InputError("evaluate_ratings: empty rating range [" + std::to_string(range.min) + ", " +
                     std::to_string(range.max) + "]");
  const CsrMatrix& m = test.user_items;
  if (m.cols > model.n_items())
    throw InputError("evaluate_ratings: the test set has " + std::to_string(m.cols) + " items, the model " +
                     std::to_string(model.n_items()));
  ErrorMetrics out;
  double sq = 0.0, abs = 0.0;
  for (std::int32_t u = 0; u < m.rows; ++u) {
    if (m.row_size(u) == 0) continue;
    if (u >= model.n_users())
      throw InputError("evaluate_ratings: test user row " + std::to_string(u) + " is outside the model's " +
                       std::to_string(model.n_users()) + " users");
    for (std::int64_t k = m.row_begin(u); k < m.row_end(u); ++k) {
      const float rating = m.values[k];
      if (std::isnan(rating)) continue;
      const float raw = model.score(u, m.indices[k]);
      if (std::isnan(raw))
        throw IntegrityError("evaluate_ratings: the model predicts NaN for user row " + std::to_string(u) +
                             ", item row " + std::to_string(m.indices[k]));
      const double err = static_cast<double>(std::clamp(raw, range.min, range.max)) - rating;
      sq += err * err;
      abs += std::fabs(err);
      ++out.pairs;
    }
  }
  if (out.pairs > 0) {
    out.rmse = std::sqrt(sq / static_cast<double>(out.pairs));
    out.mae = abs / static_cast<double>(out.pairs);
  }
  return out;
}

}  // namespace freshrec
