// Core: id tables, per-user slots with LRU eviction, the apply path, hot swap, features.
#include <algorithm>
#include <cmath>

#include "cpu/data/timestamp_parse.hpp"
#include "cpu/stream/engine_core.hpp"
#include "cpu/stream/vec_ops.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/sha256.hpp"

namespace freshrec::stream {

void UserState::reset(std::uint32_t new_key) {
  key = new_key;
  last_time = 0.0;
  events = 0;
  learn_events = 0;
  session.reset();
  purchased.clear();
  history.clear();
  history_head = 0;
}

std::shared_ptr<const BaselineInfo> make_baseline_info(const FactorModel& m) {
  auto info = std::make_shared<BaselineInfo>();
  Sha256 h;
  const std::int32_t header[4] = {static_cast<std::int32_t>(m.kind), m.n_users(), m.n_items(), m.factors()};
  h.update(header, sizeof header);
  h.update(m.user_factors.data(), sizeof(float) * m.user_factors.size());
  h.update(m.item_factors.data(), sizeof(float) * m.item_factors.size());
  h.update(m.user_bias.data(), sizeof(float) * m.user_bias.size());
  h.update(m.item_bias.data(), sizeof(float) * m.item_bias.size());
  h.update(&m.global_bias, sizeof m.global_bias);
  info->hash = h.hex_digest();
  // Float GEMM (fast), accumulated per block by Eigen; the solve itself runs in double.
  const Eigen::MatrixXf g = m.item_factors.transpose() * m.item_factors;
  info->gram = g.cast<double>();
  return info;
}

namespace {
void validate(const StreamConfig& c) {
  auto bad = [](const char* key, const char* why) {
    throw InputError(std::string("stream config: ") + key + " " + why);
  };
  if (!(c.session.gap_seconds > 0)) bad("session.gap_seconds", "must be > 0");
  if (c.session.recent_clicked < 0) bad("session.recent_clicked", "must be >= 0");
  if (c.session.embedding_items < 0) bad("session.embedding_items", "must be >= 0");
  if (!(c.session.lambda_session >= 0)) bad("session.lambda_session", "must be >= 0");
  for (double s : c.windows.seconds)
    if (!(s > 0) || !std::isfinite(s)) bad("windows.seconds", "entries must be finite and > 0");
    else if (kMaxEventTimestamp / (s / WindowTable::kBuckets) > 0x1p62)
      bad("windows.seconds", "entries must be >= 16 * 2100-01-01 / 2^62 s (~1.5e-8 s): bucket indexes are int64");
  if (c.sgd.negatives < 0) bad("sgd.negatives", "must be >= 0");
  if (!(c.sgd.user_learning_rate > 0)) bad("sgd.user_learning_rate", "must be > 0");
  if (!(c.sgd.gradient_clip > 0)) bad("sgd.gradient_clip", "must be > 0");
  if (c.foldin.max_events < 1) bad("foldin.max_events", "must be >= 1");
  if (!(c.foldin.regularization > 0)) bad("foldin.regularization", "must be > 0");
  if (!(c.guard.replay_ratio >= 0 && c.guard.replay_ratio < 1)) bad("guard.replay_ratio", "must be in [0, 1)");
  if (c.guard.cycle_events < 1) bad("guard.cycle_events", "must be >= 1");
  if (c.memory.max_users < 1) bad("memory.max_users", "must be >= 1");
  const auto& x = c.explore;
  if (x.slots < 0) bad("explore.slots", "must be >= 0");
  if (!(x.epsilon >= 0 && x.epsilon <= 1)) bad("explore.epsilon", "must be in [0, 1]");
  if (!(x.prior_precision > 0) || !std::isfinite(x.prior_precision)) bad("explore.prior_precision", "must be finite and > 0");
  if (!(x.noise_variance > 0) || !std::isfinite(x.noise_variance)) bad("explore.noise_variance", "must be finite and > 0");
  if (!(x.item_sigma > 0) || !std::isfinite(x.item_sigma)) bad("explore.item_sigma", "must be finite and > 0");
  if (!(x.reward_window_seconds > 0) || !std::isfinite(x.reward_window_seconds))
    bad("explore.reward_window_seconds", "must be finite and > 0");
  if (!(x.impression_weight >= 0) || !std::isfinite(x.impression_weight)) bad("explore.impression_weight", "must be finite and >= 0");
  if (x.max_pending_impressions < 1) bad("explore.max_pending_impressions", "must be >= 1");
  if (x.max_items_per_impression < 1) bad("explore.max_items_per_impression", "must be >= 1");
}
// The baseline's shape and values as the engine reads them (snapshots are checked on load;
// an in-process caller's model is not): user rows of k floats (a 0-row user matrix may be
// 0x0), biases empty or one per row, one id per row, every value finite. A violation read
// past a row or put a NaN into the item table (and its int8 copy).
void validate_baseline(const FactorModel& m) {
  auto bad = [](const std::string& why) { throw InputError("StreamEngine: baseline model " + why); };
  const Eigen::Index k = m.item_factors.cols();
  const Eigen::Index nu = m.user_factors.rows(), ni = m.item_factors.rows();
  if (m.user_factors.cols() != k && nu > 0)
    bad("has " + std::to_string(m.user_factors.cols()) + " user factor columns, " + std::to_string(k) + " item ones");
  if (m.user_bias.size() != 0 && m.user_bias.size() != nu) bad("user_bias size differs from its user count");
  if (m.item_bias.size() != 0 && m.item_bias.size() != ni) bad("item_bias size differs from its item count");
  if (static_cast<Eigen::Index>(m.user_ids.size()) != nu) bad("user_ids size differs from its user count");
  if (static_cast<Eigen::Index>(m.item_ids.size()) != ni) bad("item_ids size differs from its item count");
  if (!m.user_factors.allFinite() || !m.item_factors.allFinite() || !m.user_bias.allFinite() ||
      !m.item_bias.allFinite() || !std::isfinite(m.global_bias))
    bad("holds a non-finite value");
}
}  // namespace

Core::Core(const StreamConfig& config, std::shared_ptr<const FactorModel> baseline,
           std::shared_ptr<const BaselineInfo> info)
    : cfg_(config), user_windows_(config.windows.seconds), item_windows_(config.windows.seconds),
      rng_(config.seed) {
  validate(cfg_);
  build_lr_table();
  if (!baseline) throw InputError("StreamEngine: baseline model is null");
  validate_baseline(*baseline);
  install_baseline(std::move(baseline), std::move(info));
  // Per-user arrays grow one slot per new user: reserving for the nightly model's users (the
  // expected active set) up front saves the copies of each doubling and their page faults
  // mid-stream. Address space only; pages are committed as slots are used. Ordinary pages:
  // with THP defrag=madvise, each first touch of a huge-page-advised 2 MiB region here
  // compacted memory in the fault, a 2-6 ms stall of one event (and of every reader) per
  // 8K new users, with no measurable throughput gain (stream_bench, 2026-11-28).
  const std::size_t expect = std::min<std::size_t>(cfg_.memory.max_users, static_cast<std::size_t>(base_->n_users()) + 1024);
  users_.reserve(expect);
  // The id table too: each doubling rehashes every id seen so far (6 ms at 64K users).
  user_ids_.reserve(expect);
  user_slot_.reserve(expect);
  user_base_row_.reserve(expect);
  user_delta_.reserve(expect * static_cast<std::size_t>(k_));
  user_dbias_.reserve(expect);
  user_updates_.reserve(expect);
  user_stamp_.reserve(expect);
  user_undo_at_.reserve(expect);
  user_windows_.reserve(expect);
  reserve_buffers();
  if (cfg_.explore.slots > 0) {
    ExplorerConfig ec;
    ec.explore = cfg_.explore;
    ec.seed = cfg_.seed;
    explorer_ = std::make_unique<Explorer>(ec);
  }
  rebuild_sampler();
  start_cycle();
}

void Core::reserve_buffers() {
  // The rings and per-cycle buffers grow to fixed sizes; growing them by doubling copied up
  // to 24 MB (the journal) under the writer lock, a multi-millisecond stall for every reader.
  // Address space only, bounded for absurd configured capacities; written in order, so
  // ordinary pages (a huge page's first touch can stall for milliseconds).
  constexpr std::size_t kMaxReserve = std::size_t{1} << 22;
  journal_.reserve(std::min(cfg_.journal_capacity, kMaxReserve));
  replay_.reserve(std::min(cfg_.guard.replay_capacity, kMaxReserve));
  pending_.reserve(std::min(cfg_.guard.cycle_events, kMaxReserve));
  holdout_.reserve(std::min(cfg_.guard.holdout_size, kMaxReserve));
  // The undo log holds one row per user and item a cycle first touches: at most
  // (1 user + 1 item + negatives) rows per trained event, far fewer once rows repeat.
  if (cfg_.guard.enabled) {
    const std::size_t rows = std::min(cfg_.guard.cycle_events, kMaxReserve) * (2 + static_cast<std::size_t>(cfg_.sgd.negatives));
    undo_floats_.reserve(std::min(rows * static_cast<std::size_t>(k_), std::size_t{16} << 20));
  }
}

void Core::observe_exploration(const Event& e, std::uint32_t item) {
  if (!explorer_) return;
  weak_scratch_.clear();
  std::optional<bool> in_baseline;
  if (item != kNone) in_baseline = item_base_row_[item] >= 0;
  explorer_->observe(e, *base_, &weak_scratch_, in_baseline);
  // Explicit baselines learn from ratings only; an impression says nothing about a rating.
  if (cfg_.explore.impression_weight > 0.0f && cfg_.sgd.enabled && !explicit_) {
    // One user's weak negatives come in a row: one id lookup and one user vector per run.
    for (std::size_t j = 0; j < weak_scratch_.size();) {
      const std::uint32_t run_user = weak_scratch_[j].user;
      weak_items_.clear();
      for (; j < weak_scratch_.size() && weak_scratch_[j].user == run_user; ++j) {
        const std::uint32_t ikey = engine_item_for(weak_scratch_[j].item);
        if (ikey == kNone) continue;
        prefetch_learned_item(ikey);  // the rows of a run are scattered: overlap their misses
        weak_items_.push_back(ikey);
      }
      if (weak_items_.empty()) continue;
      if (const auto ukey = user_ids_.find(explorer_->user_name(run_user)))
        learn_weak_negatives(*ukey, weak_items_.data(), weak_items_.size());
    }
  }
  weak_scratch_.clear();
}

std::uint32_t Core::engine_item_for(std::uint32_t explorer_item) {
  if (explorer_item < explorer_item_key_.size() && explorer_item_key_[explorer_item] != kNone)
    return explorer_item_key_[explorer_item];
  const auto key = item_ids_.find(explorer_->item_name(explorer_item));
  if (!key) return kNone;  // not cached: the engine may meet the item later
  if (explorer_item >= explorer_item_key_.size()) explorer_item_key_.resize(static_cast<std::size_t>(explorer_item) + 1, kNone);
  explorer_item_key_[explorer_item] = *key;
  return *key;
}

void Core::install_baseline(std::shared_ptr<const FactorModel> model, std::shared_ptr<const BaselineInfo> info) {
  if (!info) info = make_baseline_info(*model);
  base_ = std::move(model);
  info_ = std::move(info);
  // Rows of the nightly factors are read at random per event (see advise_huge_pages).
  advise_huge_pages(base_->user_factors.data(), sizeof(float) * static_cast<std::size_t>(base_->user_factors.size()));
  advise_huge_pages(base_->item_factors.data(), sizeof(float) * static_cast<std::size_t>(base_->item_factors.size()));
  explicit_ = base_->kind == ModelKind::kExplicit;
  k_ = base_->factors();
  for (auto* v : {&scratch_u_, &scratch_gu_, &scratch_gi_, &scratch_nd_, &scratch_nq_}) v->assign(k_, 0.0f);
  zeros_.assign(k_, 0.0f);

  // Items: keys stay; the new baseline's unseen items are appended.
  item_ids_.reserve(item_ids_.size() + base_->item_ids.size());
  for (std::int32_t r = 0; r < base_->n_items(); ++r) item_ids_.intern(base_->item_ids.id(r));
  items_.resize(0, k_);
  n_items_ = 0;  // grow_items re-sizes the matrix; the per-item observations keep their values
  grow_items(item_ids_.size());
  std::fill(item_base_row_.begin(), item_base_row_.end(), -1);
  for (std::int32_t r = 0; r < base_->n_items(); ++r) item_base_row_[*item_ids_.find(base_->item_ids.id(r))] = r;
  for (std::size_t i = 0; i < n_items_; ++i) {
    const std::int32_t r = item_base_row_[i];
    if (r >= 0) {
      items_.row(i) = base_->item_factors.row(r);
      item_bias_[i] = base_->item_bias.size() ? base_->item_bias[r] : 0.0f;
    } else {
      items_.row(i).setZero();
      item_bias_[i] = 0.0f;
    }
    item_init_[i] = 0;
    refresh_norm(static_cast<std::uint32_t>(i));
  }
  for (std::size_t u = 0; u < user_ids_.size(); ++u) {
    auto r = base_->user_ids.find(user_ids_.id(static_cast<std::uint32_t>(u)));
    user_base_row_[u] = r ? static_cast<std::int32_t>(*r) : -1;
  }
  user_delta_.assign(users_.size() * static_cast<std::size_t>(k_), 0.0f);
  std::fill(user_dbias_.begin(), user_dbias_.end(), 0.0f);
  std::fill(user_updates_.begin(), user_updates_.end(), 0u);
  // Whatever the running cycle learned is now part of the rebuilt state: no undo.
  undo_users_.clear();
  undo_items_.clear();
  undo_floats_.clear();
  ++cycle_id_;
}

void Core::grow_items(std::size_t n) {
  if (n <= n_items_) return;
  if (static_cast<std::size_t>(items_.rows()) < n) {
    // Geometric capacity: a new item must not copy the whole matrix every time.
    const std::size_t cap = std::max<std::size_t>(n, items_.rows() + items_.rows() / 2 + 16);
    FactorMatrix bigger(cap, k_);
    advise_huge_pages(bigger.data(), sizeof(float) * static_cast<std::size_t>(bigger.size()));
    bigger.topRows(items_.rows()) = items_;
    bigger.bottomRows(cap - items_.rows()).setZero();
    items_.swap(bigger);
  }
  if (n > items_q8_.size() / std::max(1, k_)) {
    // Same geometric capacity for the per-item arrays, huge-page advised while untouched.
    const std::size_t cap = static_cast<std::size_t>(items_.rows());
    reserve_huge(items_q8_, cap * static_cast<std::size_t>(k_));
    reserve_huge(item_stamp_, cap);
    reserve_huge(item_events_, cap);
    reserve_huge(item_lp_, cap);
  }
  item_bias_.resize(n, 0.0f);
  item_init_.resize(n, 0u);
  item_norm_.resize(n, 0.0f);
  item_base_row_.resize(n, -1);
  item_events_.resize(n, 0u);
  item_stamp_.resize(n, 0u);
  item_windows_.resize(n);
  items_q8_.resize(n * static_cast<std::size_t>(k_), 0);
  item_scale_.resize(n, 0.0f);
  item_lp_.resize(n, 0.0);
  n_items_ = n;
}

std::uint32_t Core::user_key(const std::string& id) {
  const std::size_t before = user_ids_.size();
  const std::uint32_t key = user_ids_.intern(id);
  if (user_ids_.size() != before) {
    user_slot_.push_back(-1);
    auto r = base_->user_ids.find(id);
    user_base_row_.push_back(r ? static_cast<std::int32_t>(*r) : -1);
    if (!r) ++counters_.new_users;
  }
  return key;
}

std::uint32_t Core::item_key(const std::string& id) {
  const std::size_t before = item_ids_.size();
  const std::uint32_t key = item_ids_.intern(id);
  if (item_ids_.size() != before) {
    grow_items(item_ids_.size());
    ++counters_.new_items;
  }
  return key;
}

std::int32_t Core::ensure_slot(std::uint32_t ukey) {
  if (user_slot_[ukey] >= 0) return user_slot_[ukey];
  if (tracked_ >= cfg_.memory.max_users) evict_batch();
  std::int32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::int32_t>(users_.size());
    users_.emplace_back();
    user_delta_.resize(users_.size() * static_cast<std::size_t>(k_), 0.0f);
    user_dbias_.push_back(0.0f);
    user_updates_.push_back(0u);
    user_stamp_.push_back(0u);
    user_undo_at_.push_back(0u);
    user_windows_.resize(users_.size());
  }
  users_[slot].reset(ukey);
  user_windows_.clear_row(slot);
  std::fill_n(user_delta_.begin() + static_cast<std::size_t>(slot) * k_, k_, 0.0f);
  user_dbias_[slot] = 0.0f;
  user_updates_[slot] = 0u;
  user_stamp_[slot] = 0u;
  user_slot_[ukey] = slot;
  ++tracked_;
  return slot;
}

