#include "cpu/eval/pair_index.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

#include "cpu/util/error.hpp"

namespace freshrec {

void log_shape(const InteractionLog& log, std::int32_t& n_users, std::int32_t& n_items) {
  std::uint64_t users = log.users.size(), items = log.items.size();
  for (std::size_t e = 0; e < log.size(); ++e) {
    users = std::max<std::uint64_t>(users, std::uint64_t{log.user[e]} + 1);
    items = std::max<std::uint64_t>(items, std::uint64_t{log.item[e]} + 1);
  }
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
  if (users > kMax || items > kMax)
    throw InputError("interaction log: more than 2^31-1 users or items cannot be evaluated");
  n_users = static_cast<std::int32_t>(users);
  n_items = static_cast<std::int32_t>(items);
}

PairIndex index_pairs(const InteractionLog& log) {
  PairIndex p;
  log_shape(log, p.n_users, p.n_items);
  const std::size_t n_events = log.size();
  if (n_events > std::numeric_limits<std::uint32_t>::max())
    throw InputError("interaction log: more than 2^32-1 events cannot be evaluated");

  // Counting sort of the events by user keeps the pass linear; only each user's own
  // (short) run is then sorted by item.
  std::vector<std::int64_t> start(static_cast<std::size_t>(p.n_users) + 1, 0);
  for (std::size_t e = 0; e < n_events; ++e) ++start[log.user[e] + 1];
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<std::uint32_t> order(n_events);
  {
    std::vector<std::int64_t> cursor(start.begin(), start.end() - 1);
    for (std::size_t e = 0; e < n_events; ++e) order[cursor[log.user[e]]++] = static_cast<std::uint32_t>(e);
  }

  p.user_begin.assign(static_cast<std::size_t>(p.n_users) + 1, 0);
  p.pair_of_event.resize(n_events);
  for (std::int32_t u = 0; u < p.n_users; ++u) {
    auto* first = order.data() + start[u];
    auto* last = order.data() + start[u + 1];
    std::sort(first, last, [&](std::uint32_t a, std::uint32_t b) {
      return log.item[a] != log.item[b] ? log.item[a] < log.item[b] : a < b;
    });
    for (auto* it = first; it != last; ++it) {
      const auto item = static_cast<std::int32_t>(log.item[*it]);
      if (it == first || item != p.item.back()) p.item.push_back(item);
      p.pair_of_event[*it] = static_cast<std::uint32_t>(p.item.size() - 1);
    }
    p.user_begin[u + 1] = static_cast<std::int64_t>(p.item.size());
  }
  return p;
}

}  // namespace freshrec
