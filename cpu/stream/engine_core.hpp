#pragma once
/// Internal: the streaming state and the algorithms on it, without locking. StreamEngine
/// (stream_engine.cpp) owns one Core behind a shared_mutex; nothing outside cpu/stream
/// includes this header.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "cpu/data/event.hpp"
#include "cpu/data/id_map.hpp"
#include "cpu/model/factor_model.hpp"
#include "cpu/stream/alias_table.hpp"
#include "cpu/stream/dense_ids.hpp"
#include "cpu/stream/explorer.hpp"
#include "cpu/stream/rng.hpp"
#include "cpu/stream/session.hpp"
#include "cpu/stream/stream_config.hpp"
#include "cpu/stream/stream_engine.hpp"
#include "cpu/stream/windows.hpp"

namespace freshrec::stream {

inline constexpr std::uint32_t kNone = UINT32_MAX;

/// A trained event in compact form (journal, replay buffer, the cycle's new events):
/// stream keys, not strings, so storing one never allocates. 24 bytes.
struct LearnRecord {
  std::uint32_t user = 0;  ///< user key
  std::uint32_t item = 0;  ///< item key
  double time = 0.0;       ///< event time
  float rating = 0.0f;     ///< rating events only
  std::uint8_t type = 0;   ///< EventType
};

/// The journal and the replay buffer are rings of LearnRecord: appended until `cap` entries,
/// then the oldest (at `head`) is overwritten. cap 0 keeps nothing.
inline void ring_push(std::vector<LearnRecord>& ring, std::size_t& head, std::size_t cap, const LearnRecord& r) {
  if (ring.size() < cap) {
    ring.push_back(r);
  } else if (cap > 0) {
    ring[head] = r;
    head = (head + 1) % cap;
  }
}
/// Index of a ring's oldest entry (entry j in age order is ring[(oldest + j) % size]).
inline std::size_t ring_oldest(const std::vector<LearnRecord>& ring, std::size_t head, std::size_t cap) {
  return ring.size() < cap ? 0 : head;
}

/// A held-out interaction: never trained on, scored by the guard.
struct HoldoutPair {
  std::uint32_t user = 0, item = 0;
  std::uint32_t negative = kNone;  ///< sampled negative (label 0), kNone = none
  float label = 1.0f;
};

/// Per-user observations (not rolled back, carried over a hot swap).
/// Memory per tracked user (k = 64, defaults): this struct ~180 B + session lists at their
/// caps (20 embedding items * 24 B + 10 clicks * 24 B + 5 queries * 40 B + categories 8 B
/// each) ~ 1 KB + purchased (4 B each, <= 200) + windows 216 B + learned (k*4 + 8 = 264 B)
/// + fold-in history for users absent from the baseline (8 B * max_events = 400 B).
/// Typical active user: ~1.5 KB; plus ~130-200 B per user id held (id string, flat
/// index slots at load <= 1/2, slot/base-row tables).
struct UserState {
  std::uint32_t key = kNone;
  double last_time = 0.0;  ///< latest event time of the user (LRU order)
  std::uint64_t events = 0;
  std::uint32_t learn_events = 0;  ///< trained events (fold-in runs while <= foldin.max_events)
  Session session;
  std::vector<std::uint32_t> purchased;  ///< oldest first, bounded by session.max_purchased
  std::vector<std::pair<std::uint32_t, float>> history;  ///< new users: ring of (item, weight|rating)
  std::uint32_t history_head = 0;
  void reset(std::uint32_t new_key);
};

/// Baseline-derived constants, shared between Cores on the same baseline.
struct BaselineInfo {
  std::string hash;        ///< SHA-256 of the factor and bias bytes
  Eigen::MatrixXd gram;    ///< Q_baseᵀ Q_base (k x k)
};
std::shared_ptr<const BaselineInfo> make_baseline_info(const FactorModel& model);

enum class LearnMode { kLive, kReplay, kRebuild };

class Core {
 public:
  Core(const StreamConfig& config, std::shared_ptr<const FactorModel> baseline,
       std::shared_ptr<const BaselineInfo> info = nullptr);

