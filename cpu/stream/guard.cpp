// The stability guard (the brief's OnlineLearningService): holdout, replay buffer, update
// cycles validated on the holdout, and the undo log that makes a rollback exact.
//
// Freshness stays per event: every trained event updates the user's delta at once. The
// guard works on cycles of cycle_events events: each learned row (user delta/bias/update
// counter, item vector/bias/init counter) is copied into the undo log the first time the
// cycle touches it. The cycle's batch is its own events plus replay_ratio old events drawn
// from the buffer; the replay share is trained interleaved with the live events (after
// each trained event, as many draws as bring the cycle's count to floor(n_new * ratio / (1 -
// ratio)), the size the batch at the cycle's end used to have), so the cycle's end does no
// training under the writer lock. At the cycle's end the holdout loss is compared with the
// loss at its start, and the cycle is accepted or every learned row it touched is restored
// byte for byte. Everything is decided at fixed event counts, never by wall time.
// Observations (sessions, windows, counts, the RNG, the buffers) are never rolled back.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "cpu/stream/engine_core.hpp"
#include "cpu/stream/vec_ops.hpp"

namespace freshrec::stream {

bool Core::divert_to_holdout(const LearnRecord& r) {
  const auto& g = cfg_.guard;
  if (!g.enabled || holdout_.size() >= g.holdout_size || g.holdout_probability <= 0.0) return false;
  if (!(rng_.uniform() < g.holdout_probability)) return false;
  HoldoutPair h;
  h.user = r.user;
  h.item = r.item;
  const bool rating = static_cast<EventType>(r.type) == EventType::kRating;
  if (rating) {
    h.label = explicit_ ? r.rating : r.rating - cfg_.sgd.rating_offset;
  } else {
    h.label = 1.0f;
    if (!sampler_.empty()) {
      const std::uint32_t j = sampler_.draw(rng_);
      if (j != r.item) h.negative = j;
    }
  }
  holdout_.push_back(h);
  return true;
}

void Core::touch_user(std::int32_t slot) {
  if (!cfg_.guard.enabled || user_stamp_[slot] == cycle_id_) return;
  user_stamp_[slot] = cycle_id_;
  user_undo_at_[slot] = static_cast<std::uint32_t>(undo_users_.size());
  const std::size_t off = undo_floats_.size();
  const float* d = &user_delta_[static_cast<std::size_t>(slot) * k_];
  undo_floats_.insert(undo_floats_.end(), d, d + k_);
  undo_users_.push_back({users_[slot].key, user_dbias_[slot], user_updates_[slot], off});
}

void Core::touch_item(std::uint32_t item) {
  if (!cfg_.guard.enabled || item_stamp_[item] == cycle_id_) return;
  item_stamp_[item] = cycle_id_;
  const std::size_t off = undo_floats_.size();
  const float* q = items_.row(item).data();
  undo_floats_.insert(undo_floats_.end(), q, q + k_);
  undo_items_.push_back({item, item_bias_[item], item_init_[item], off});
}

void Core::forget_undo(std::int32_t slot) {
  // An evicted user's learned state is gone; its undo entry must not land on a later
  // occupant of the key.
  if (user_stamp_[slot] == cycle_id_) undo_users_[user_undo_at_[slot]].key = kNone;
  user_stamp_[slot] = 0;
}

void Core::rollback() {
  for (const UserUndo& e : undo_users_) {
    if (e.key == kNone) continue;
    const std::int32_t slot = user_slot_[e.key];
    if (slot < 0) continue;
    std::copy_n(&undo_floats_[e.offset], k_, &user_delta_[static_cast<std::size_t>(slot) * k_]);
    user_dbias_[slot] = e.dbias;
    user_updates_[slot] = e.updates;
  }
  for (const ItemUndo& e : undo_items_) {
    std::copy_n(&undo_floats_[e.offset], k_, items_.row(e.item).data());
    item_bias_[e.item] = e.bias;
    item_init_[e.item] = e.init;
    refresh_norm(e.item);
  }
}

float Core::model_score(std::uint32_t ukey, std::uint32_t item) const {
  // The unblended model: (p_u + d_u)·(q_i + e_i), plus the biases of an explicit model.
  const std::int32_t slot = user_slot_[ukey];
  const std::int32_t r = user_base_row_[ukey];
  const float* q = items_.row(item).data();
  const float* p = r >= 0 ? base_->user_factors.row(r).data() : zeros_.data();
  const float* dlt = slot >= 0 ? &user_delta_[static_cast<std::size_t>(slot) * k_] : zeros_.data();
  float s = with_k(k_, [&](auto kk) {
    const int k = kk;
    float acc = 0.0f;
    for (int d = 0; d < k; ++d) acc += (p[d] + dlt[d]) * q[d];
    return acc;
  });
  if (explicit_) {
    s += base_->global_bias + item_bias_[item] + (slot >= 0 ? user_dbias_[slot] : 0.0f);
    if (r >= 0 && base_->user_bias.size()) s += base_->user_bias[r];
  }
  return s;
}

void Core::holdout_sums(std::size_t from, std::size_t to, double& sum, std::size_t& terms) const {
  // Sequential in holdout order: continuing a prefix's sums gives the same bits as one pass.
  // Pairs are scattered over the whole user and item tables: start loading a few pairs
  // ahead (this runs under the writer lock at every cycle's end, readers waiting).
  constexpr std::size_t kAhead = 8;
  const std::size_t rowf = sizeof(float) * static_cast<std::size_t>(k_);
  auto hint = [&](const HoldoutPair& h) {
    __builtin_prefetch(&user_slot_[h.user]);
    __builtin_prefetch(&user_base_row_[h.user]);
    if (h.negative != kNone) prefetch_bytes(items_.row(h.negative).data(), rowf);
  };
  for (std::size_t j = from; j < std::min(to, from + 2 * kAhead); ++j) hint(holdout_[j]);
  for (std::size_t j = from; j < to; ++j) {
    if (j + 2 * kAhead < to) hint(holdout_[j + 2 * kAhead]);
    if (j + kAhead < to) prefetch_rows(holdout_[j + kAhead].user, holdout_[j + kAhead].item);
    const HoldoutPair& h = holdout_[j];
    const double e = static_cast<double>(model_score(h.user, h.item)) - h.label;
    sum += e * e;
    ++terms;
    if (h.negative != kNone) {
      const double en = model_score(h.user, h.negative);
      sum += en * en;
      ++terms;
    }
  }
}

double Core::holdout_loss(std::size_t n) const {
  double sum = 0.0;
  std::size_t terms = 0;
  holdout_sums(0, n, sum, terms);
  return terms ? sum / static_cast<double>(terms) : 0.0;
}

void Core::fill_sampler_weights() {
  // Popularity = the stream's lifetime event count per item, +1 smoothing (the nightly
  // snapshot carries no counts), as of the cycle's end.
  sampler_weights_.resize(n_items_);
  for (std::size_t i = 0; i < n_items_; ++i) sampler_weights_[i] = 1.0 + static_cast<double>(item_events_[i]);
}

void Core::rebuild_sampler() {
  // At once (construction, hot swap): no stepped build may be pending.
  sampler_next_.cancel_build();
  sampler_steps_ = 0;
  fill_sampler_weights();
  sampler_.build(sampler_weights_);
}

std::size_t Core::sampler_budget() const {
  // A whole build is <= 4 n units, spread over about four cycles: a small, even slice per
  // event (20 units at 100K items and 5000-event cycles) instead of a burst, and a
  // popularity table at most ~8 cycles old — negatives need the shape of popularity, not
  // its last few thousand events.
  const std::size_t span = std::max<std::size_t>(1, 4 * cfg_.guard.cycle_events);
  return std::max<std::size_t>(16, (4 * sampler_weights_.size() + span - 1) / span);
}

void Core::begin_sampler_rebuild() {
  // O(n_items) per rebuild, spread over the next events (a bounded slice each, see
  // advance_sampler) instead of one stall under the writer lock at the cycle's end. The new
  // table takes over after a fixed number of events (a function of n_items and the config),
  // so the draws stay a function of the event sequence. A build still running at a cycle's
  // end simply goes on; the next one starts at the first cycle end after it finished.
  if (sampler_next_.building()) return;
  fill_sampler_weights();
  sampler_next_.begin_build(sampler_weights_);
  sampler_steps_ = 0;
}

void Core::advance_sampler() {
  ++sampler_steps_;
  if (sampler_next_.build_step(sampler_budget())) {
    sampler_.swap(sampler_next_);
    sampler_steps_ = 0;
  }
}

void Core::open_cycle() {
  undo_users_.clear();
  undo_items_.clear();
  undo_floats_.clear();
  ++cycle_id_;
  cycle_events_ = 0;
  validate_n_ = holdout_.size();
  evicted_in_cycle_ = false;
}

void Core::start_cycle() {
  open_cycle();
  loss_before_ = holdout_loss(validate_n_);
}

// After each trained live event: the replay draws that keep the cycle's replay count at
// floor(n_new * ratio / (1 - ratio)). Within a cycle the buffer does not change (the cycle's
// events join it at the end), so the count done so far is a function of pending_.size()
// alone and a restored checkpoint continues exactly.
void Core::replay_step() {
  const auto& g = cfg_.guard;
  if (replay_.empty() || !(g.replay_ratio > 0.0) || pending_.empty()) return;
  auto due = [&g](std::size_t n) {
    return static_cast<std::size_t>(std::floor(static_cast<double>(n) * g.replay_ratio / (1.0 - g.replay_ratio)));
  };
  const std::size_t n = pending_.size();
  const std::size_t draws = due(n) - due(n - 1);
  // Draw by logical position (oldest = 0) so a restored ring, written oldest first, draws
  // the same records.
  const auto size = static_cast<std::uint32_t>(replay_.size());
  for (std::size_t j = 0; j < draws; ++j) {
    const LearnRecord& r = replay_[(replay_head_ + rng_.below(size)) % size];
    // An old event's rows are cold: start them loading before learn() needs the first.
    if (user_slot_[r.user] >= 0) prefetch_rows(r.user, r.item);
    learn(r, LearnMode::kReplay, rng_);
  }
}

void Core::log_decision(bool accept, double before, double after) {
  const auto& g = cfg_.guard;
  if (!g.log_decisions) return;
  // Wall-clock rate limit of the report only; the decisions never depend on it.
  const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (logged_any_ && now - last_log_wall_ < g.log_min_interval_seconds) {
    ++log_suppressed_;
    return;
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "freshrec-stream guard: cycle %s: holdout loss %.6f -> %.6f (n=%zu, tolerance %.3g; %llu accepts, "
                "%llu rollbacks so far, %llu lines suppressed)",
                accept ? "accepted" : "rolled back", before, after, validate_n_, g.tolerance,
                static_cast<unsigned long long>(counters_.guard_accepts),
                static_cast<unsigned long long>(counters_.guard_rollbacks),
                static_cast<unsigned long long>(log_suppressed_));
  logged_any_ = true;
  last_log_wall_ = now;
  log_suppressed_ = 0;
  if (g.decision_log) g.decision_log(line);
  else std::fprintf(stderr, "%s\n", line);
}

void Core::end_cycle() {
  const auto& g = cfg_.guard;
  if (!g.enabled) {
    begin_sampler_rebuild();
    start_cycle();
    return;
  }
  // The replay share was trained along the way (replay_step): only the decision is left.
  const std::size_t n_old = validate_n_;
  double sum = 0.0;
  std::size_t terms = 0;
  holdout_sums(0, n_old, sum, terms);
  const double loss_after = terms ? sum / static_cast<double>(terms) : 0.0;
  const bool accept = !(loss_after > loss_before_ + g.tolerance);
  const double loss_start = loss_before_;
  if (accept) {
    ++counters_.guard_accepts;
    counters_.last_guard_loss = loss_after;
  } else {
    rollback();
    ++counters_.guard_rollbacks;
    counters_.last_guard_loss = loss_before_;
  }
  log_decision(accept, loss_start, loss_after);
  // The cycle's events join the buffer after its replay draws (as in the brief).
  for (const LearnRecord& r : pending_) ring_push(replay_, replay_head_, g.replay_capacity, r);
  pending_.clear();
  begin_sampler_rebuild();

  // Next cycle, its starting loss from what is known instead of a second pass over the
  // holdout: the state is the accepted one (whose prefix sums were just taken) or exactly
  // the rolled-back start (whose loss over the same prefix is loss_before_). Same bits as
  // start_cycle()'s full pass.
  const bool evicted = evicted_in_cycle_;
  open_cycle();
  if (accept) {
    holdout_sums(n_old, validate_n_, sum, terms);
    loss_before_ = terms ? sum / static_cast<double>(terms) : 0.0;
  } else if (validate_n_ != n_old || evicted) {
    // An eviction during the cycle dropped a delta the start state had: not the same state.
    loss_before_ = holdout_loss(validate_n_);
  }
}

}  // namespace freshrec::stream
