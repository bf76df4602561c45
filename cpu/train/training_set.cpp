#include "cpu/train/training_set.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

void check_mask(const InteractionLog& log, const std::vector<std::uint8_t>& mask, const char* who) {
  if (!mask.empty() && mask.size() != log.size())
    throw InputError(std::string(who) + ": event mask has " + std::to_string(mask.size()) +
                     " entries but the log has " + std::to_string(log.size()) + " events");
}

bool selected(const std::vector<std::uint8_t>& mask, std::size_t e) { return mask.empty() || mask[e] != 0; }

void check_confidence(const ConfidenceConfig& c) {
  if (!std::isfinite(c.alpha) || c.alpha < 0.0f)
    throw InputError("train.confidence.alpha: must be a finite value >= 0, got " + std::to_string(c.alpha));
  if (!std::isfinite(c.lambda_long) || c.lambda_long < 0.0)
    throw InputError("train.confidence.lambda_long: must be a finite value >= 0, got " +
                     std::to_string(c.lambda_long));
  for (int t = 0; t < kNumEventTypes; ++t) {
    const float w = c.weights.weight[t];
    if (!std::isfinite(w) || w < 0.0f)
      throw InputError("train.confidence.weights." + std::string(event_type_name(static_cast<EventType>(t))) +
                       ": must be a finite value >= 0, got " + std::to_string(w));
  }
}

}  // namespace

TrainingSet build_implicit_training_set(const InteractionLog& log, const std::vector<std::uint8_t>& mask,
                                        const ConfidenceConfig& confidence, double cutoff) {
  check_mask(log, mask, "build_implicit_training_set");
  check_confidence(confidence);
  if (!std::isfinite(cutoff)) throw InputError("build_implicit_training_set: cutoff time is not finite");

  const auto n_users = static_cast<std::int32_t>(log.users.size());
  const auto n_items = static_cast<std::int32_t>(log.items.size());
  std::vector<CooEntry> entries;
  entries.reserve(log.size());
  for (std::size_t e = 0; e < log.size(); ++e) {
    if (!selected(mask, e)) continue;
    double w = confidence.weights[log.type[e]];
    if (w == 0.0) continue;  // e.g. searches by default: no evidence, not even a stored zero
    if (confidence.weight_by_rating && log.type[e] == EventType::kRating) {
      const double r = log.value[e];
      if (!std::isfinite(r) || r < 0.0)
        throw InputError("build_implicit_training_set: event " + std::to_string(e) + " has rating " +
                         std::to_string(r) + "; train.confidence.weight_by_rating needs finite ratings >= 0");
      w *= r;
    }
    // An event after the cutoff counts as fresh, not fresher: a negative age would make
    // the exponent positive and could overflow the confidence.
    const double age = std::max(0.0, cutoff - log.timestamp[e]);
    const double contribution = w * std::exp(-confidence.lambda_long * age);
    if (contribution == 0.0) continue;
    entries.push_back({static_cast<std::int32_t>(log.user[e]), static_cast<std::int32_t>(log.item[e]),
                       static_cast<float>(contribution)});
  }

  TrainingSet set;
  set.cutoff = cutoff;
  CsrMatrix summed = build_csr(n_users, n_items, entries, DuplicatePolicy::kSum);
  entries.clear();
  entries.shrink_to_fit();

  // c = 1 + alpha * total; a pair whose total underflowed to 0 carries no evidence and
  // is dropped so "stored" keeps meaning "preference 1".
  CsrMatrix& m = set.user_items;
  m.rows = n_users;
  m.cols = n_items;
  m.indptr.assign(static_cast<std::size_t>(n_users) + 1, 0);
  m.indices.reserve(summed.indices.size());
  m.values.reserve(summed.values.size());
  for (std::int32_t u = 0; u < n_users; ++u) {
    for (std::int64_t k = summed.row_begin(u); k < summed.row_end(u); ++k) {
      const float total = summed.values[k];
      if (!(total > 0.0f)) continue;
      const float c = 1.0f + confidence.alpha * total;
      if (!std::isfinite(c))
        throw InputError("build_implicit_training_set: confidence overflows for user " + log.users.id(u) +
                         ", item " + log.items.id(summed.indices[k]) + " (lower train.confidence.alpha)");
      m.indices.push_back(summed.indices[k]);
      m.values.push_back(c);
    }
    m.indptr[u + 1] = static_cast<std::int64_t>(m.indices.size());
  }
  set.item_users = m.transpose();
  return set;
}

TrainingSet build_explicit_training_set(const InteractionLog& log, const std::vector<std::uint8_t>& mask) {
  check_mask(log, mask, "build_explicit_training_set");
  std::vector<std::size_t> order;
  for (std::size_t e = 0; e < log.size(); ++e)
    if (selected(mask, e) && log.type[e] == EventType::kRating && std::isfinite(log.value[e])) order.push_back(e);
  if (order.empty())
    throw InputError("build_explicit_training_set: no rating events selected (algorithm sgd trains on ratings)");

  // build_csr keeps the last of duplicates in input order, so feed it in time order.
  auto by_time = [&](std::size_t a, std::size_t b) { return log.timestamp[a] < log.timestamp[b]; };
  if (!std::is_sorted(order.begin(), order.end(), by_time)) std::stable_sort(order.begin(), order.end(), by_time);

  std::vector<CooEntry> entries;
  entries.reserve(order.size());
  double cutoff = log.timestamp[order.front()];
  for (std::size_t e : order) {
    entries.push_back({static_cast<std::int32_t>(log.user[e]), static_cast<std::int32_t>(log.item[e]), log.value[e]});
    cutoff = std::max(cutoff, log.timestamp[e]);
  }
  TrainingSet set;
  set.cutoff = cutoff;
  set.user_items = build_csr(static_cast<std::int32_t>(log.users.size()), static_cast<std::int32_t>(log.items.size()),
                             entries, DuplicatePolicy::kLast);
  set.item_users = set.user_items.transpose();
  double sum = 0.0;
  for (float v : set.user_items.values) sum += v;
  set.rating_mean = sum / static_cast<double>(set.user_items.nnz());
  return set;
}

}  // namespace freshrec
