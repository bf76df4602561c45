#pragma once
/// Impressions close the bandit loop: what a user was shown, and whether a click or a
/// purchase followed within the reward window. Event time throughout, so a replay yields
/// the same rewards as the live run.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "cpu/stream/binary_io.hpp"

namespace freshrec::stream {

/// One closed (user, shown item) pair: a reward, or a weak negative when its window ran out.
struct ImpressionOutcome {
  std::uint32_t user = 0;   ///< the caller's user key
  std::uint32_t item = 0;   ///< the caller's item key
  bool rewarded = false;    ///< a click/purchase on it came within the window
  double shown_at = 0.0;    ///< event time of the impression (epoch seconds)
};

/// Pending impressions in event-time order (host memory: about 32 bytes per impression and
/// 29 per tracked item, plus 32 bytes per user key up to the largest pending one). At most
/// `max_pending` are held; beyond that the oldest is closed early (its unrewarded items become
/// weak negatives), so memory stays bounded whatever the traffic.
///
/// Layout: the items of all pending impressions sit in one ring in arrival order, and each
/// user keeps a flat list of (item, time, ring index) for its own pending impressions, so a
/// click scans one contiguous array instead of chasing every impression the user was shown
/// (a heavy user can hold hundreds inside the reward window).
class ImpressionTracker {
 public:
  /// `window_seconds` > 0; `max_items` caps the items tracked per impression (rank order).
  /// User keys are dense indexes: memory grows with the largest key seen (32 B per key).
  ImpressionTracker(double window_seconds, std::size_t max_pending, std::size_t max_items);

  /// Records that `user` was shown `items` (rank order) at event time `t`. Outcomes of
  /// impressions closed to make room go to `out`.
  void on_impression(std::uint32_t user, const std::vector<std::uint32_t>& items, double t,
                     std::vector<ImpressionOutcome>& out);
  /// A click or purchase of `item` by `user` at `t`: rewards every pending impression of the
  /// user that showed the item at most window_seconds before `t` (each pair once). Appends one
  /// outcome per rewarded pair to `out`; returns how many.
  std::size_t on_engagement(std::uint32_t user, std::uint32_t item, double t, std::vector<ImpressionOutcome>& out);
  /// Closes every impression whose window ended before `now` (now > shown_at + window, in
  /// arrival order; an impression that arrived late stays until those before it close):
  /// each unrewarded item becomes a weak-negative outcome in `out`.
  void expire(double now, std::vector<ImpressionOutcome>& out);

  std::size_t pending() const noexcept { return queue_.size(); }
  /// Calls f(user key) once for every user with a pending impression (any order).
  template <typename F>
  void for_each_pending_user(F&& f) const {
    for (std::size_t u = 0; u < by_user_.size(); ++u)
      if (by_user_[u].head < by_user_[u].shown.size()) f(static_cast<std::uint32_t>(u));
  }
  /// Renumbers the user keys: user u becomes remap[u] (every pending user must have one).
  void remap_users(const std::vector<std::uint32_t>& remap);
  double window_seconds() const noexcept { return window_; }

  /// Canonical encoding (part of the checkpoint and the state digest).
  void save(BinaryWriter& w) const;
  /// Replaces the state with what save() wrote; throws IntegrityError on malformed bytes or
  /// a user key >= `user_limit` or an item key >= `item_limit` (the keys the caller knows).
  void load(BinaryReader& r, std::uint32_t user_limit, std::uint64_t item_limit = UINT64_MAX);

 private:
  struct Pending {
    std::uint64_t seq = 0;
    double t = 0.0;
    std::uint64_t first = 0;  ///< ring index of its first item
    std::uint32_t user = 0;
    std::uint32_t n = 0;      ///< items tracked (deduplicated, at most max_items)
  };
  struct Shown {
    double t = 0.0;           ///< the impression's event time
    std::uint64_t index = 0;  ///< ring index of the item
    std::uint32_t item = 0;
  };
  struct UserPending {
    std::vector<Shown> shown;  ///< oldest first; [head, size) are pending
    std::size_t head = 0;
  };
  void close_front(std::vector<ImpressionOutcome>& out);
  void push(std::uint32_t user, double t, const std::uint32_t* items, std::size_t n, const std::uint8_t* rewarded);
  std::uint8_t& rewarded_at(std::uint64_t index) { return rewarded_[static_cast<std::size_t>(index - ring_base_)]; }

  double window_;
  std::size_t max_pending_;
  std::size_t max_items_;
  std::uint64_t next_seq_ = 0;
  std::deque<Pending> queue_;  ///< arrival order; queue_[i].seq == queue_.front().seq + i
  std::deque<std::uint32_t> items_;     ///< the ring: items of the pending impressions, arrival order
  std::deque<std::uint8_t> rewarded_;   ///< parallel to items_
  std::uint64_t ring_base_ = 0;         ///< ring index of items_.front()
  /// By user key: user keys are dense indexes (the explorer's compacted user keys), so a
  /// vector, not a hash map, and a user's list is freed when its last impression closes.
  std::vector<UserPending> by_user_;
  std::vector<std::uint32_t> dedup_;    ///< on_impression scratch
};

}  // namespace freshrec::stream