// Evicts the least recently active eighth of the tracked users (by last event time, then
// key) in one O(n) pass, so the cap costs O(1) amortised per new user instead of an ordered
// index touched on every event.
void Core::evict_batch() {
  evicted_in_cycle_ = true;
  struct Cand { double t; std::uint32_t key; std::int32_t slot; };
  std::vector<Cand> c;
  c.reserve(tracked_);
  for (std::size_t s = 0; s < users_.size(); ++s)
    if (users_[s].key != kNone && user_slot_[users_[s].key] == static_cast<std::int32_t>(s))
      c.push_back({users_[s].last_time, users_[s].key, static_cast<std::int32_t>(s)});
  const std::size_t n = std::min(c.size(), std::max<std::size_t>(1, cfg_.memory.max_users / 8));
  auto older = [](const Cand& a, const Cand& b) { return a.t != b.t ? a.t < b.t : a.key < b.key; };
  std::nth_element(c.begin(), c.begin() + (n - 1), c.end(), older);
  std::sort(c.begin(), c.begin() + n, older);
  // Reverse so the oldest slot is reused first (free_slots_ pops from the back).
  for (std::size_t j = n; j-- > 0;) {
    forget_undo(c[j].slot);
    user_slot_[c[j].key] = -1;
    users_[c[j].slot].key = kNone;
    free_slots_.push_back(c[j].slot);
    --tracked_;
    ++counters_.evicted_users;
  }
}

