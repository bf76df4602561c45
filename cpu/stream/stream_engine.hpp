#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpu/data/event.hpp"
#include "cpu/model/factor_model.hpp"
#include "cpu/stream/stream_config.hpp"

namespace freshrec {

/// Result of applying one event.
struct ApplyResult {
  bool accepted = false;
  std::string reason;         ///< why it was rejected (dead-letter text); empty when accepted
  bool engine_error = false;  ///< apply_batch only: the engine threw instead of rejecting (a bug, counted apart)
};

/// A recommendation request. `time` defaults to the stream's watermark.
struct RecommendRequest {
  std::string user_id;
  int k = 10;
  std::optional<double> time;          ///< epoch seconds; nullopt = watermark
  std::string page_type = "home";      ///< home | product | search | cart
  std::string page_item_id;            ///< the item on the page (boosts items near it)
  std::string device = "desktop";      ///< mobile | tablet | desktop
  std::vector<std::string> cart_items; ///< never recommended
};

struct ScoredItem {
  std::string item_id;
  float score = 0.0f;
};

/// Which signals a recommendation used.
struct Recommendation {
  std::vector<ScoredItem> items;
  bool known_user = false;    ///< in the nightly model or seen by the stream
  double blend_weight = 0.0;  ///< g(t) used
  double time = 0.0;          ///< the request time used
};

/// The session features of the brief, by its names.
struct SessionFeatures {
  std::uint32_t session_view_count = 0;
  std::uint32_t session_click_count = 0;
  std::uint32_t session_cart_count = 0;
  std::uint32_t session_purchase_count = 0;
  std::uint32_t session_search_count = 0;
  double session_ctr = 0.0;
  double avg_price_viewed = 0.0;
  std::string top_category;        ///< empty = none (null in JSON)
  std::uint32_t category_count = 0;
  std::vector<std::string> recent_clicked_items;
  std::vector<std::string> recent_queries;
  std::vector<float> session_embedding;  ///< k floats (zeros without clicks/views)
  double session_start = 0.0;
  double last_event_time = 0.0;
  /// Sliding-window event counts of the user, one per configured window.
  std::vector<std::uint32_t> window_counts;
};

/// Counters for observability and the stats file.
struct StreamCounters {
  std::uint64_t events = 0;          ///< accepted events
  std::uint64_t rejected = 0;        ///< dead-lettered
  std::uint64_t sgd_updates = 0;
  std::uint64_t non_finite_skipped = 0;  ///< updates refused by the finite check
  std::uint64_t foldins = 0;
  std::uint64_t guard_accepts = 0;
  std::uint64_t guard_rollbacks = 0;
  std::uint64_t evicted_users = 0;
  std::uint64_t new_users = 0;
  std::uint64_t new_items = 0;
  double last_guard_loss = 0.0;
  // Bandit exploration (zero while explore.slots is 0).
  std::uint64_t impressions = 0;         ///< impression events seen by the explorer
  std::uint64_t impression_rewards = 0;  ///< shown items clicked/purchased within the reward window
  std::uint64_t weak_negatives = 0;      ///< shown items whose window closed without one
  std::uint64_t explored_users = 0;      ///< users holding a posterior now (bounded, see ExplorerConfig)
};

/// The long-lived streaming state on top of one nightly model. Single writer
/// (apply/swap/restore), many readers (recommend/features): readers and the writer
/// synchronise internally (a waiting writer goes before new readers), so a reader never
/// sees a half-applied event or a half-swapped model. Deterministic: the same baseline,
/// config and event sequence give bit-identical state, whatever the wall clock does.
class StreamEngine {
 public:
  StreamEngine(const StreamConfig& config, std::shared_ptr<const FactorModel> baseline);
  ~StreamEngine();
  StreamEngine(const StreamEngine&) = delete;
  StreamEngine& operator=(const StreamEngine&) = delete;

  /// Applies one event (sessions, windows, SGD, fold-in, guard cycle). A bad event
  /// (unknown user AND item fields empty, non-finite numbers, …) is rejected with a reason
  /// and changes nothing.
  ApplyResult apply(const Event& event);
  /// apply() of events[0..n) in order (the same state, results and counters as n calls)
  /// under one writer lock: readers (recommend, features) let a waiting writer in first, so
  /// under steady read load the writer waits up to one read per lock, and a batch pays that
  /// wait once for n events. results[j] gets event j's result; apply_ns, when not null,
  /// event j's own apply time in nanoseconds. Readers wait for the whole batch, so
  /// `max_hold_ns` > 0 bounds it: the lock is released after at least one event once it was
  /// held as long as this call waited to get it (the readers in flight), at least 0.1 ms and
  /// at most max_hold_ns. Returns how many events (a prefix) were applied; the caller passes
  /// the rest again.
  std::size_t apply_batch(const Event* events, std::size_t n, ApplyResult* results, std::uint64_t* apply_ns = nullptr,
                          std::uint64_t max_hold_ns = 0);

  /// Top-k over the whole catalogue, exact, with the blend and request context.
  Recommendation recommend(const RecommendRequest& request) const;
  /// Session features of `user_id` at the watermark (defaults when unknown).
  SessionFeatures features(std::string_view user_id) const;
  /// Blended score of one pair at `time` (for tests and the experiment runner).
  float score(std::string_view user_id, std::string_view item_id, std::optional<double> time = std::nullopt) const;

  /// Latest event time seen (epoch seconds); "now" for requests.
  double watermark() const;
  /// The nightly model in use.
  std::shared_ptr<const FactorModel> baseline() const;
  /// Hot swap: rebuilds the learned state on `next`, re-applies journaled events newer than
  /// next->data_cutoff, then swaps atomically. Sessions and windows carry over.
  void swap_baseline(std::shared_ptr<const FactorModel> next);

  /// Serialises the whole state (deltas, new users/items, sessions, windows, replay buffer,
  /// guard, RNG, journal, counters, watermark) into `out`, canonical byte order.
  void save(std::ostream& out) const;
  /// Replaces the whole state with one written by save() on the same baseline version.
  /// Throws IntegrityError when the bytes are malformed or belong to another baseline.
  void restore(std::istream& in);
  /// SHA-256 (hex) of the canonical serialisation: equal digests = identical state.
  std::string state_digest() const;
  /// SHA-256 (hex) of the learned part only (item vectors and biases, user deltas, new-user
  /// vectors, learning-rate counters): what a guard rollback restores exactly.
  std::string learned_state_digest() const;
  /// Users whose per-user state is held now (never above memory.max_users).
  std::size_t tracked_users() const;
  /// User ids the engine holds now: tracked users plus those still referenced (holdout,
  /// the running cycle), at most 2 (memory.max_users + guard.holdout_size +
  /// guard.cycle_events) + 1024; beyond that the table is compacted (id_compaction.cpp).
  std::size_t user_ids_held() const;

  StreamCounters counters() const;
  const StreamConfig& config() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshrec
