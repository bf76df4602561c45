#pragma once
#include <cstdint>
#include <vector>

#include "cpu/data/csr.hpp"
#include "cpu/data/interaction_log.hpp"
#include "cpu/train/train_config.hpp"

namespace freshrec {

/// The matrix a trainer sees, in both orientations, host memory.
/// Implicit: values are confidences c >= 1 (preference 1 wherever stored).
/// Explicit: values are ratings (the latest rating of a repeated pair).
struct TrainingSet {
  CsrMatrix user_items;   ///< n_users x n_items
  CsrMatrix item_users;   ///< its transpose
  double cutoff = 0.0;    ///< time the confidence ages are measured from (epoch s)
  double rating_mean = 0.0;  ///< explicit only: mean stored rating (the SGD global bias start)

  std::int32_t n_users() const noexcept { return user_items.rows; }
  std::int32_t n_items() const noexcept { return user_items.cols; }
};

/// Confidence matrix for implicit ALS from the events selected by `mask` (all when
/// empty; else mask[e] != 0 keeps event e). Shape covers every user/item of the log.
/// cutoff: age origin; pass log.max_timestamp() for the nightly run.
TrainingSet build_implicit_training_set(const InteractionLog& log, const std::vector<std::uint8_t>& mask,
                                        const ConfidenceConfig& confidence, double cutoff);

/// Rating matrix for explicit SGD from the events selected by `mask` (the latest rating
/// of a repeated pair, by event time).
TrainingSet build_explicit_training_set(const InteractionLog& log, const std::vector<std::uint8_t>& mask);

}  // namespace freshrec