void Core::count_item_event(std::uint32_t item) {
  const std::uint32_t c = saturating_increment(item_events_[item]);
  item_lp_[item] = std::log1p(static_cast<double>(c));
  if (c > max_item_events_) {
    max_item_events_ = c;
    lp_max_ = item_lp_[item];
  }
}

void Core::remember_purchase(UserState& u, std::uint32_t item) {
  if (cfg_.session.max_purchased <= 0) return;
  if (std::find(u.purchased.begin(), u.purchased.end(), item) != u.purchased.end()) return;
  if (static_cast<int>(u.purchased.size()) >= cfg_.session.max_purchased) u.purchased.erase(u.purchased.begin());
  u.purchased.push_back(item);
}

void Core::push_journal(const LearnRecord& r) { ring_push(journal_, journal_head_, cfg_.journal_capacity, r); }

void Core::prefetch_rows(std::uint32_t ukey, std::uint32_t item) const {
  const std::size_t rowf = sizeof(float) * static_cast<std::size_t>(k_);
  const std::int32_t slot = user_slot_[ukey];
  const std::int32_t ubr = user_base_row_[ukey];
  if (ubr >= 0) prefetch_bytes(base_->user_factors.row(ubr).data(), rowf);
  if (slot >= 0) {
    __builtin_prefetch(&users_[slot]);
    prefetch_bytes(&user_delta_[static_cast<std::size_t>(slot) * k_], rowf);
    user_windows_.prefetch(slot);
    __builtin_prefetch(&user_updates_[slot]);
    __builtin_prefetch(&user_stamp_[slot]);
  }
  if (item == kNone) return;
  prefetch_learned_item(item);
  const std::int32_t ibr = item_base_row_[item];
  if (ibr >= 0) prefetch_bytes(base_->item_factors.row(ibr).data(), rowf);
  item_windows_.prefetch(item);
  __builtin_prefetch(&item_events_[item]);
  __builtin_prefetch(&item_lp_[item]);
}

