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
  Pending p;
  p.seq = next_seq_++;
  p.user = user;
  p.t = t;
  const std::size_t n = std::min(items.size(), max_items_);
  p.items.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    if (std::find(p.items.begin(), p.items.end(), items[i]) == p.items.end()) p.items.push_back(items[i]);
  p.rewarded.assign(p.items.size(), 0);
  by_user_[user].push_back(p.seq);
  queue_.push_back(std::move(p));
}

std::size_t ImpressionTracker::on_engagement(std::uint32_t user, std::uint32_t item, double t,
                                             std::vector<ImpressionOutcome>& out) {
  auto it = by_user_.find(user);
  if (it == by_user_.end() || queue_.empty()) return 0;
  const std::uint64_t front = queue_.front().seq;
  std::size_t n = 0;
  for (std::uint64_t seq : it->second) {
    Pending& p = queue_[static_cast<std::size_t>(seq - front)];
    // An engagement before the impression, or after its window, is not its reward.
    if (t < p.t || t > p.t + window_) continue;
    for (std::size_t j = 0; j < p.items.size(); ++j) {
      if (p.items[j] != item || p.rewarded[j]) continue;
      p.rewarded[j] = 1;
      out.push_back({user, item, true, p.t});
      ++n;
    }
  }
  return n;
}

void ImpressionTracker::expire(double now, std::vector<ImpressionOutcome>& out) {
  while (!queue_.empty() && now > queue_.front().t + window_) close_front(out);
}

void ImpressionTracker::close_front(std::vector<ImpressionOutcome>& out) {
  Pending& p = queue_.front();
  for (std::size_t j = 0; j < p.items.size(); ++j)
    if (!p.rewarded[j]) out.push_back({p.user, p.items[j], false, p.t});
  auto it = by_user_.find(p.user);
  if (it != by_user_.end()) {
    auto& seqs = it->second;
    // Seqs of one user are increasing and the front is the oldest overall, so it is theirs first.
    if (!seqs.empty() && seqs.front() == p.seq) seqs.erase(seqs.begin());
    if (seqs.empty()) by_user_.erase(it);
  }
  queue_.pop_front();
}

void ImpressionTracker::remap_users(const std::vector<std::uint32_t>& remap) {
  by_user_.clear();
  for (Pending& p : queue_) {
    p.user = remap[p.user];
    by_user_[p.user].push_back(p.seq);  // queue order = increasing seqs, as on_impression keeps them
  }
}

void ImpressionTracker::save(BinaryWriter& w) const {
  w.put<double>(window_);
  w.put<std::uint64_t>(next_seq_);
  w.put<std::uint64_t>(queue_.size());
  for (const Pending& p : queue_) {
    w.put<std::uint64_t>(p.seq);
    w.put<std::uint32_t>(p.user);
    w.put<double>(p.t);
    w.put_vector(p.items);
    w.put_vector(p.rewarded);
  }
}

void ImpressionTracker::load(BinaryReader& r) {
  const double window = r.get<double>();
  if (!(std::isfinite(window) && window > 0.0)) r.fail("impressions: bad reward window");
  const auto next_seq = r.get<std::uint64_t>();
  const auto n = r.get<std::uint64_t>();
  if (n > max_pending_) r.fail("impressions: more pending than max_pending_impressions");
  std::deque<Pending> queue;
  std::unordered_map<std::uint32_t, std::vector<std::uint64_t>> by_user;
  for (std::uint64_t i = 0; i < n; ++i) {
    Pending p;
    p.seq = r.get<std::uint64_t>();
    p.user = r.get<std::uint32_t>();
    p.t = r.get<double>();
    p.items = r.get_vector<std::uint32_t>();
    p.rewarded = r.get_vector<std::uint8_t>(p.items.size());
    if (p.seq >= next_seq || (!queue.empty() && p.seq != queue.back().seq + 1) || !std::isfinite(p.t))
      r.fail("impressions: pending impressions out of order");
    by_user[p.user].push_back(p.seq);
    queue.push_back(std::move(p));
  }
  window_ = window;
  next_seq_ = next_seq;
  queue_ = std::move(queue);
  by_user_ = std::move(by_user);
}

}  // namespace freshrec::stream
