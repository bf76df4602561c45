#include "cpu/stream/impressions.hpp"

#include <algorithm>
#include <cmath>

#include "cpu/util/error.hpp"

namespace freshrec::stream {

ImpressionTracker::ImpressionTracker(double window_seconds, std::size_t max_pending, std::size_t max_items)
    : window_(window_seconds), max_pending_(std::max<std::size_t>(max_pending, 1)), max_items_(std::max<std::size_t>(max_items, 1)) {
  FRESHREC_ASSERT(std::isfinite(window_seconds) && window_seconds > 0.0);
}

void ImpressionTracker::on_impression(std::uint32_t user, const std::vector<std::uint32_t>& items, double t,
                                      std::vector<ImpressionOutcome>& out) {
  if (items.empty()) return;
  while (queue_.size() >= max_pending_) close_front(out);
  const std::size_t n = std::min(items.size(), max_items_);
  dedup_.clear();
  for (std::size_t i = 0; i < n; ++i)
    if (std::find(dedup_.begin(), dedup_.end(), items[i]) == dedup_.end()) dedup_.push_back(items[i]);
  push(user, t, dedup_.data(), dedup_.size(), nullptr);
}

void ImpressionTracker::push(std::uint32_t user, double t, const std::uint32_t* items, std::size_t n,
                             const std::uint8_t* rewarded) {
  Pending p;
  p.seq = next_seq_++;
  p.t = t;
  p.first = ring_base_ + items_.size();
  p.user = user;
  p.n = static_cast<std::uint32_t>(n);
  if (user >= by_user_.size()) by_user_.resize(static_cast<std::size_t>(user) + 1);
  UserPending& up = by_user_[user];
  for (std::size_t i = 0; i < n; ++i) {
    items_.push_back(items[i]);
    rewarded_.push_back(rewarded ? rewarded[i] : 0);
    up.shown.push_back({t, p.first + i, items[i]});
  }
  queue_.push_back(p);
}

std::size_t ImpressionTracker::on_engagement(std::uint32_t user, std::uint32_t item, double t,
                                             std::vector<ImpressionOutcome>& out) {
  if (user >= by_user_.size()) return 0;
  const UserPending& up = by_user_[user];
  std::size_t n = 0;
  // Oldest first, as the impressions arrived: the outcomes come in that order.
  for (std::size_t j = up.head; j < up.shown.size(); ++j) {
    const Shown& s = up.shown[j];
    // An engagement before the impression, or after its window, is not its reward.
    if (s.item != item || t < s.t || t > s.t + window_) continue;
    std::uint8_t& done = rewarded_at(s.index);
    if (done) continue;
    done = 1;
    out.push_back({user, item, true, s.t});
    ++n;
  }
  return n;
}

void ImpressionTracker::expire(double now, std::vector<ImpressionOutcome>& out) {
  while (!queue_.empty() && now > queue_.front().t + window_) close_front(out);
}

void ImpressionTracker::close_front(std::vector<ImpressionOutcome>& out) {
  const Pending p = queue_.front();
  FRESHREC_ASSERT(p.first == ring_base_);
  for (std::uint32_t j = 0; j < p.n; ++j)
    if (!rewarded_[j]) out.push_back({p.user, items_[j], false, p.t});
  items_.erase(items_.begin(), items_.begin() + p.n);
  rewarded_.erase(rewarded_.begin(), rewarded_.begin() + p.n);
  ring_base_ += p.n;
  if (p.user < by_user_.size()) {
    // The front is the oldest impression overall, so its items are the user's first pending.
    UserPending& up = by_user_[p.user];
    up.head += p.n;
    if (up.head >= up.shown.size()) {
      up = UserPending{};  // frees the list: memory stays bounded by what is pending
    } else if (up.head >= 64 && 2 * up.head >= up.shown.size()) {
      up.shown.erase(up.shown.begin(), up.shown.begin() + static_cast<std::ptrdiff_t>(up.head));
      up.head = 0;
    }
  }
  queue_.pop_front();
}

void ImpressionTracker::remap_users(const std::vector<std::uint32_t>& remap) {
  by_user_.clear();
  for (Pending& p : queue_) {
    p.user = remap[p.user];
    if (p.user >= by_user_.size()) by_user_.resize(static_cast<std::size_t>(p.user) + 1);
    UserPending& up = by_user_[p.user];  // queue order = increasing seqs, as on_impression keeps them
    for (std::uint32_t j = 0; j < p.n; ++j) up.shown.push_back({p.t, p.first + j, items_[static_cast<std::size_t>(p.first - ring_base_ + j)]});
  }
}

void ImpressionTracker::save(BinaryWriter& w) const {
  w.put<double>(window_);
  w.put<std::uint64_t>(next_seq_);
  w.put<std::uint64_t>(queue_.size());
  std::vector<std::uint32_t> items;
  std::vector<std::uint8_t> rewarded;
  for (const Pending& p : queue_) {
    w.put<std::uint64_t>(p.seq);
    w.put<std::uint32_t>(p.user);
    w.put<double>(p.t);
    const auto at = items_.begin() + static_cast<std::ptrdiff_t>(p.first - ring_base_);
    items.assign(at, at + p.n);
    const auto rat = rewarded_.begin() + static_cast<std::ptrdiff_t>(p.first - ring_base_);
    rewarded.assign(rat, rat + p.n);
    w.put_vector(items);
    w.put_vector(rewarded);
  }
}

void ImpressionTracker::load(BinaryReader& r, std::uint32_t user_limit, std::uint64_t item_limit) {
  const double window = r.get<double>();
  if (!(std::isfinite(window) && window > 0.0)) r.fail("impressions: bad reward window");
  const auto next_seq = r.get<std::uint64_t>();
  const auto n = r.get<std::uint64_t>();
  if (n > max_pending_) r.fail("impressions: more pending than max_pending_impressions");
  ImpressionTracker next(window, max_pending_, max_items_);
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto seq = r.get<std::uint64_t>();
    const auto user = r.get<std::uint32_t>();
    const auto t = r.get<double>();
    const auto items = r.get_vector<std::uint32_t>();
    const auto rewarded = r.get_vector<std::uint8_t>(items.size());
    if (seq >= next_seq || (!next.queue_.empty() && seq != next.queue_.back().seq + 1) || !std::isfinite(t))
      r.fail("impressions: pending impressions out of order");
    if (items.empty() || items.size() > UINT32_MAX) r.fail("impressions: an impression without items, or too many");
    if (user >= user_limit) r.fail("impressions: pending impression of an unknown user");
    for (std::uint32_t item : items)
      if (item >= item_limit) r.fail("impressions: pending impression of an unknown item");
    next.next_seq_ = seq;
    next.push(user, t, items.data(), items.size(), rewarded.data());
  }
  next.next_seq_ = next_seq;
  *this = std::move(next);
}

}  // namespace freshrec::stream