void Core::prefetch_learned_item(std::uint32_t item) const {
  prefetch_bytes(items_.row(item).data(), sizeof(float) * static_cast<std::size_t>(k_));
  __builtin_prefetch(&item_base_row_[item]);
  __builtin_prefetch(&item_stamp_[item]);
  __builtin_prefetch(&items_q8_[static_cast<std::size_t>(item) * k_]);
  __builtin_prefetch(&item_bias_[item]);
  __builtin_prefetch(&item_init_[item]);
  __builtin_prefetch(&item_norm_[item]);
  __builtin_prefetch(&item_scale_[item]);
}

ApplyResult Core::apply(const Event& e) {
  // Validation first: a rejected event changes nothing.
  auto reject = [this](std::string why) {
    ++counters_.rejected;
    return ApplyResult{false, std::move(why)};
  };
  if (e.user_id.empty()) return reject("user_id is empty");
  if (!std::isfinite(e.timestamp)) return reject("timestamp is not finite");
  // The parser's range: window buckets are int64 multiples of their width, which overflow
  // for absurd times, and no real event happens before 1970 or after 2100.
  if (e.timestamp < 0.0 || e.timestamp > kMaxEventTimestamp)
    return reject("timestamp outside [1970-01-01, 2100-01-01]");
  if (static_cast<int>(e.type) >= kNumEventTypes) return reject("unknown event type");
  if (e.type == EventType::kImpression) {
    // What the user was shown, not what they did: no session, window or SGD step of its own;
    // it only opens reward windows in the explorer (when exploration is on).
    if (e.items.empty()) return reject("impression lists no items (properties.items)");
    for (const std::string& i : e.items)
      if (i.empty()) return reject("impression lists an empty item id (properties.items)");
    ++counters_.events;
    if (!seen_any_ || e.timestamp > watermark_) watermark_ = e.timestamp;
    seen_any_ = true;
    observe_exploration(e);
    return ApplyResult{true, {}};
  }
  if (e.item_id.empty() && e.type != EventType::kSearch)
    return reject(std::string("item_id is empty for a ") + std::string(event_type_name(e.type)) + " event");
  if (!std::isnan(e.price) && !(std::isfinite(e.price) && e.price >= 0)) return reject("price is not a finite non-negative number");
  if (e.type == EventType::kRating && !std::isfinite(e.rating)) return reject("rating is missing or not finite");
  // Beyond this a rating is no rating, and the float conversion below would overflow.
  if (e.type == EventType::kRating && std::fabs(e.rating) > 1e6) return reject("rating out of range (|rating| > 1e6)");

  const double t = e.timestamp;
  // The event touches a dozen rows scattered over arrays far larger than the caches (ids,
  // user and item vectors, windows, counters): start every load as soon as its address is
  // known so the misses overlap instead of queueing one after another.
  user_ids_.prefetch(e.user_id);
  if (!e.item_id.empty()) item_ids_.prefetch(e.item_id);
  if (explorer_) explorer_->prefetch(e);
  const std::uint32_t ukey = user_key(e.user_id);
  const std::uint32_t item = e.item_id.empty() ? kNone : item_key(e.item_id);
  prefetch_rows(ukey, item);
  ++counters_.events;
  if (!seen_any_ || t > watermark_) watermark_ = t;
  seen_any_ = true;

  // Learning: explicit baselines learn from ratings only; implicit ones from weighted
  // interactions and (centred) ratings. The holdout decision and the negatives are drawn
  // before the observations below (nothing there uses the RNG or the sampler, so the draws
  // are the same) so that the negatives' rows load while the session and windows update.
  bool trainable = false;
  if (item != kNone) {
    if (e.type == EventType::kRating) trainable = true;
    else trainable = !explicit_ && cfg_.sgd.weights[e.type] > 0.0f;
  }
  LearnRecord r;
  bool learn_now = false;
  if (trainable) {
    r.user = ukey;
    r.item = item;
    r.time = t;
    r.rating = e.type == EventType::kRating ? static_cast<float>(e.rating) : 0.0f;
    r.type = static_cast<std::uint8_t>(e.type);
    learn_now = !divert_to_holdout(r);
    if (learn_now) draw_negatives(r, rng_);
  }

  const std::int32_t slot = ensure_slot(ukey);
  UserState& u = users_[slot];
  u.last_time = u.events == 0 ? t : std::max(u.last_time, t);
  ++u.events;
  const std::uint32_t cat = e.category.empty() ? kNone : categories_.intern(e.category);
  u.session.observe(cfg_.session, e.type, t, item, cat, e.price, e.query);
  user_windows_.add(slot, t);
  if (item != kNone) {
    count_item_event(item);
    item_windows_.add(item, t);
    if (e.type == EventType::kPurchase) remember_purchase(u, item);
  }

  if (learn_now) {
    learn(r, LearnMode::kLive, rng_, /*negatives_drawn=*/true);
    push_journal(r);
    if (cfg_.guard.enabled) {
      pending_.push_back(r);
      replay_step();
    }
  }
  observe_exploration(e, item);
  if (sampler_next_.building()) advance_sampler();
  if (++cycle_events_ >= cfg_.guard.cycle_events) end_cycle();
  // Last, when no key of this event is held any more.
  if (user_ids_.size() > user_id_budget()) compact_user_ids();
  return ApplyResult{true, {}};
}

