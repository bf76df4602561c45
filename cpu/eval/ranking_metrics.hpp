#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "cpu/data/csr.hpp"
#include "cpu/eval/scorer.hpp"
#include "cpu/eval/test_set.hpp"

namespace freshrec {

/// Top-K ranking quality, each a mean over the evaluated users (Microsoft Recommenders'
/// definitions, binary relevance; T = the user's test items, h = hits in the top K):
/// precision = h / K; recall = h / |T|; NDCG = DCG / IDCG with gain 1/log2(1 + rank) and
/// IDCG over min(K, |T|) ranks; MAP = map_at_k: sum over hits of (hits so far / rank),
/// divided by min(|T|, K) (Recommenders >= 1.2; their older `map` divided by |T|);
/// hit rate = share of users with h >= 1. Coverage = distinct items in any top-K list /
/// catalogue size.
struct RankingMetrics {
  int k = 0;
  double precision = 0.0;
  double recall = 0.0;
  double ndcg = 0.0;
  double map = 0.0;
  double hit_rate = 0.0;
  double coverage = 0.0;
  std::int64_t users_evaluated = 0;     ///< users with >= 1 test item and >= 1 training item
  std::int64_t cold_users_skipped = 0;  ///< users with test items but no training item

  /// {"precision@K", "recall@K", "ndcg@K", "map@K", "hr@K", "coverage@K"} with K = k.
  std::map<std::string, double> to_map() const;
};

/// Indices of the best `k` items of scores[0 .. n_items) into `out` (caller-owned, room
/// for k), best first: higher score first, ties to the lower item index, NaN ranked as
/// -infinity (below every finite score). Items in the ascending range [excluded_begin, excluded_end) are never
/// chosen. Returns how many were written (< k only when too few items remain).
int select_top_k(const float* scores, std::int32_t n_items, const std::int32_t* excluded_begin,
                 const std::int32_t* excluded_end, int k, std::int32_t* out);

/// Ranks the full catalogue for every user with a test item, the user's training items
/// (stored entries of `train_user_items`) excluded, and scores the top `k` against
/// `test`. Users without any training pair are skipped and counted: the factor model has
/// learnt nothing about them, and Recommenders only scores users it has predictions for.
/// Runs on `threads` OpenMP threads (<= 0: all); the result does not depend on the count.
/// Throws InputError when k < 1 or the shapes of scorer, train and test disagree.
RankingMetrics evaluate_ranking(const RankingScorer& scorer, const CsrMatrix& train_user_items,
                                const TestSet& test, int k, int threads);

}  // namespace freshrec