  // --- engine.cpp
  ApplyResult apply(const Event& e);
  void swap_baseline(std::shared_ptr<const FactorModel> next);
  SessionFeatures features(std::string_view user_id) const;
  // --- recommend.cpp
  Recommendation recommend(const RecommendRequest& request) const;
  float score(std::string_view user_id, std::string_view item_id, std::optional<double> time) const;
  // --- serialization.cpp
  void save(std::ostream& out, bool learned_only = false) const;
  void restore(std::istream& in);

  const StreamConfig& config() const noexcept { return cfg_; }
  const std::shared_ptr<const FactorModel>& baseline() const noexcept { return base_; }
  const std::shared_ptr<const BaselineInfo>& baseline_info() const noexcept { return info_; }
  double watermark() const noexcept { return watermark_; }
  const StreamCounters& counters() const noexcept { return counters_; }
  std::size_t tracked_users() const noexcept { return tracked_; }
  std::size_t user_ids_held() const noexcept { return user_ids_.size(); }
  /// The bandit explorer, or null when explore.slots is 0.
  const Explorer* explorer() const noexcept { return explorer_.get(); }

 private:
  friend class CoreSerializer;
  // --- engine.cpp: tables
  std::uint32_t user_key(const std::string& id);
  std::uint32_t item_key(const std::string& id);
  void grow_items(std::size_t n);
  std::int32_t ensure_slot(std::uint32_t ukey);
  void evict_batch();
  /// Reserves the journal, replay ring and cycle buffers at their steady-state sizes.
  void reserve_buffers();
  // --- id_compaction.cpp
  /// Ids held before compact_user_ids() runs (a function of the config).
  std::size_t user_id_budget() const;
  /// Rebuilds the user id table with the ids still in use (tracked, in the holdout, in this
  /// cycle's events), renumbering every record; drops ring records of untracked users.
  /// Called only between events (no key is held by a caller).
  void compact_user_ids();
  void remember_purchase(UserState& u, std::uint32_t item);
  void push_journal(const LearnRecord& r);
  void prefetch_rows(std::uint32_t ukey, std::uint32_t item) const;
  /// Starts loading what an SGD step on `item` touches: its current row, int8 copy, norm,
  /// scale, bias, init count, undo stamp and baseline-row index (not the baseline row,
  /// whose address needs that index).
  void prefetch_learned_item(std::uint32_t item) const;
  void install_baseline(std::shared_ptr<const FactorModel> model, std::shared_ptr<const BaselineInfo> info);
  /// Feeds an accepted event to the explorer and trains the weak negatives it closes.
  void observe_exploration(const Event& e, std::uint32_t item = kNone);
  // --- online_sgd.cpp
  /// negatives_drawn: draw_negatives(r, rng) already ran for this record (live events).
  void learn(const LearnRecord& r, LearnMode mode, Xoshiro256& rng, bool negatives_drawn = false);
  /// The popularity-sampled negatives learn() trains for `r` into neg_scratch_ (none for
  /// ratings, with SGD off or an empty sampler), their rows prefetched.
  void draw_negatives(const LearnRecord& r, Xoshiro256& rng);
  template <typename KT>
  bool sgd_step(KT k, std::int32_t slot, std::uint32_t ukey, std::uint32_t item, float label, float weight,
                float lr_user, float lr_item, bool explicit_form, float* u, const float* p);
  void build_lr_table();
  void user_vector(std::int32_t slot, std::uint32_t ukey, float* out) const;
  void init_new_item(std::uint32_t item, const float* user_vec);
  void refresh_norm(std::uint32_t item);
  float learning_factor(std::int32_t slot) const;
  /// Impressions of `items[0..n)` to `user` closed without a click or purchase: per item one
  /// squared-loss step toward 0 with weight explore.impression_weight, in order (not
  /// journaled, part of the guard cycle's undo like any other step). The user's vector is
  /// formed once for the run and kept in step, as learn does. Users no longer tracked are
  /// skipped.
  void learn_weak_negatives(std::uint32_t ukey, const std::uint32_t* items, std::size_t n);
  /// The engine's key of explorer item `explorer_item`, kNone while the engine has never seen
  /// it (cached: item keys are never renumbered).
  std::uint32_t engine_item_for(std::uint32_t explorer_item);
  std::vector<float> lr_table_;   ///< lr_decay^n for n < size (derived from the config)
  bool lr_table_floor_ = false;   ///< beyond the table: the floor (else std::pow)
  // --- foldin.cpp
  void fold_in(std::int32_t slot);
  // --- guard.cpp
  bool divert_to_holdout(const LearnRecord& r);
  void touch_user(std::int32_t slot);
  void touch_item(std::uint32_t item);
  void forget_undo(std::int32_t slot);
  void end_cycle();
  /// A new cycle's bookkeeping: empty undo log, next cycle id, holdout prefix to validate.
  void open_cycle();
  /// open_cycle() and the starting loss by a full pass over that prefix.
  void start_cycle();
  void rollback();
  double holdout_loss(std::size_t n) const;
  void holdout_sums(std::size_t from, std::size_t to, double& sum, std::size_t& terms) const;
  void replay_step();
  void log_decision(bool accept, double before, double after);
  float model_score(std::uint32_t ukey, std::uint32_t item) const;
  void rebuild_sampler();
  void fill_sampler_weights();
  void begin_sampler_rebuild();
  void advance_sampler();
  std::size_t sampler_budget() const;
  // --- recommend.cpp
  /// The exact greedy top-k (recommend without exploration).
  Recommendation recommend_greedy(const RecommendRequest& request) const;
  /// The greedy score of a cold candidate for `request`, -inf when the request excludes it
  /// (page item, cart, purchases, a new item not yet recommendable, an unknown item).
  float explore_score(const RecommendRequest& request, const std::string& item, double t) const;
  struct RequestView;
  RequestView view_of(std::string_view user_id, double t, float beta_scale) const;
  float popularity(std::uint32_t item) const;
  float finish_score(const RequestView& v, std::uint32_t item, float dot) const;
  /// The blended score of one item, exact float32 (page_vec: the page item's row or null).
  float exact_score(const RequestView& v, std::uint32_t item, double t, float trend_w, const float* page_vec,
                    float page_norm) const;

