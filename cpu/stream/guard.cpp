// The stability guard (the brief's OnlineLearningService): holdout, replay buffer, update
// cycles validated on the holdout, and the undo log that makes a rollback exact.
//
// Freshness stays per event: every trained event updates the user's delta at once. The
// guard works on cycles of cycle_events events: each learned row (user delta/bias/update
// counter, item vector/bias/init counter) is copied into the undo log the first time the
// cycle touches it. At the cycle's end a replay batch from the buffer is trained (so the
// batch is replay_ratio old events and the rest this cycle's), the holdout loss is compared
// with the loss at the cycle's start, and the cycle is accepted or every learned row it
// touched is restored byte for byte. Observations (sessions, windows, counts, the RNG, the
// buffers) are never rolled back.
#include <cmath>
#include <cstdio>

#include "cpu/stream/engine_core.hpp"

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
  const float* p = r >= 0 ? base_->user_factors.row(r).data() : nullptr;
  const float* dlt = slot >= 0 ? &user_delta_[static_cast<std::size_t>(slot) * k_] : nullptr;
  float s = 0.0f;
  for (int d = 0; d < k_; ++d) s += ((p ? p[d] : 0.0f) + (dlt ? dlt[d] : 0.0f)) * q[d];
  if (explicit_) {
    s += base_->global_bias + item_bias_[item] + (slot >= 0 ? user_dbias_[slot] : 0.0f);
    if (r >= 0 && base_->user_bias.size()) s += base_->user_bias[r];
  }
  return s;
}

double Core::holdout_loss(std::size_t n) const {
  double sum = 0.0;
  std::size_t terms = 0;
  for (std::size_t j = 0; j < n; ++j) {
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
  return terms ? sum / static_cast<double>(terms) : 0.0;
}

void Core::rebuild_sampler() {
  // Popularity = the stream's lifetime event count per item, +1 smoothing (the nightly
  // snapshot carries no counts). Rebuilt once per cycle: O(n_items) every cycle_events
  // events, O(1) per draw in between.
  std::vector<double> w(n_items_);
  for (std::size_t i = 0; i < n_items_; ++i) w[i] = 1.0 + static_cast<double>(item_events_[i]);
  sampler_.build(w);
}

void Core::start_cycle() {
  undo_users_.clear();
  undo_items_.clear();
  undo_floats_.clear();
  ++cycle_id_;
  cycle_events_ = 0;
  validate_n_ = holdout_.size();
  loss_before_ = holdout_loss(validate_n_);
}

void Core::end_cycle() {
  const auto& g = cfg_.guard;
  if (g.enabled) {
    // Replay share of the batch: n_r / (n_new + n_r) = replay_ratio.
    if (!replay_.empty() && g.replay_ratio > 0.0 && !pending_.empty()) {
      const auto n_r = static_cast<std::size_t>(
          std::floor(static_cast<double>(pending_.size()) * g.replay_ratio / (1.0 - g.replay_ratio)));
      // Draw by logical position (oldest = 0) so a restored ring, written oldest first,
      // draws the same records.
      const auto size = static_cast<std::uint32_t>(replay_.size());
      for (std::size_t j = 0; j < n_r; ++j)
        learn(replay_[(replay_head_ + rng_.below(size)) % size], LearnMode::kReplay, rng_);
    }
    const double loss_after = holdout_loss(validate_n_);
    const bool accept = !(loss_after > loss_before_ + g.tolerance);
    if (accept) {
      ++counters_.guard_accepts;
      counters_.last_guard_loss = loss_after;
    } else {
      rollback();
      ++counters_.guard_rollbacks;
      counters_.last_guard_loss = loss_before_;
    }
    if (g.log_decisions)
      std::fprintf(stderr, "freshrec-stream guard: cycle %s: holdout loss %.6f -> %.6f (n=%zu, tolerance %.3g)\n",
                   accept ? "accepted" : "rolled back", loss_before_, loss_after, validate_n_, g.tolerance);
    // The cycle's events join the buffer after the replay draw (as in the brief).
    for (const LearnRecord& r : pending_) {
      if (replay_.size() < g.replay_capacity) {
        replay_.push_back(r);
      } else if (g.replay_capacity > 0) {
        replay_[replay_head_] = r;
        replay_head_ = (replay_head_ + 1) % g.replay_capacity;
      }
    }
    pending_.clear();
  }
  rebuild_sampler();
  start_cycle();
}

}  // namespace freshrec::stream
