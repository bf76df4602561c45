// Per-event SGD on top of the nightly factors, and new-item initialisation.
//
// Hot path (one call of learn() per trained event, k = 64, 2 negatives): the user's vector
// p_u + d_u is formed once per event and kept in step after each pair instead of being
// re-read per pair; negatives are drawn up front so their rows can be prefetched while the
// positive pair runs; the learning-rate factor comes from a table; every k-loop is
// instantiated with k = 64 as a compile-time constant (fully unrolled, in registers) next to
// the generic path. Float operations and their order are those of the plain loops, so the
// results are the same as the straightforward code's.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cpu/stream/engine_core.hpp"
#include "cpu/stream/vec_ops.hpp"

namespace freshrec::stream {

namespace {
inline bool all_finite(const float* a, int k) {
  // x * 0 is 0 for finite x and NaN for NaN/Inf: one bad value makes the sum non-zero.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int d = 0;
  for (; d + 8 <= k; d += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[d + l] * 0.0f;
  for (; d < k; ++d) acc[d & 7] += a[d] * 0.0f;
  float s = 0.0f;
  for (float x : acc) s += x;
  return s == 0.0f;
}
// The step's new rows in place: d_u, q_i, and u = p_u + d_u kept in step. The rows never
// overlap (a user delta, an item row, writer scratch, a baseline row); saying so lets the
// compiler vectorise the loop, which it otherwise ran one float at a time for fear of
// aliasing (a third of sgd_step's time). Same float operations, same results.
inline void commit_rows(float* __restrict dlt, float* __restrict q, float* __restrict u, const float* __restrict p,
                        const float* __restrict nd, const float* __restrict nq, int k) {
  for (int d = 0; d < k; ++d) {
    dlt[d] = nd[d];
    q[d] = nq[d];
    u[d] = p[d] + nd[d];
  }
}
// Scale that clips a gradient of squared norm n2 to max_norm (1 = unchanged; g * 1 is exact).
inline float clip_scale(float n2, float max_norm) {
  return n2 > max_norm * max_norm ? max_norm / std::sqrt(n2) : 1.0f;
}
}  // namespace

void Core::user_vector(std::int32_t slot, std::uint32_t ukey, float* out) const {
  const std::int32_t r = user_base_row_[ukey];
  const float* p = r >= 0 ? base_->user_factors.row(r).data() : nullptr;
  const float* dlt = slot >= 0 ? &user_delta_[static_cast<std::size_t>(slot) * k_] : nullptr;
  // Branches hoisted out of the loops so each loop vectorises.
  if (p) std::copy_n(p, k_, out);
  else std::fill_n(out, k_, 0.0f);
  if (dlt)
    for (int d = 0; d < k_; ++d) out[d] += dlt[d];
}

void Core::refresh_norm(std::uint32_t item) {
  with_k(k_, [&](auto kk) {
    const int k = kk;
    const float* q = items_.row(item).data();
    item_norm_[item] = std::sqrt(dot(q, q, k));
    // Every change of an item row passes here: keep recommend's int8 copy in step.
    item_scale_[item] = quantise_row(q, k, &items_q8_[static_cast<std::size_t>(item) * k]);
  });
}

void Core::build_lr_table() {
  // decay^n for n = 0.. until it reaches the floor (std::pow itself, so the values are those
  // the per-event call gave); beyond the table the floor holds, or std::pow when the table
  // was capped before reaching it.
  const auto& s = cfg_.sgd;
  const double floor = static_cast<double>(s.min_learning_rate) / s.user_learning_rate;
  lr_table_.clear();
  lr_table_floor_ = false;
  constexpr std::uint32_t kCap = 1u << 16;
  for (std::uint32_t n = 0; n < kCap; ++n) {
    const double decayed = std::pow(static_cast<double>(s.lr_decay), static_cast<double>(n));
    if (decayed <= floor) {
      lr_table_floor_ = true;
      break;
    }
    lr_table_.push_back(static_cast<float>(decayed));
  }
}

float Core::learning_factor(std::int32_t slot) const {
  const std::uint32_t n = user_updates_[slot];
  if (n < lr_table_.size()) return lr_table_[n];
  const auto& s = cfg_.sgd;
  const double floor = static_cast<double>(s.min_learning_rate) / s.user_learning_rate;
  if (lr_table_floor_) return static_cast<float>(floor);
  const double decayed = std::pow(static_cast<double>(s.lr_decay), static_cast<double>(n));
  return static_cast<float>(std::max(decayed, floor));
}

// One squared-loss step on (user, item): loss = weight/2 (label - pred)^2 + reg/2 (|d_u|^2 +
// |e_i|^2), both sides from the same old values (the brief's simultaneous update). The pull
// is on the deltas only, so the fresh layer cannot drift far from the nightly factors.
// `u` holds p_u + d_u on entry and is kept equal to it on exit; `p` is the baseline row (or
// zeros for a new user).
template <typename KT>
bool Core::sgd_step(KT kk, std::int32_t slot, std::uint32_t ukey, std::uint32_t item, float label, float weight,
                    float lr_user, float lr_item, bool explicit_form, float* u, const float* p) {
  const int k = kk;
  float* dlt = &user_delta_[static_cast<std::size_t>(slot) * k];
  float* q = items_.row(item).data();
  const std::int32_t br = item_base_row_[item];
  const float* qb = br >= 0 ? base_->item_factors.row(br).data() : zeros_.data();
  const float reg = cfg_.sgd.regularization;

  float pred = dot(u, q, k);
  float bi_base = 0.0f;
  if (explicit_form) {
    const std::int32_t ubr = user_base_row_[ukey];
    const float bu = (ubr >= 0 && base_->user_bias.size() ? base_->user_bias[ubr] : 0.0f) + user_dbias_[slot];
    bi_base = br >= 0 && base_->item_bias.size() ? base_->item_bias[br] : 0.0f;
    pred += base_->global_bias + bu + item_bias_[item];
  }
  const float err = label - pred;
  const float we = weight * err;
  float* gu = scratch_gu_.data();
  float* gi = scratch_gi_.data();
  for (int d = 0; d < k; ++d) {
    gu[d] = -we * q[d] + reg * dlt[d];
    gi[d] = -we * u[d] + reg * (q[d] - qb[d]);
  }
  const float clip = cfg_.sgd.gradient_clip;
  const float su = clip_scale(dot(gu, gu, k), clip);
  const float si = clip_scale(dot(gi, gi, k), clip);
  float* nd = scratch_nd_.data();
  float* nq = scratch_nq_.data();
  for (int d = 0; d < k; ++d) {
    nd[d] = dlt[d] - lr_user * (gu[d] * su);
    nq[d] = q[d] - lr_item * (gi[d] * si);
  }
  float ndb = 0.0f, nbi = 0.0f;
  if (explicit_form) {
    ndb = user_dbias_[slot] - lr_user * (-we + reg * user_dbias_[slot]);
    nbi = item_bias_[item] - lr_item * (-we + reg * (item_bias_[item] - bi_base));
  }
  if (!all_finite(nd, k) || !all_finite(nq, k) || !std::isfinite(ndb) || !std::isfinite(nbi)) {
    ++counters_.non_finite_skipped;
    return false;
  }
  touch_user(slot);
  touch_item(item);
  commit_rows(dlt, q, u, p, nd, nq, k);
  if (explicit_form) {
    user_dbias_[slot] = ndb;
    item_bias_[item] = nbi;
  }
  refresh_norm(item);
  ++counters_.sgd_updates;
  return true;
}

// A new item starts at the mean of the vectors of the users who touched it (plus a small
// jitter derived from the seed and its key, so two new items touched by the same user do
// not coincide), until min_events users have been averaged in; SGD takes over after.
void Core::init_new_item(std::uint32_t item, const float* user_vec) {
  touch_item(item);
  float* q = items_.row(item).data();
  const std::uint32_t n = ++item_init_[item];
  if (n == 1) {
    std::uint64_t h = cfg_.seed ^ (0x6A09E667F3BCC909ULL * (item + 1));
    for (int d = 0; d < k_; ++d) {
      const double j = static_cast<double>(splitmix64(h) >> 11) * 0x1.0p-53 * 2.0 - 1.0;
      q[d] = user_vec[d] + static_cast<float>(0.01 * j);
    }
  } else {
    const float inv = 1.0f / static_cast<float>(n);
    for (int d = 0; d < k_; ++d) q[d] += (user_vec[d] - q[d]) * inv;
  }
  if (!all_finite(q, k_)) {  // cannot happen with finite users; never keep it if it does
    std::fill_n(q, k_, 0.0f);
    ++counters_.non_finite_skipped;
  }
  refresh_norm(item);
}

void Core::draw_negatives(const LearnRecord& r, Xoshiro256& rng) {
  const bool rating = static_cast<EventType>(r.type) == EventType::kRating;
  const int nn = rating || !cfg_.sgd.enabled || sampler_.empty() ? 0 : cfg_.sgd.negatives;
  neg_scratch_.resize(static_cast<std::size_t>(nn));
  const std::size_t row_bytes = sizeof(float) * static_cast<std::size_t>(k_);
  // Two passes: every draw's per-item entries start loading before the first of them (the
  // baseline row index) is read.
  for (int n = 0; n < nn; ++n) {
    const std::uint32_t j = sampler_.draw(rng);
    neg_scratch_[n] = j;
    if (j != r.item) prefetch_learned_item(j);
  }
  for (int n = 0; n < nn; ++n) {
    const std::uint32_t j = neg_scratch_[n];
    if (j == r.item) continue;
    const std::int32_t jb = item_base_row_[j];
    if (jb >= 0) prefetch_bytes(base_->item_factors.row(jb).data(), row_bytes);
  }
}

void Core::learn(const LearnRecord& r, LearnMode mode, Xoshiro256& rng, bool negatives_drawn) {
  const std::int32_t slot = user_slot_[r.user];
  if (slot < 0) return;  // evicted since (replay / rebuild): its fresh layer is gone anyway
  UserState& u = users_[slot];
  const auto type = static_cast<EventType>(r.type);
  const bool rating = type == EventType::kRating;
  const bool new_user = user_base_row_[r.user] < 0;
  const bool new_item = item_base_row_[r.item] < 0;
  const auto& sc = cfg_.sgd;

  if (mode == LearnMode::kLive && new_user) {
    // Fold-in history: ring of the last max_events (item, weight or rating).
    const float v = rating ? r.rating : sc.weights[type];
    const auto cap = static_cast<std::size_t>(cfg_.foldin.max_events);
    if (u.history.size() < cap) {
      u.history.emplace_back(r.item, v);
    } else {
      u.history[u.history_head] = {r.item, v};
      u.history_head = static_cast<std::uint32_t>((u.history_head + 1) % cap);
    }
  }
  if (mode == LearnMode::kLive) saturating_increment(u.learn_events);
  if (mode == LearnMode::kLive && new_user && u.learn_events <= static_cast<std::uint32_t>(cfg_.foldin.max_events))
    fold_in(slot);

  const bool item_initialising = new_item && item_init_[r.item] < static_cast<std::uint32_t>(cfg_.new_items.min_events);
  if (item_initialising && mode == LearnMode::kReplay) return;
  // p_u + d_u, formed once for the event and kept in step by each pair.
  float* uvec = scratch_u_.data();
  user_vector(slot, r.user, uvec);
  if (item_initialising) init_new_item(r.item, uvec);
  if (!sc.enabled) return;

  touch_user(slot);  // the update counter below is learned state too
  const float f = learning_factor(slot);
  const float lr_u = sc.user_learning_rate * f;
  const float lr_i = item_initialising ? 0.0f : sc.item_learning_rate * f;
  const std::int32_t ubr = user_base_row_[r.user];
  const float* p = ubr >= 0 ? base_->user_factors.row(ubr).data() : zeros_.data();
  with_k(k_, [&](auto kk) {
    if (rating) {
      if (explicit_) sgd_step(kk, slot, r.user, r.item, r.rating, 1.0f, lr_u, lr_i, true, uvec, p);
      else sgd_step(kk, slot, r.user, r.item, r.rating - sc.rating_offset, 1.0f, lr_u, lr_i, false, uvec, p);
      return;
    }
    // Negatives drawn before the positive step (the draws do not depend on it, so the RNG
    // sequence is unchanged) and their rows prefetched while it runs.
    if (!negatives_drawn) draw_negatives(r, rng);
    const int nn = static_cast<int>(neg_scratch_.size());
    sgd_step(kk, slot, r.user, r.item, 1.0f, sc.weights[type], lr_u, lr_i, false, uvec, p);
    for (int n = 0; n < nn; ++n) {
      const std::uint32_t j = neg_scratch_[n];
      if (j == r.item) continue;  // a collision is skipped, not redrawn: fixed RNG use per event
      sgd_step(kk, slot, r.user, j, 0.0f, 1.0f, lr_u, sc.item_learning_rate * f, false, uvec, p);
    }
  });
  saturating_increment(user_updates_[slot]);
}

void Core::learn_weak_negatives(std::uint32_t ukey, const std::uint32_t* items, std::size_t n) {
  const std::int32_t slot = user_slot_[ukey];
  if (slot < 0) return;  // evicted since the impression: its fresh layer is gone
  const auto& sc = cfg_.sgd;
  float* uvec = scratch_u_.data();
  user_vector(slot, ukey, uvec);  // kept equal to p_u + d_u by every step below
  // The user's rate without advancing its decay counter: a weak negative is not an interaction.
  const float f = learning_factor(slot);
  const float lr_u = sc.user_learning_rate * f;
  const std::int32_t ubr = user_base_row_[ukey];
  const float* p = ubr >= 0 ? base_->user_factors.row(ubr).data() : zeros_.data();
  with_k(k_, [&](auto kk) {
    for (std::size_t j = 0; j < n; ++j) {
      const std::uint32_t ikey = items[j];
      const bool item_initialising =
          item_base_row_[ikey] < 0 && item_init_[ikey] < static_cast<std::uint32_t>(cfg_.new_items.min_events);
      if (item_initialising && item_init_[ikey] == 0) continue;  // no vector yet to push away from
      const float lr_i = item_initialising ? 0.0f : sc.item_learning_rate * f;
      sgd_step(kk, slot, ukey, ikey, 0.0f, cfg_.explore.impression_weight, lr_u, lr_i, false, uvec, p);
    }
  });
}

}  // namespace freshrec::stream