  StreamConfig cfg_;
  int k_ = 0;
  std::shared_ptr<const FactorModel> base_;
  std::shared_ptr<const BaselineInfo> info_;
  bool explicit_ = false;

  // Ids. Keys are dense, first-seen order, never reused; baseline items come first.
  DenseIds user_ids_, item_ids_, categories_;
  std::vector<std::int32_t> user_slot_;      ///< per user key: slot or -1
  std::vector<std::int32_t> user_base_row_;  ///< per user key: baseline row or -1
  std::vector<std::int32_t> item_base_row_;  ///< per item key: baseline row or -1

  // Users (slots reused after eviction).
  std::vector<UserState> users_;
  std::vector<std::int32_t> free_slots_;
  std::size_t tracked_ = 0;
  WindowTable user_windows_;

  // Items: observations.
  std::size_t n_items_ = 0;               ///< item keys in use (rows of items_ in use)
  std::vector<std::uint32_t> item_events_;
  std::uint32_t max_item_events_ = 0;     ///< max of item_events_ (popularity scale), derived
  double lp_max_ = 0.0;                   ///< log1p(max_item_events_), derived
  void count_item_event(std::uint32_t item);
  WindowTable item_windows_;

  // Learned layer.
  FactorMatrix items_;                    ///< current item vectors q_i + e_i, row = item key (capacity >= n_items_)
  std::vector<float> item_bias_;          ///< current item bias
  std::vector<std::uint32_t> item_init_;  ///< new items: user vectors averaged in so far
  std::vector<float> item_norm_;          ///< |items_.row(i)|, kept in step (cosine boosts)
  // Int8 copy of items_ for recommend's first pass (derived, kept in step by refresh_norm):
  // row i ~ item_scale_[i] * items_q8_[i*k .. i*k+k). 4x less memory traffic than the floats;
  // exactness comes from rescoring a provably safe candidate superset (recommend.cpp).
  std::vector<std::int8_t> items_q8_;
  std::vector<float> item_scale_;         ///< max |q_id| / 127 per row (0 for a zero row)
  std::vector<double> item_lp_;           ///< log1p(item_events_[i]) (derived, popularity)
  std::vector<float> user_delta_;         ///< per slot, k floats: d_u (new users: whole vector)
  std::vector<float> user_dbias_;         ///< per slot: explicit user-bias delta
  std::vector<std::uint32_t> user_updates_;  ///< per slot: SGD updates so far (lr decay)

