#pragma once
#include <cstdint>

#include "cpu/data/csr.hpp"
#include "cpu/data/interaction_log.hpp"
#include "cpu/eval/split.hpp"

namespace freshrec {

/// Ground truth of a split: per user, the items to find. A pair with any training event
/// is not in it (an item the user already had in training is no hit to find), so it
/// holds only pairs whose every event is a test event. Host memory.
struct TestSet {
  /// n_users x n_items, same shape as the log's training matrices. Value: the latest
  /// (by time, then log order) rating among the pair's rating events, NaN when the pair
  /// has none (implicit events).
  CsrMatrix user_items;

  std::int32_t n_users() const noexcept { return user_items.rows; }
  std::int32_t n_items() const noexcept { return user_items.cols; }
  std::int64_t pairs() const noexcept { return user_items.nnz(); }
};

/// The test set of `split` over `log` (split.train_mask must have one flag per event).
TestSet build_test_set(const InteractionLog& log, const Split& split);

/// The distinct training pairs of `split` as an n_users x n_items matrix with value 1:
/// what evaluation excludes from ranking and what popularity counts. (A trainer's
/// TrainingSet::user_items built from the same mask holds the same pairs.)
CsrMatrix build_train_pairs(const InteractionLog& log, const Split& split);

}  // namespace freshrec
