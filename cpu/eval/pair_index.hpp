#pragma once
#include <cstdint>
#include <vector>

#include "cpu/data/interaction_log.hpp"

namespace freshrec {

/// The distinct (user, item) pairs of a log and which pair each event belongs to.
/// Splits move whole pairs, so that a repeated interaction never sits on both sides.
/// Pairs are ordered by (user, item); host memory, 8 bytes a pair + 4 bytes an event.
struct PairIndex {
  std::int32_t n_users = 0;             ///< rows of every matrix built from the log
  std::int32_t n_items = 0;             ///< columns of every matrix built from the log
  std::vector<std::int64_t> user_begin; ///< n_users + 1 offsets: pairs of user u are [user_begin[u], user_begin[u+1])
  std::vector<std::int32_t> item;       ///< item of each pair (ascending within a user)
  std::vector<std::uint32_t> pair_of_event;  ///< per event of the log

  std::int64_t size() const noexcept { return static_cast<std::int64_t>(item.size()); }
};

/// Users and items the log spans: its id maps, or one past the largest index stored
/// when events were added without interning ids (hand-built logs in tests).
void log_shape(const InteractionLog& log, std::int32_t& n_users, std::int32_t& n_items);

/// Indexes the pairs of `log` in O(events + pairs log(pairs per user)).
PairIndex index_pairs(const InteractionLog& log);

}  // namespace freshrec