void Core::swap_baseline(std::shared_ptr<const FactorModel> next) {
  if (!next) throw InputError("swap_baseline: next model is null");
  validate_baseline(*next);  // before anything changes: a refused model leaves the state as it was
  std::shared_ptr<const BaselineInfo> info = make_baseline_info(*next);
  // The bandit's priors follow the nightly user vectors; its evidence stays.
  if (explorer_) explorer_->rebase(*base_, *next);
  explorer_item_key_.clear();
  install_baseline(next, info);
  // Re-learn what the new model has not seen, in journal order, with its own seeded stream
  // so the result depends only on (seed, swap number, journal).
  std::uint64_t s = cfg_.seed ^ (0xA5A5A5A5ULL + swaps_);
  Xoshiro256 rr(splitmix64(s));
  ++swaps_;
  const std::size_t n = journal_.size();
  const std::size_t head = ring_oldest(journal_, journal_head_, cfg_.journal_capacity);
  for (std::size_t j = 0; j < n; ++j) {
    const LearnRecord& r = journal_[(head + j) % n];
    if (r.time > base_->data_cutoff) learn(r, LearnMode::kRebuild, rr);
  }
  for (std::size_t slot = 0; slot < users_.size(); ++slot) {
    const std::uint32_t key = users_[slot].key;
    if (key != kNone && user_base_row_[key] < 0 && !users_[slot].history.empty())
      fold_in(static_cast<std::int32_t>(slot));
  }
  rebuild_sampler();
  // The swap restarts the guard cycle: the running cycle's trained events join the replay
  // buffer now, as at a cycle's end (left in pending_, they were carried into the next cycle,
  // which then held more than cycle_events of them: its checkpoint was refused on restore).
  for (const LearnRecord& r : pending_) ring_push(replay_, replay_head_, cfg_.guard.replay_capacity, r);
  pending_.clear();
  start_cycle();
}

