#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/data/event_type.hpp"
#include "cpu/model/factor_model.hpp"
#include "cpu/stream/stream_config.hpp"

namespace freshrec::stream {

/// An item seen in the session with its own event time.
struct TimedItem {
  std::uint32_t item = 0;  ///< stream item key
  double time = 0.0;       ///< event time, epoch seconds
  bool viewed = false;     ///< a view (weighted by view_weight in the embedding), else a click
};

/// A search query with its own event time.
struct TimedQuery {
  std::string query;
  double time = 0.0;
};

/// One user's current session (the brief's StreamingFeatureProcessor state), event time
/// throughout. Lists are kept sorted by event time (newest last) so a late event takes its
/// own place; each list is bounded by its config cap. Vectors keep their capacity when a
/// session restarts, so a steady stream does not allocate.
struct Session {
  bool active = false;
  double start = 0.0;  ///< earliest event time in the session
  double last = 0.0;   ///< latest event time in the session
  std::uint32_t views = 0, clicks = 0, carts = 0, purchases = 0, searches = 0;
  double price_sum = 0.0;
  std::uint32_t price_count = 0;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> categories;  ///< (category key, views), key order
  std::vector<TimedItem> clicked;    ///< last `recent_clicked` clicks
  std::vector<TimedItem> embedding;  ///< last `embedding_items` clicks and views
  std::vector<TimedQuery> queries;   ///< last `recent_queries` queries

  /// Forgets the session (keeps capacity).
  void reset();
  /// Folds one event in. Returns false when the event is too late for this session (older
  /// than its start by more than the gap: its own session is closed) and was not counted.
  /// A new session starts when `t` is more than the gap after the latest event.
  /// `category` is a category key or UINT32_MAX; `item` is UINT32_MAX for none.
  bool observe(const SessionConfig& cfg, EventType type, double t, std::uint32_t item,
               std::uint32_t category, double price, const std::string& query);
  /// True when a request at `t` still falls inside this session.
  bool live_at(const SessionConfig& cfg, double t) const noexcept {
    return active && t - last <= cfg.gap_seconds;
  }
};

/// Session embedding at time `t`: the weighted mean of the session's item vectors (rows of
/// `items`, current vectors), weight decay_position^rank * exp(-lambda_session * max(0, t -
/// t_event)) * (view_weight for views), rank 0 = newest. Writes k floats to `out`; zeros when
/// the session has no items or every weight underflows.
void session_embedding(const SessionConfig& cfg, const Session& session, const FactorMatrix& items,
                       double t, float* out);

}  // namespace freshrec::stream
