#pragma once
/// Impressions close the bandit loop: what a user was shown, and whether a click or a
/// purchase followed within the reward window. Event time throughout, so a replay yields
/// the same rewards as the live run.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
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

/// Pending impressions in event-time order (host memory: about 40 bytes per impression plus
/// 4 bytes per tracked item and a hash-map entry per user with pending impressions). At most
/// `max_pending` are held; beyond that the oldest is closed early (its unrewarded items become
/// weak negatives), so memory stays bounded whatever the traffic.
class ImpressionTracker {
 public:
  /// `window_seconds` > 0; `max_items` caps the items tracked per impression (rank order).
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
    for (const auto& entry : by_user_) f(entry.first);
  }
  /// Renumbers the user keys: user u becomes remap[u] (every pending user must have one).
  void remap_users(const std::vector<std::uint32_t>& remap);
  double window_seconds() const noexcept { return window_; }

  /// Canonical encoding (part of the checkpoint and the state digest).
  void save(BinaryWriter& w) const;
  /// Replaces the state with what save() wrote; throws IntegrityError on malformed bytes.
  void load(BinaryReader& r);

 private:
  struct Pending {
    std::uint64_t seq = 0;
    std::uint32_t user = 0;
    double t = 0.0;
    std::vector<std::uint32_t> items;
    std::vector<std::uint8_t> rewarded;
  };
  void close_front(std::vector<ImpressionOutcome>& out);

  double window_;
  std::size_t max_pending_;
  std::size_t max_items_;
  std::uint64_t next_seq_ = 0;
  std::deque<Pending> queue_;  ///< arrival order; queue_[i].seq == queue_.front().seq + i
  std::unordered_map<std::uint32_t, std::vector<std::uint64_t>> by_user_;  ///< seqs of each user's pending impressions
};

}  // namespace freshrec::stream
