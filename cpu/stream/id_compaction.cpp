// Forgetting user ids nobody needs any more. Every id the stream ever saw used to stay in the
// id table (key -> string, slot and baseline row: ~200 B an id), so 10M distinct users held
// 2 GB whatever memory.max_users said. Keys are dense and baked into records, so instead of
// deleting one id at a time the table is rebuilt, now and then, with the ids still in use,
// and every record is renumbered in the same pass.
#include <algorithm>

#include "cpu/stream/engine_core.hpp"

namespace freshrec::stream {

std::size_t Core::user_id_budget() const {
  // Live ids are at most: tracked users, the holdout's users and this cycle's trained events.
  // Compacting at twice that keeps the cost at O(1) amortised per new id (the journal and
  // replay passes included, for any journal up to ~ the budget).
  const auto& c = cfg_;
  return 2 * (c.memory.max_users + c.guard.holdout_size + c.guard.cycle_events) + 1024;
}

void Core::compact_user_ids() {
  const std::size_t n = user_ids_.size();
  std::vector<std::uint8_t> live(n, 0);
  for (const UserState& u : users_)
    if (u.key != kNone && user_slot_[u.key] >= 0) live[u.key] = 1;
  for (const HoldoutPair& h : holdout_) live[h.user] = 1;  // scored with their nightly vector
  for (const LearnRecord& r : pending_) live[r.user] = 1;  // join the replay ring at the cycle's end

  // New keys in old key order: deterministic, and the canonical checkpoint order stays.
  std::vector<std::uint32_t> remap(n, kNone);
  std::size_t kept = 0;
  for (std::size_t key = 0; key < n; ++key) kept += live[key];
  DenseIds ids;
  ids.reserve(kept);
  std::vector<std::int32_t> slot(kept), base_row(kept);
  for (std::size_t key = 0; key < n; ++key) {
    if (!live[key]) continue;
    const std::uint32_t to = ids.intern(user_ids_.id(static_cast<std::uint32_t>(key)));
    remap[key] = to;
    slot[to] = user_slot_[key];
    base_row[to] = user_base_row_[key];
  }
  user_ids_ = std::move(ids);
  user_slot_.swap(slot);
  user_base_row_.swap(base_row);

  for (UserState& u : users_)
    if (u.key != kNone) u.key = remap[u.key];  // free slots keep kNone
  for (HoldoutPair& h : holdout_) h.user = remap[h.user];
  for (LearnRecord& r : pending_) r.user = remap[r.user];
  for (UserUndo& e : undo_users_)
    if (e.key != kNone) e.key = remap[e.key];  // undo entries belong to tracked users

  // The rings: an untracked user's records are dead (learn() skips users without a slot), so
  // they go; what stays is renumbered, oldest first, and the ring restarts at 0 (the layout
  // restore() gives a ring, so a checkpoint taken now resumes identically).
  auto filter_ring = [&](std::vector<LearnRecord>& ring, std::size_t& head, std::size_t cap) {
    const std::size_t m = ring.size();
    const std::size_t h = ring_oldest(ring, head, cap);
    std::vector<LearnRecord> out;
    out.reserve(ring.capacity());
    for (std::size_t j = 0; j < m; ++j) {
      LearnRecord r = ring[(h + j) % m];
      if (remap[r.user] == kNone) continue;
      r.user = remap[r.user];
      out.push_back(r);
    }
    ring.swap(out);
    head = 0;
  };
  filter_ring(journal_, journal_head_, cfg_.journal_capacity);
  filter_ring(replay_, replay_head_, cfg_.guard.replay_capacity);
}

}  // namespace freshrec::stream
