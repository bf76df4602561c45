#include "cpu/eval/ranking_metrics.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

struct Candidate {
  float score;
  std::int32_t item;
};

// The ranking order: a strict total order, so the top K is unique and deterministic.
inline bool better(const Candidate& a, const Candidate& b) noexcept {
  return a.score > b.score || (a.score == b.score && a.item < b.item);
}

// Users scored per call: large enough for the factor scorer's GEMM to pay off, small
// enough that a thread's score buffer (block x items floats) stays modest.
constexpr int kUserBlock = 32;

}  // namespace

std::map<std::string, double> RankingMetrics::to_map() const {
  const std::string at = "@" + std::to_string(k);
  return {{"precision" + at, precision}, {"recall" + at, recall}, {"ndcg" + at, ndcg},
          {"map" + at, map},             {"hr" + at, hit_rate},   {"coverage" + at, coverage}};
}

int select_top_k(const float* scores, std::int32_t n_items, const std::int32_t* excluded_begin,
                 const std::int32_t* excluded_end, int k, std::int32_t* out) {
  if (k <= 0) return 0;
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  // A heap whose front is the worst of the best k so far. Items arrive in ascending index
  // order, so an item that only ties the front loses the tie-break: once the heap is
  // full, an item enters only with a score strictly above the front's, one comparison
  // that NaN fails too (NaN ranks as -infinity).
  std::vector<Candidate> heap;
  heap.reserve(static_cast<std::size_t>(k));
  float threshold = kLowest;
  auto offer = [&](std::int32_t i) {
    const float s = scores[i];
    if (static_cast<int>(heap.size()) < k) {
      heap.push_back({std::isnan(s) ? kLowest : s, i});
      std::push_heap(heap.begin(), heap.end(), better);
      if (static_cast<int>(heap.size()) == k) threshold = heap.front().score;
    } else if (s > threshold) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = {s, i};
      std::push_heap(heap.begin(), heap.end(), better);
      threshold = heap.front().score;
    }
  };
  // Walk the runs between excluded items, so the hot loop carries no exclusion test.
  std::int32_t i = 0;
  const std::int32_t* ex = excluded_begin;
  while (i < n_items) {
    while (ex != excluded_end && *ex < i) ++ex;
    const std::int32_t run_end = ex != excluded_end ? std::min(*ex, n_items) : n_items;
    for (; i < run_end && static_cast<int>(heap.size()) < k; ++i) offer(i);
    for (; i < run_end; ++i)
      if (scores[i] > threshold) offer(i);
    if (i < n_items && ex != excluded_end && *ex == i) ++i;  // skip the excluded item
  }
  std::sort(heap.begin(), heap.end(), better);
  for (std::size_t r = 0; r < heap.size(); ++r) out[r] = heap[r].item;
  return static_cast<int>(heap.size());
}