  // Sampling.
  Xoshiro256 rng_;
  AliasTable sampler_;
  AliasTable sampler_next_;          ///< stepped rebuild in progress (weights: sampler_weights_)
  std::uint64_t sampler_steps_ = 0;  ///< steps of that rebuild done so far (checkpointed)
  std::uint64_t swaps_ = 0;

  // Guard.
  std::vector<HoldoutPair> holdout_;
  std::vector<LearnRecord> replay_;   ///< ring, oldest at replay_head_ once full
  std::size_t replay_head_ = 0;
  std::vector<LearnRecord> pending_;  ///< this cycle's trained events (join replay_ at cycle end)
  std::uint64_t cycle_id_ = 1;
  std::uint64_t cycle_events_ = 0;
  std::size_t validate_n_ = 0;
  double loss_before_ = 0.0;
  struct UserUndo { std::uint32_t key; float dbias; std::uint32_t updates; std::size_t offset; };
  struct ItemUndo { std::uint32_t item; float bias; std::uint32_t init; std::size_t offset; };
  std::vector<UserUndo> undo_users_;
  std::vector<ItemUndo> undo_items_;
  std::vector<float> undo_floats_;
  std::vector<std::uint64_t> user_stamp_;   ///< per slot: cycle of first touch
  std::vector<std::uint32_t> user_undo_at_; ///< per slot: index in undo_users_
  std::vector<std::uint64_t> item_stamp_;   ///< per item key: cycle of first touch
  /// An eviction happened since the cycle started (conservatively true after a restore):
  /// a rolled-back state then differs from the start state, so its loss is recomputed.
  bool evicted_in_cycle_ = true;
  std::vector<double> sampler_weights_;     ///< rebuild_sampler's buffer (kept between cycles)
  // Decision report rate limit (wall clock; reporting only, never part of the state).
  bool logged_any_ = false;
  double last_log_wall_ = 0.0;
  std::uint64_t log_suppressed_ = 0;

  // Journal for hot swaps (ring).
  std::vector<LearnRecord> journal_;
  std::size_t journal_head_ = 0;

  // Bandit exploration (null when explore.slots is 0): checkpointed and digested with the rest.
  std::unique_ptr<Explorer> explorer_;
  std::vector<Explorer::WeakNegative> weak_scratch_;
  std::vector<std::uint32_t> weak_items_;  ///< observe_exploration scratch: one user's engine item keys
  std::vector<std::uint32_t> explorer_item_key_;  ///< explorer item key -> engine item key (derived)

  bool seen_any_ = false;
  double watermark_ = 0.0;
  StreamCounters counters_;

  // Writer scratch (never touched by readers).
  std::vector<float> scratch_u_, scratch_gu_, scratch_gi_, scratch_nd_, scratch_nq_;
  std::vector<float> zeros_;                 ///< k zeros: the baseline row of a stream-born user/item
  std::vector<std::uint32_t> neg_scratch_;   ///< this event's negatives
  // fold_in scratch (k x k system in double, the user's aggregated history).
  Eigen::MatrixXd fold_a_;
  Eigen::VectorXd fold_b_, fold_x_, fold_y_, fold_yb_;
  std::vector<std::pair<std::uint32_t, float>> fold_agg_, fold_merged_;
};

}  // namespace freshrec::stream
