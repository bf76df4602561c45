#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cpu/data/event_type.hpp"
#include "cpu/stream/bandit.hpp"

namespace freshrec {

/// Sessions and the session embedding (event time throughout).
struct SessionConfig {
  double gap_seconds = 1800.0;       ///< inactivity that starts a new session
  int recent_clicked = 10;           ///< recent_clicked_items kept (brief: 10)
  int embedding_items = 20;          ///< recent clicked/viewed items in the session embedding (brief: 20)
  double decay_position = 0.9;       ///< weight decay_position^rank (rank 0 = newest)
  double lambda_session = 1.0 / 600; ///< 1/seconds: weight exp(-lambda_session * (t - t_event))
  float view_weight = 0.5f;          ///< a viewed item's weight relative to a clicked one in the embedding
  int recent_queries = 5;            ///< recent search queries kept
  int max_purchased = 200;           ///< purchased items remembered per user (oldest dropped)
  bool exclude_purchased = true;     ///< never recommend an item the user bought
};

/// Sliding-window counters per user and per item (event time).
struct WindowConfig {
  std::vector<double> seconds{300.0, 3600.0, 86400.0};  ///< window lengths, ascending
};

/// Per-event SGD on top of the nightly factors.
struct OnlineSgdConfig {
  bool enabled = true;
  float user_learning_rate = 0.05f;
  float item_learning_rate = 0.005f;  ///< items move slower: they are shared by every user
  float regularization = 0.02f;       ///< L2 pull of p_u + d_u (and q_i) back toward the nightly baseline
  float lr_decay = 0.999f;            ///< per update of the same user: lr * decay^n
  float min_learning_rate = 0.005f;   ///< floor of the decayed user rate (items: scaled alike)
  float gradient_clip = 1.0f;         ///< max L2 norm of a gradient
  int negatives = 2;                  ///< popularity-sampled negatives per implicit event
  EventWeights weights;               ///< per-type weight of an implicit positive (search/0 = no update)
  float rating_offset = 3.0f;         ///< explicit ratings: label = rating - offset (centres 1..5 stars)
};

/// New users: exact least-squares fold-in against the item vectors.
struct FoldInConfig {
  int max_events = 50;           ///< the most recent events used in the solve
  float regularization = 0.1f;   ///< lambda in (YᵀY + Yᵀ(C−I)Y + lambda I) x = YᵀC p
  float alpha = 10.0f;           ///< confidence scale, c = 1 + alpha * w(type)
};

/// New items: initialised from the users who touch them.
struct NewItemConfig {
  int min_events = 3;            ///< recommendable after this many events
};

/// The brief's OnlineLearningService: mixed replay batches, holdout, accept or roll back.
struct GuardConfig {
  bool enabled = true;
  std::size_t replay_capacity = 100000;  ///< bounded replay buffer (oldest dropped)
  double replay_ratio = 0.3;             ///< share of each cycle's batch drawn from the buffer
  std::size_t holdout_size = 1000;       ///< validation interactions kept
  double holdout_probability = 0.02;     ///< chance an event is diverted to the holdout while it is not full
  std::size_t cycle_events = 5000;       ///< events per update cycle
  double tolerance = 0.0;                ///< accept when new loss <= old loss + tolerance
  /// Report accept/rollback decisions with both losses. Off by default (library use: tests,
  /// benches, the experiment runner); the updater process turns it on.
  bool log_decisions = false;
  /// Where a decision line goes (no trailing newline); empty = stderr. Called on the writer
  /// thread under the engine's lock: keep it short (enqueue, write a line).
  std::function<void(const char* line)> decision_log;
  /// At most one decision line per this many wall-clock seconds (the skipped ones are
  /// counted in the next line); 0 = every cycle. Reporting only: the state never depends on it.
  double log_min_interval_seconds = 10.0;
};

/// Blending long-term and real-time signals at request time.
struct BlendConfig {
  double lambda_blend = 1.0 / 3600;  ///< 1/seconds: g = exp(-lambda_blend * (t - t_last(u)))
  float beta = 1.0f;                 ///< weight of the session embedding term
  float trending_weight = 0.0f;      ///< weight of the item's recent-window popularity (log1p count)
};

/// Multipliers a request context applies to the blend (1 = no effect).
struct ContextScale {
  float beta = 1.0f;      ///< multiplies blend.beta (weight of the session embedding)
  float trending = 1.0f;  ///< multiplies blend.trending_weight
};

/// Request-time context effects. Time features come from the request time (event time,
/// epoch seconds, shifted by utc_offset_hours) with the brief's RequestTimeFeatureExtractor
/// categories: morning [6,12), afternoon [12,18), evening [18,22), night otherwise; weekend =
/// Saturday or Sunday; holiday season = November or December. Every applicable scale
/// multiplies in (device x time of day x weekend x holiday). Defaults change nothing.
struct ContextConfig {
  float page_item_weight = 0.5f;     ///< boost of items near the page's item (cosine)
  float product_page_beta = 1.5f;    ///< beta multiplier on product/search/cart pages (intent is explicit)
  ContextScale mobile, tablet, desktop;             ///< by RecommendRequest::device (others: none)
  ContextScale morning, afternoon, evening, night;  ///< by hour of the request time
  ContextScale weekend;                             ///< Saturday and Sunday
  ContextScale holiday_season;                      ///< November and December
  double utc_offset_hours = 0.0;     ///< local time = UTC + this, for the time features (-24..24)
};

/// Memory bounds.
struct MemoryConfig {
  std::size_t max_users = 1000000;   ///< tracked users; the least recently active are evicted beyond it
};

/// Everything the streaming engine needs (configs/stream.yaml "stream:" section).
struct StreamConfig {
  SessionConfig session;
  WindowConfig windows;
  OnlineSgdConfig sgd;
  FoldInConfig foldin;
  NewItemConfig new_items;
  GuardConfig guard;
  BlendConfig blend;
  ContextConfig context;
  MemoryConfig memory;
  /// Bandit exploration ("stream.explore:"). slots = 0 (the default) turns the whole explorer
  /// off: impressions are then accepted but change nothing beyond the event count and the
  /// watermark, and recommend is the greedy ranking. With slots > 0 the engine tracks
  /// impressions (rewards, weak negatives into the SGD with weight impression_weight), keeps
  /// per-user Thompson posteriors and gives at most `slots` of the top-k to exploration.
  /// Only the thompson policy keeps posteriors (greedy and epsilon run the impression loop
  /// alone). Host memory when on: at most 100000 posteriors (least recently active evicted), each
  /// 8 (k(k+1)/2 + k) + 8 bytes (17 KiB at k = 64), plus the pending impressions (bounded by
  /// max_pending_impressions), one id string per item the explorer has seen and one per user
  /// with a pending impression (at most 2 max_pending_impressions + 1024 user ids held).
  stream::ExploreConfig explore{stream::ExplorePolicy::kThompson, /*slots=*/0};
  std::uint64_t seed = 42;
  std::size_t journal_capacity = 1000000;  ///< events kept for re-application after a hot swap
};

}  // namespace freshrec
