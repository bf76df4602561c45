#include "cpu/eval/test_set.hpp"

#include <cmath>
#include <string>

#include "cpu/eval/pair_index.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

void check_mask(const InteractionLog& log, const Split& split, const char* what) {
  if (split.train_mask.size() != log.size())
    throw InputError(std::string(what) + ": the split has " + std::to_string(split.train_mask.size()) +
                     " flags for a log of " + std::to_string(log.size()) + " events");
}

// A matrix over the pairs whose flag is set; pairs are already in (user, item) order.
CsrMatrix pairs_to_csr(const PairIndex& p, const std::vector<std::uint8_t>& keep,
                       const std::vector<float>& value) {
  CsrMatrix m;
  m.rows = p.n_users;
  m.cols = p.n_items;
  m.indptr.assign(static_cast<std::size_t>(p.n_users) + 1, 0);
  for (std::int32_t u = 0; u < p.n_users; ++u) {
    for (std::int64_t k = p.user_begin[u]; k < p.user_begin[u + 1]; ++k) {
      if (!keep[k]) continue;
      m.indices.push_back(p.item[k]);
      m.values.push_back(value[k]);
    }
    m.indptr[u + 1] = m.nnz();
  }
  return m;
}

}  // namespace

TestSet build_test_set(const InteractionLog& log, const Split& split) {
  check_mask(log, split, "build_test_set");
  const PairIndex p = index_pairs(log);
  const auto n_pairs = static_cast<std::size_t>(p.size());
  std::vector<std::uint8_t> in_train(n_pairs, 0), in_test(n_pairs, 0);
  std::vector<float> rating(n_pairs, NAN);
  std::vector<std::int64_t> rated_at(n_pairs, -1);  // event holding the pair's latest test rating
  for (std::size_t e = 0; e < log.size(); ++e) {
    const std::uint32_t k = p.pair_of_event[e];
    if (split.train_mask[e]) {
      in_train[k] = 1;
      continue;
    }
    in_test[k] = 1;
    if (log.type[e] != EventType::kRating) continue;
    const std::int64_t prev = rated_at[k];
    if (prev < 0 || log.timestamp[e] >= log.timestamp[static_cast<std::size_t>(prev)]) {
      rated_at[k] = static_cast<std::int64_t>(e);
      rating[k] = log.value[e];
    }
  }
  for (std::size_t k = 0; k < n_pairs; ++k) in_test[k] = in_test[k] && !in_train[k];
  TestSet t;
  t.user_items = pairs_to_csr(p, in_test, rating);
  return t;
}

CsrMatrix build_train_pairs(const InteractionLog& log, const Split& split) {
  check_mask(log, split, "build_train_pairs");
  const PairIndex p = index_pairs(log);
  std::vector<std::uint8_t> in_train(static_cast<std::size_t>(p.size()), 0);
  for (std::size_t e = 0; e < log.size(); ++e)
    if (split.train_mask[e]) in_train[p.pair_of_event[e]] = 1;
  return pairs_to_csr(p, in_train, std::vector<float>(in_train.size(), 1.0f));
}

}  // namespace freshrec