RankingMetrics evaluate_ranking(const RankingScorer& scorer, const CsrMatrix& train_user_items,
                                const TestSet& test, int k, int threads) {
  if (k < 1) throw InputError("eval.k must be >= 1, got " + std::to_string(k));
  const std::int32_t n_items = scorer.n_items();
  if (test.n_items() != n_items || train_user_items.cols != n_items ||
      train_user_items.rows != test.n_users())
    throw InputError("evaluate_ranking: shapes disagree: scorer has " + std::to_string(n_items) +
                     " items, training matrix " + std::to_string(train_user_items.rows) + "x" +
                     std::to_string(train_user_items.cols) + ", test set " + std::to_string(test.n_users()) +
                     "x" + std::to_string(test.n_items()));

  RankingMetrics m;
  m.k = k;
  std::vector<std::int32_t> users;
  for (std::int32_t u = 0; u < test.n_users(); ++u) {
    if (test.user_items.row_size(u) == 0) continue;
    if (train_user_items.row_size(u) == 0) {
      ++m.cold_users_skipped;
      continue;
    }
    users.push_back(u);
  }
  const auto n_eval = static_cast<std::int64_t>(users.size());
  m.users_evaluated = n_eval;
  if (n_eval == 0) return m;

  // discount[r] = 1 / log2(1 + r) for 1-based rank r; ideal[m] = sum of the first m.
  std::vector<double> discount(static_cast<std::size_t>(k) + 1, 0.0), ideal(static_cast<std::size_t>(k) + 1, 0.0);
  for (int r = 1; r <= k; ++r) {
    discount[r] = 1.0 / std::log2(1.0 + r);
    ideal[r] = ideal[r - 1] + discount[r];
  }

  // Per-user results, summed afterwards in user order: the means are then identical
  // whatever the thread count or schedule.
  std::vector<double> precision(n_eval), recall(n_eval), ndcg(n_eval), ap(n_eval), hit(n_eval);
  std::vector<std::int32_t> top(static_cast<std::size_t>(n_eval) * k, -1);
  const std::int64_t n_blocks = (n_eval + kUserBlock - 1) / kUserBlock;
  const int n_threads = threads > 0 ? threads : omp_get_max_threads();
  std::exception_ptr failure;

#pragma omp parallel num_threads(n_threads)
  {
    // This thread's parallel regions get one thread (a per-task setting): a scorer's
    // Eigen GEMM must not fork again under a single-thread region and oversubscribe.
    omp_set_num_threads(1);
    std::vector<float> scores(static_cast<std::size_t>(kUserBlock) * static_cast<std::size_t>(n_items));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t b = 0; b < n_blocks; ++b) {
      try {
        const std::int64_t first = b * kUserBlock;
        const int count = static_cast<int>(std::min<std::int64_t>(kUserBlock, n_eval - first));
        scorer.score_users(users.data() + first, count, scores.data());
        for (int r = 0; r < count; ++r) {
          const std::int64_t slot = first + r;
          const std::int32_t u = users[slot];
          std::int32_t* list = top.data() + slot * k;
          const int len = select_top_k(scores.data() + static_cast<std::size_t>(r) * n_items, n_items,
                                       train_user_items.indices.data() + train_user_items.row_begin(u),
                                       train_user_items.indices.data() + train_user_items.row_end(u), k, list);
          const auto* t_begin = test.user_items.indices.data() + test.user_items.row_begin(u);
          const auto* t_end = test.user_items.indices.data() + test.user_items.row_end(u);
          const auto n_test = static_cast<std::int64_t>(t_end - t_begin);
          int hits = 0;
          double dcg = 0.0, ap_sum = 0.0;
          for (int rank = 1; rank <= len; ++rank) {
            if (!std::binary_search(t_begin, t_end, list[rank - 1])) continue;
            ++hits;
            dcg += discount[rank];
            ap_sum += static_cast<double>(hits) / rank;
          }
          const std::int64_t ideal_ranks = std::min<std::int64_t>(k, n_test);
          precision[slot] = static_cast<double>(hits) / k;
          recall[slot] = static_cast<double>(hits) / static_cast<double>(n_test);
          ndcg[slot] = dcg / ideal[ideal_ranks];
          ap[slot] = ap_sum / static_cast<double>(ideal_ranks);
          hit[slot] = hits > 0 ? 1.0 : 0.0;
        }
      } catch (...) {
        // An exception must not leave the parallel region; the first one is rethrown.
#pragma omp critical(freshrec_eval_failure)
        if (!failure) failure = std::current_exception();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);

  for (std::int64_t s = 0; s < n_eval; ++s) {
    m.precision += precision[s];
    m.recall += recall[s];
    m.ndcg += ndcg[s];
    m.map += ap[s];
    m.hit_rate += hit[s];
  }
  const auto n = static_cast<double>(n_eval);
  m.precision /= n;
  m.recall /= n;
  m.ndcg /= n;
  m.map /= n;
  m.hit_rate /= n;

  std::vector<std::uint8_t> shown(static_cast<std::size_t>(n_items), 0);
  for (std::int32_t item : top)
    if (item >= 0) shown[item] = 1;
  std::int64_t distinct = 0;
  for (std::uint8_t s : shown) distinct += s;
  m.coverage = n_items > 0 ? static_cast<double>(distinct) / n_items : 0.0;
  return m;
}

}  // namespace freshrec
