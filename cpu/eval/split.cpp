#include "cpu/eval/split.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "cpu/eval/pair_index.hpp"
#include "cpu/train/random.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

// Number of 1-based ranks r in [1, n] with r / n <= fraction, evaluated in double exactly
// as Recommenders' `rank / count <= ratio`, so group sizes split as theirs do.
std::int64_t train_count(std::int64_t n, double fraction) {
  auto fits = [&](std::int64_t r) { return static_cast<double>(r) / static_cast<double>(n) <= fraction; };
  auto t = static_cast<std::int64_t>(std::floor(fraction * static_cast<double>(n)));
  t = std::clamp<std::int64_t>(t, 0, n);
  while (t < n && fits(t + 1)) ++t;
  while (t > 0 && !fits(t)) --t;
  return t;
}

// Marks pairs train/test per group. `group_begin` has groups + 1 offsets into `pairs`.
void split_groups(const std::vector<std::int64_t>& group_begin, std::vector<std::uint32_t>& pairs,
                  double fraction, std::uint64_t seed, std::vector<std::uint8_t>& pair_train) {
  const std::size_t groups = group_begin.size() - 1;
  for (std::size_t g = 0; g < groups; ++g) {
    const std::int64_t b = group_begin[g], n = group_begin[g + 1] - b;
    if (n == 0) continue;
    // One stream per group: a group's split does not depend on the others.
    Rng rng(derive_seed(seed, 0x5311u, g));
    shuffle_in_place(pairs.data() + b, static_cast<std::size_t>(n), rng);
    const std::int64_t n_train = train_count(n, fraction);
    for (std::int64_t r = 0; r < n_train; ++r) pair_train[pairs[b + r]] = 1;
  }
}

std::vector<std::uint8_t> stratified_by_user(const PairIndex& p, double fraction, std::uint64_t seed) {
  std::vector<std::uint32_t> pairs(static_cast<std::size_t>(p.size()));
  std::iota(pairs.begin(), pairs.end(), 0u);
  std::vector<std::uint8_t> pair_train(pairs.size(), 0);
  split_groups(p.user_begin, pairs, fraction, seed, pair_train);
  return pair_train;
}

std::vector<std::uint8_t> stratified_by_item(const PairIndex& p, double fraction, std::uint64_t seed) {
  // Group pairs by item with a stable counting sort: within an item, users stay in
  // index order before the shuffle, so the result depends on the seed only.
  std::vector<std::int64_t> begin(static_cast<std::size_t>(p.n_items) + 1, 0);
  for (std::int32_t i : p.item) ++begin[i + 1];
  std::partial_sum(begin.begin(), begin.end(), begin.begin());
  std::vector<std::uint32_t> pairs(static_cast<std::size_t>(p.size()));
  std::vector<std::int64_t> cursor(begin.begin(), begin.end() - 1);
  for (std::int64_t k = 0; k < p.size(); ++k) pairs[cursor[p.item[k]]++] = static_cast<std::uint32_t>(k);
  std::vector<std::uint8_t> pair_train(pairs.size(), 0);
  split_groups(begin, pairs, fraction, seed, pair_train);
  return pair_train;
}

std::vector<std::uint8_t> leave_last_out(const InteractionLog& log, const PairIndex& p) {
  // The latest event of each user decides; (time, log position) makes ties deterministic.
  std::vector<std::int64_t> latest(static_cast<std::size_t>(p.n_users), -1);
  for (std::size_t e = 0; e < log.size(); ++e) {
    std::int64_t& l = latest[log.user[e]];
    if (l < 0 || log.timestamp[e] >= log.timestamp[static_cast<std::size_t>(l)]) l = static_cast<std::int64_t>(e);
  }
  std::vector<std::uint8_t> pair_train(static_cast<std::size_t>(p.size()), 1);
  for (std::int32_t u = 0; u < p.n_users; ++u) {
    if (p.user_begin[u + 1] - p.user_begin[u] < 2) continue;
    pair_train[p.pair_of_event[static_cast<std::size_t>(latest[u])]] = 0;
  }
  return pair_train;
}

Split time_global(const InteractionLog& log, double fraction) {
  std::vector<std::uint32_t> order(log.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return log.timestamp[a] < log.timestamp[b]; });
  Split s;
  s.train_mask.assign(log.size(), 0);
  const std::int64_t n_train = log.empty() ? 0 : train_count(static_cast<std::int64_t>(log.size()), fraction);
  for (std::int64_t r = 0; r < n_train; ++r) s.train_mask[order[r]] = 1;
  return s;
}

}  // namespace

std::size_t Split::train_events() const noexcept {
  std::size_t n = 0;
  for (std::uint8_t m : train_mask) n += m != 0;
  return n;
}

Split split_log(const InteractionLog& log, const EvalConfig& config) {
  if (!(config.train_fraction > 0.0 && config.train_fraction < 1.0))
    throw InputError("eval.train_fraction must be in (0, 1), got " + std::to_string(config.train_fraction));
  if (log.size() > std::numeric_limits<std::uint32_t>::max())
    throw InputError("interaction log: more than 2^32-1 events cannot be split");
  for (std::size_t e = 0; e < log.size(); ++e) {
    if (!std::isfinite(log.timestamp[e]))
      throw InputError("interaction log: event " + std::to_string(e) + " has a non-finite timestamp");
  }
  if (config.protocol == SplitProtocol::kTimeGlobal) return time_global(log, config.train_fraction);

  const PairIndex p = index_pairs(log);
  std::vector<std::uint8_t> pair_train;
  switch (config.protocol) {
    case SplitProtocol::kStratifiedItem:
      pair_train = stratified_by_item(p, config.train_fraction, config.seed);
      break;
    case SplitProtocol::kStratifiedUser:
      pair_train = stratified_by_user(p, config.train_fraction, config.seed);
      break;
    case SplitProtocol::kLeaveLastOut:
      pair_train = leave_last_out(log, p);
      break;
    case SplitProtocol::kTimeGlobal:
      break;
  }
  Split s;
  s.train_mask.resize(log.size());
  for (std::size_t e = 0; e < log.size(); ++e) s.train_mask[e] = pair_train[p.pair_of_event[e]];
  return s;
}

std::optional<SplitProtocol> parse_split_protocol(std::string_view name) noexcept {
  if (name == "stratified-item") return SplitProtocol::kStratifiedItem;
  if (name == "stratified-user") return SplitProtocol::kStratifiedUser;
  if (name == "time-global") return SplitProtocol::kTimeGlobal;
  if (name == "leave-last-out") return SplitProtocol::kLeaveLastOut;
  return std::nullopt;
}

std::string_view split_protocol_name(SplitProtocol protocol) noexcept {
  switch (protocol) {
    case SplitProtocol::kStratifiedItem: return "stratified-item";
    case SplitProtocol::kStratifiedUser: return "stratified-user";
    case SplitProtocol::kTimeGlobal: return "time-global";
    case SplitProtocol::kLeaveLastOut: return "leave-last-out";
  }
  return "unknown";
}

}  // namespace freshrec