SessionFeatures Core::features(std::string_view user_id) const {
  SessionFeatures f;
  f.session_embedding.assign(k_, 0.0f);
  f.window_counts.assign(user_windows_.windows(), 0u);
  auto key = user_ids_.find(user_id);
  if (!key || user_slot_[*key] < 0) return f;
  const std::int32_t slot = user_slot_[*key];
  const UserState& u = users_[slot];
  const double t = watermark_;
  for (int w = 0; w < user_windows_.windows(); ++w) f.window_counts[w] = user_windows_.count(slot, w, t);
  f.last_event_time = u.last_time;
  const Session& s = u.session;
  if (!s.live_at(cfg_.session, t)) return f;  // the session is over: the next event starts a new one
  f.session_view_count = s.views;
  f.session_click_count = s.clicks;
  f.session_cart_count = s.carts;
  f.session_purchase_count = s.purchases;
  f.session_search_count = s.searches;
  f.session_ctr = s.views ? static_cast<double>(s.clicks) / s.views : 0.0;
  f.avg_price_viewed = s.price_count ? s.price_sum / s.price_count : 0.0;
  // Top category: most views, ties to the lexicographically smallest name.
  const std::string* best = nullptr;
  std::uint32_t best_n = 0;
  for (const auto& [cat, n] : s.categories) {
    const std::string& name = categories_.id(cat);
    if (n > best_n || (n == best_n && best && name < *best)) {
      best = &name;
      best_n = n;
    }
  }
  if (best) f.top_category = *best;
  f.category_count = static_cast<std::uint32_t>(s.categories.size());
  for (const TimedItem& c : s.clicked) f.recent_clicked_items.push_back(item_ids_.id(c.item));
  for (const TimedQuery& q : s.queries) f.recent_queries.push_back(q.query);
  session_embedding(cfg_.session, s, items_, t, f.session_embedding.data());
  f.session_start = s.start;
  return f;
}

}  // namespace freshrec::stream
