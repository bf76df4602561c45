#pragma once
/// Prequential ("test then learn") replay of the stream part of a log, as in eALS (He et
/// al. 2016) and ISGD (Vinagre et al. 2014): for each stream event, in time order, first
/// rank the whole catalogue for its user (the user's already-seen items excluded) and score
/// the event's item, then apply the event.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cpu/experiment/replay_data.hpp"
#include "cpu/model/factor_model.hpp"
#include "cpu/stream/stream_config.hpp"
#include "cpu/stream/stream_engine.hpp"

namespace freshrec {

/// What serves the recommendations during a replay.
enum class ScorerKind : std::uint8_t {
  kEngine = 0,      ///< a StreamEngine on the nightly model (whatever its config enables)
  kFrozen = 1,      ///< the nightly model alone; users it does not know get the popularity
                    ///< ranking as of its cutoff (what a batch-only system serves)
  kPopularity = 2,  ///< event counts per item, updated with every applied event
};

/// "engine", "frozen", "popularity".
const char* scorer_kind_name(ScorerKind kind) noexcept;

/// How events are scored.
struct ReplayOptions {
  int k = 10;                         ///< cut-off of HR@K / recall@K / NDCG@K
  int windows = 10;                   ///< equal-count windows of stream events for per-window metrics
  bool skip_seen_targets = true;      ///< an event on an item the user already saw is applied, not scored
  std::size_t max_stream_events = 0;  ///< replay only the first N stream events (0 = all)
};

/// One variant, resolved: the scorer, its engine config and the nightly models it serves.
struct ReplaySpec {
  ScorerKind scorer = ScorerKind::kEngine;
  StreamConfig stream;  ///< engine knobs (kEngine only)
  /// models[0] serves from the split on; models[j] (j >= 1) is hot-swapped in just before
  /// the event with global index swap_at[j] is scored (simulated nightly retrains).
  std::vector<std::shared_ptr<const FactorModel>> models;
  std::vector<std::size_t> swap_at;  ///< same length as models; swap_at[0] = data.train_events
};

/// Metrics of one window of stream events.
struct WindowMetrics {
  double start_time = 0.0, end_time = 0.0;  ///< event times of the window's first and last event
  std::size_t events = 0;                   ///< stream events in the window
  std::size_t scored = 0;                   ///< of which scored
  double hr = 0.0, ndcg = 0.0;              ///< means over the scored events (recall@K = HR@K)
};

/// Outcome of one event: its rank among the recommendable unseen items, or -1 when the
/// item was not in the top K (or not recommendable at all).
struct EventOutcome {
  int rank = -1;
  bool hit(int k) const noexcept { return rank >= 0 && rank < k; }
};

/// Per-event metrics of a single-target event at cut-off k: HR@K = recall@K = 1 when the
/// target is in the top K (one relevant item, so recall's denominator is 1), NDCG@K =
/// 1/log2(rank + 2) (the ideal DCG of one relevant item is 1).
struct EventMetrics {
  double hr = 0.0, recall = 0.0, ndcg = 0.0;
};
EventMetrics event_metrics(int rank, int k) noexcept;

/// Rank of `target` among the candidates that are not excluded, by descending score, ties
/// to the smaller index; -1 when the target is excluded or its score is NaN. O(n).
int rank_of_target(const float* scores, const std::vector<char>& excluded, std::size_t n, std::size_t target);

/// Everything one replay measured.
struct ReplayResult {
  std::size_t stream_events = 0;     ///< events replayed
  std::size_t scored_events = 0;     ///< events scored (the others repeated a seen item)
  std::size_t rejected_events = 0;   ///< events the engine refused
  double hr = 0.0, recall = 0.0, ndcg = 0.0;  ///< means over scored events
  std::vector<WindowMetrics> windows;
  double wall_seconds = 0.0;         ///< the replay loop (scoring + applying + swaps)
  double events_per_second = 0.0;    ///< stream_events / wall_seconds
  double update_p50_us = 0.0, update_p99_us = 0.0;        ///< per-event apply latency
  double recommend_p50_us = 0.0, recommend_p99_us = 0.0;  ///< per-event ranking latency
  std::size_t swaps = 0;             ///< hot swaps done
  StreamCounters counters;           ///< engine counters at the end (kEngine only)
};

/// Called after each scored event with (global event index, outcome), before it is
/// applied — tests use it to check that scoring never sees the event itself.
using ReplayObserver = std::function<void(std::size_t event, const EventOutcome& outcome)>;

/// Replays the stream part of `data` (events from data.train_events on) under `spec`.
/// Deterministic given the data, the spec and the engine seed (timings aside).
ReplayResult run_replay(const ReplayData& data, const ReplaySpec& spec, const ReplayOptions& options,
                        const ReplayObserver& observer = {});

}  // namespace freshrec
