#include "cpu/stream/session.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace freshrec::stream {

void Session::reset() {
  active = false;
  start = last = 0.0;
  views = clicks = carts = purchases = searches = 0;
  price_sum = 0.0;
  price_count = 0;
  categories.clear();
  clicked.clear();
  embedding.clear();
  queries.clear();
}

namespace {
// Inserts by event time (after equal times, so arrival order breaks ties) and drops the
// oldest beyond `cap`. A late event older than a full list's oldest entry is dropped.
template <typename T>
void insert_bounded(std::vector<T>& list, T value, int cap) {
  if (cap <= 0) return;
  auto pos = std::upper_bound(list.begin(), list.end(), value.time,
                              [](double t, const T& e) { return t < e.time; });
  if (static_cast<int>(list.size()) >= cap && pos == list.begin()) return;
  list.insert(pos, std::move(value));
  if (static_cast<int>(list.size()) > cap) list.erase(list.begin());
}
}  // namespace

bool Session::observe(const SessionConfig& cfg, EventType type, double t, std::uint32_t item,
                      std::uint32_t category, double price, const std::string& query) {
  if (!active || t - last > cfg.gap_seconds) {
    reset();
    active = true;
    start = last = t;
  } else if (t < start - cfg.gap_seconds) {
    return false;
  }
  start = std::min(start, t);
  last = std::max(last, t);
  constexpr std::uint32_t kNone = UINT32_MAX;
  switch (type) {
    case EventType::kView:
      ++views;
      if (category != kNone) {
        auto it = std::lower_bound(categories.begin(), categories.end(), category,
                                   [](const auto& p, std::uint32_t c) { return p.first < c; });
        if (it != categories.end() && it->first == category)
          ++it->second;
        else
          categories.insert(it, {category, 1u});
      }
      if (std::isfinite(price)) {
        price_sum += price;
        ++price_count;
      }
      if (item != kNone) insert_bounded(embedding, TimedItem{item, t, true}, cfg.embedding_items);
      break;
    case EventType::kClick:
      ++clicks;
      if (item != kNone) {
        insert_bounded(clicked, TimedItem{item, t, false}, cfg.recent_clicked);
        insert_bounded(embedding, TimedItem{item, t, false}, cfg.embedding_items);
      }
      break;
    case EventType::kAddToCart: ++carts; break;
    case EventType::kPurchase: ++purchases; break;
    case EventType::kSearch:
      ++searches;
      if (!query.empty()) insert_bounded(queries, TimedQuery{query, t}, cfg.recent_queries);
      break;
    case EventType::kRating: break;
    case EventType::kImpression: break;  // what was shown, not what the user did (the engine keeps it out of sessions)
  }
  return true;
}

void session_embedding(const SessionConfig& cfg, const Session& session, const FactorMatrix& items,
                       double t, float* out) {
  const int k = static_cast<int>(items.cols());
  std::fill_n(out, k, 0.0f);
  const auto& list = session.embedding;
  if (list.empty()) return;
  // Accumulate in double: the weights can span many orders of magnitude.
  double acc[512];
  std::vector<double> big;
  double* sum = acc;
  if (k > 512) {
    big.assign(k, 0.0);
    sum = big.data();
  } else {
    std::fill_n(acc, k, 0.0);
  }
  double total = 0.0;
  double pos_weight = 1.0;
  for (std::size_t r = 0; r < list.size(); ++r) {
    const TimedItem& e = list[list.size() - 1 - r];  // rank 0 = newest
    const double age = std::max(0.0, t - e.time);
    const double w = pos_weight * std::exp(-cfg.lambda_session * age) * (e.viewed ? cfg.view_weight : 1.0);
    pos_weight *= cfg.decay_position;
    if (!(w > 0.0)) continue;
    const float* q = items.row(e.item).data();
    for (int d = 0; d < k; ++d) sum[d] += w * q[d];
    total += w;
  }
  if (!(total > 0.0) || !std::isfinite(total)) return;
  for (int d = 0; d < k; ++d) out[d] = static_cast<float>(sum[d] / total);
}

}  // namespace freshrec::stream
