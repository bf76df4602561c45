// Canonical checkpoint bytes of the whole state: little-endian fixed width, user and item
// records in key order (keys are dense and assigned in first-seen order, so the order is a
// function of the event sequence alone), rings written oldest first. Derived data (item
// norms, the baseline Gram, slot numbers, first-touch stamps) is not written; restore
// recomputes it, so a restored engine continues bit for bit like one that never stopped.
#include <algorithm>
#include <array>
#include <cmath>
#include <istream>
#include <iterator>
#include <ostream>
#include <sstream>

#include "cpu/stream/binary_io.hpp"
#include "cpu/stream/engine_core.hpp"

namespace freshrec::stream {

namespace {
constexpr const char* kMagic = "freshrec-stream-state";
// 2: the stepped sampler rebuild in progress; 3: the bandit explorer's state (a flag, then
// its own canonical bytes). Version-2 files are refused: they lack the explorer and the
// impression semantics they were written under differ.
constexpr std::uint32_t kVersion = 3;

void put_record(BinaryWriter& w, const LearnRecord& r) {
  w.put(r.user);
  w.put(r.item);
  w.put(r.time);
  w.put(r.rating);
  w.put(r.type);
}
LearnRecord get_record(BinaryReader& rd) {
  LearnRecord r;
  r.user = rd.get<std::uint32_t>();
  r.item = rd.get<std::uint32_t>();
  r.time = rd.get<double>();
  r.rating = rd.get<float>();
  r.type = rd.get<std::uint8_t>();
  return r;
}
template <typename T>
void put_ring(BinaryWriter& w, const std::vector<T>& ring, std::size_t head) {
  w.put<std::uint64_t>(ring.size());
  for (std::size_t j = 0; j < ring.size(); ++j) put_record(w, ring[(head + j) % ring.size()]);
}
void put_items(BinaryWriter& w, const std::vector<TimedItem>& v) {
  w.put<std::uint64_t>(v.size());
  for (const TimedItem& e : v) {
    w.put(e.item);
    w.put(e.time);
    w.put<std::uint8_t>(e.viewed);
  }
}
void get_items(BinaryReader& rd, std::vector<TimedItem>& v, std::size_t n_items) {
  const auto n = rd.get_count();
  if (n > 1u << 24) rd.fail("session list too long");
  v.resize(n);
  for (TimedItem& e : v) {
    e.item = rd.get<std::uint32_t>();
    if (e.item >= n_items) rd.fail("item key out of range");
    e.time = rd.get<double>();
    e.viewed = rd.get<std::uint8_t>() != 0;
  }
}
}  // namespace

void Core::save(std::ostream& out, bool learned_only) const {
  BinaryWriter w(&out);
  const std::size_t k = static_cast<std::size_t>(k_);
  w.put_string(kMagic);
  w.put(kVersion);
  w.put<std::uint8_t>(learned_only);
  w.put(static_cast<std::uint8_t>(base_->kind));
  w.put(base_->n_users());
  w.put(base_->n_items());
  w.put(base_->factors());
  w.put_string(info_->hash);

  if (learned_only) {
    // Item vectors and biases, then each tracked user's learned part, in key order.
    w.put<std::uint64_t>(n_items_);
    w.put_array(items_.data(), n_items_ * k);
    w.put_array(item_bias_.data(), n_items_);
    w.put_array(item_init_.data(), n_items_);
    for (std::size_t key = 0; key < user_slot_.size(); ++key) {
      const std::int32_t slot = user_slot_[key];
      if (slot < 0) continue;
      w.put(static_cast<std::uint32_t>(key));
      w.put_array(&user_delta_[slot * k], k);
      w.put(user_dbias_[slot]);
      w.put(user_updates_[slot]);
    }
    w.flush();
    return;
  }

  w.put<std::uint8_t>(seen_any_);
  w.put(watermark_);
  const StreamCounters& c = counters_;
  for (std::uint64_t v : {c.events, c.rejected, c.sgd_updates, c.non_finite_skipped, c.foldins, c.guard_accepts,
                          c.guard_rollbacks, c.evicted_users, c.new_users, c.new_items})
    w.put(v);
  w.put(c.last_guard_loss);
  for (std::uint64_t s : rng_.state()) w.put(s);
  w.put(swaps_);

  // Users: every id ever seen, then the tracked ones' state.
  w.put<std::uint64_t>(user_ids_.size());
  for (std::size_t key = 0; key < user_ids_.size(); ++key) w.put_string(user_ids_.id(static_cast<std::uint32_t>(key)));
  w.put<std::uint64_t>(tracked_);
  const std::size_t nw = static_cast<std::size_t>(user_windows_.windows());
  for (std::size_t key = 0; key < user_slot_.size(); ++key) {
    const std::int32_t slot = user_slot_[key];
    if (slot < 0) continue;
    const UserState& u = users_[slot];
    w.put(static_cast<std::uint32_t>(key));
    w.put(u.last_time);
    w.put(u.events);
    w.put(u.learn_events);
    const Session& s = u.session;
    w.put<std::uint8_t>(s.active);
    w.put(s.start);
    w.put(s.last);
    for (std::uint32_t v : {s.views, s.clicks, s.carts, s.purchases, s.searches}) w.put(v);
    w.put(s.price_sum);
    w.put(s.price_count);
    w.put<std::uint64_t>(s.categories.size());
    for (const auto& [cat, n] : s.categories) {
      w.put(cat);
      w.put(n);
    }
    put_items(w, s.clicked);
    put_items(w, s.embedding);
    w.put<std::uint64_t>(s.queries.size());
    for (const TimedQuery& q : s.queries) {
      w.put_string(q.query);
      w.put(q.time);
    }
    w.put_vector(u.purchased);
    w.put<std::uint64_t>(u.history.size());
    for (std::size_t j = 0; j < u.history.size(); ++j) {
      const auto& [item, v] = u.history[(u.history_head + j) % u.history.size()];
      w.put(item);
      w.put(v);
    }
    w.put_array(&user_windows_.buckets()[slot * nw * WindowTable::kBuckets], nw * WindowTable::kBuckets);
    w.put_array(&user_windows_.heads()[slot * nw], nw);
    w.put_array(&user_delta_[slot * k], k);
    w.put(user_dbias_[slot]);
    w.put(user_updates_[slot]);
  }

  w.put<std::uint64_t>(categories_.size());
  for (std::size_t j = 0; j < categories_.size(); ++j) w.put_string(categories_.id(static_cast<std::uint32_t>(j)));

  // Items.
  w.put<std::uint64_t>(n_items_);
  for (std::size_t i = 0; i < n_items_; ++i) w.put_string(item_ids_.id(static_cast<std::uint32_t>(i)));
  w.put_array(item_base_row_.data(), n_items_);
  w.put_array(items_.data(), n_items_ * k);
  w.put_array(item_bias_.data(), n_items_);
  w.put_array(item_init_.data(), n_items_);
  w.put_array(item_events_.data(), n_items_);
  w.put_array(item_windows_.buckets().data(), n_items_ * nw * WindowTable::kBuckets);
  w.put_array(item_windows_.heads().data(), n_items_ * nw);
  w.put_vector(sampler_.prob());
  w.put_vector(sampler_.alias());
  // A stepped rebuild in progress: its weights and steps done (restore redoes them).
  w.put<std::uint8_t>(sampler_next_.building());
  if (sampler_next_.building()) {
    w.put_vector(sampler_weights_);
    w.put(sampler_steps_);
  }

  // Guard.
  w.put<std::uint64_t>(holdout_.size());
  for (const HoldoutPair& h : holdout_) {
    w.put(h.user);
    w.put(h.item);
    w.put(h.negative);
    w.put(h.label);
  }
  put_ring(w, replay_, ring_oldest(replay_, replay_head_, cfg_.guard.replay_capacity));
  put_ring(w, pending_, 0);
  w.put(cycle_events_);
  w.put<std::uint64_t>(validate_n_);
  w.put(loss_before_);
  w.put<std::uint64_t>(undo_users_.size());
  for (const UserUndo& e : undo_users_) {
    w.put(e.key);
    w.put(e.dbias);
    w.put(e.updates);
    w.put_array(&undo_floats_[e.offset], k);
  }
  w.put<std::uint64_t>(undo_items_.size());
  for (const ItemUndo& e : undo_items_) {
    w.put(e.item);
    w.put(e.bias);
    w.put(e.init);
    w.put_array(&undo_floats_[e.offset], k);
  }
  put_ring(w, journal_, ring_oldest(journal_, journal_head_, cfg_.journal_capacity));
  w.put<std::uint8_t>(explorer_ != nullptr);
  if (explorer_) {
    std::ostringstream ex;
    explorer_->save(ex);
    w.put_string(ex.str());
  }
  w.flush();
}

// Reads into a freshly constructed Core on the same baseline (the engine swaps it in only
// when every byte checked out).
void Core::restore(std::istream& in) {
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BinaryReader rd(std::move(bytes));
  const std::size_t k = static_cast<std::size_t>(k_);
  if (rd.get_string() != kMagic) rd.fail("bad magic");
  if (const auto v = rd.get<std::uint32_t>(); v != kVersion) rd.fail("unsupported version " + std::to_string(v));
  if (rd.get<std::uint8_t>() != 0) rd.fail("a learned-state digest stream is not a checkpoint");
  const auto kind = rd.get<std::uint8_t>();
  const auto nu = rd.get<std::int32_t>();
  const auto ni = rd.get<std::int32_t>();
  const auto nk = rd.get<std::int32_t>();
  const std::string hash = rd.get_string();
  if (kind != static_cast<std::uint8_t>(base_->kind) || nu != base_->n_users() || ni != base_->n_items() ||
      nk != base_->factors() || hash != info_->hash)
    rd.fail("written on another baseline (" + std::to_string(nu) + " users, " + std::to_string(ni) + " items, k=" +
            std::to_string(nk) + ", factors sha256 " + hash.substr(0, 12) + "…; this one has " +
            std::to_string(base_->n_users()) + ", " + std::to_string(base_->n_items()) + ", k=" +
            std::to_string(base_->factors()) + ", " + info_->hash.substr(0, 12) + "…)");

  seen_any_ = rd.get<std::uint8_t>() != 0;
  watermark_ = rd.get<double>();
  StreamCounters& c = counters_;
  for (std::uint64_t* v : {&c.events, &c.rejected, &c.sgd_updates, &c.non_finite_skipped, &c.foldins,
                           &c.guard_accepts, &c.guard_rollbacks, &c.evicted_users, &c.new_users, &c.new_items})
    *v = rd.get<std::uint64_t>();
  c.last_guard_loss = rd.get<double>();
  std::array<std::uint64_t, 4> st;
  for (auto& s : st) s = rd.get<std::uint64_t>();
  rng_.set_state(st);
  swaps_ = rd.get<std::uint64_t>();

  // Users.
  const auto n_user_keys = rd.get_count();
  user_ids_ = DenseIds();
  user_slot_.assign(n_user_keys, -1);
  user_base_row_.assign(n_user_keys, -1);
  for (std::uint64_t key = 0; key < n_user_keys; ++key) {
    const std::string id = rd.get_string();
    if (user_ids_.intern(id) != key) rd.fail("duplicate user id");
    if (auto r = base_->user_ids.find(id)) user_base_row_[key] = static_cast<std::int32_t>(*r);
  }
  const auto n_tracked = rd.get_count();
  if (n_tracked > n_user_keys) rd.fail("more tracked users than user ids");
  users_.assign(n_tracked, UserState{});
  free_slots_.clear();
  tracked_ = n_tracked;
  user_windows_.resize(n_tracked);
  user_delta_.assign(n_tracked * k, 0.0f);
  user_dbias_.assign(n_tracked, 0.0f);
  user_updates_.assign(n_tracked, 0u);
  user_stamp_.assign(n_tracked, 0u);
  user_undo_at_.assign(n_tracked, 0u);
  const std::size_t nw = static_cast<std::size_t>(user_windows_.windows());
  // Item keys in the session lists are range-checked once the item table is read (below).
  std::uint32_t prev_key = 0;
  for (std::size_t slot = 0; slot < n_tracked; ++slot) {
    const auto key = rd.get<std::uint32_t>();
    if (key >= n_user_keys || (slot > 0 && key <= prev_key)) rd.fail("tracked users out of key order");
    prev_key = key;
    UserState& u = users_[slot];
    u.key = key;
    user_slot_[key] = static_cast<std::int32_t>(slot);
    u.last_time = rd.get<double>();
    u.events = rd.get<std::uint64_t>();
    u.learn_events = rd.get<std::uint32_t>();
    Session& s = u.session;
    s.active = rd.get<std::uint8_t>() != 0;
    s.start = rd.get<double>();
    s.last = rd.get<double>();
    for (std::uint32_t* v : {&s.views, &s.clicks, &s.carts, &s.purchases, &s.searches}) *v = rd.get<std::uint32_t>();
    s.price_sum = rd.get<double>();
    s.price_count = rd.get<std::uint32_t>();
    const auto nc = rd.get_count();
    if (nc > 1u << 24) rd.fail("category list too long");
    s.categories.resize(nc);
    for (auto& [cat, n] : s.categories) {
      cat = rd.get<std::uint32_t>();
      n = rd.get<std::uint32_t>();
    }
    get_items(rd, s.clicked, UINT32_MAX);
    get_items(rd, s.embedding, UINT32_MAX);
    const auto nq = rd.get_count();
    if (nq > 1u << 24) rd.fail("query list too long");
    s.queries.resize(nq);
    for (TimedQuery& q : s.queries) {
      q.query = rd.get_string();
      q.time = rd.get<double>();
    }
    u.purchased = rd.get_vector<std::uint32_t>();
    const auto nh = rd.get_count();
    if (nh > static_cast<std::uint64_t>(cfg_.foldin.max_events)) rd.fail("fold-in history longer than foldin.max_events");
    u.history.resize(nh);
    for (auto& [item, v] : u.history) {
      item = rd.get<std::uint32_t>();
      v = rd.get<float>();
    }
    u.history_head = 0;
    rd.get_into(&user_windows_.buckets()[slot * nw * WindowTable::kBuckets], nw * WindowTable::kBuckets);
    rd.get_into(&user_windows_.heads()[slot * nw], nw);
    rd.get_into(&user_delta_[slot * k], k);
    user_dbias_[slot] = rd.get<float>();
    user_updates_[slot] = rd.get<std::uint32_t>();
  }

  const auto n_cat = rd.get_count();
  categories_ = DenseIds();
  for (std::uint64_t j = 0; j < n_cat; ++j)
    if (categories_.intern(rd.get_string()) != j) rd.fail("duplicate category");

  // Items.
  const auto n_items = rd.get_count();
  item_ids_ = DenseIds();
  for (std::uint64_t i = 0; i < n_items; ++i)
    if (item_ids_.intern(rd.get_string()) != i) rd.fail("duplicate item id");
  items_.resize(0, k_);
  n_items_ = 0;
  item_bias_.clear();
  item_init_.clear();
  item_norm_.clear();
  item_base_row_.clear();
  item_events_.clear();
  item_stamp_.clear();
  grow_items(n_items);
  rd.get_into(item_base_row_.data(), n_items);
  for (std::uint64_t i = 0; i < n_items; ++i) {
    const std::int32_t r = item_base_row_[i];
    if (r >= base_->n_items() || (r >= 0 && base_->item_ids.id(r) != item_ids_.id(static_cast<std::uint32_t>(i))))
      rd.fail("item baseline row does not match the baseline's ids");
  }
  rd.get_into(items_.data(), n_items * k);
  rd.get_into(item_bias_.data(), n_items);
  rd.get_into(item_init_.data(), n_items);
  rd.get_into(item_events_.data(), n_items);
  rd.get_into(item_windows_.buckets().data(), n_items * nw * WindowTable::kBuckets);
  rd.get_into(item_windows_.heads().data(), n_items * nw);
  auto prob = rd.get_vector<double>();
  auto alias = rd.get_vector<std::uint32_t>(prob.size());
  if (prob.size() > n_items) rd.fail("sampler larger than the catalogue");
  for (std::uint32_t a : alias)
    if (a >= prob.size()) rd.fail("sampler alias out of range");
  sampler_.assign(std::move(prob), std::move(alias));
  sampler_next_.cancel_build();
  sampler_steps_ = 0;
  if (rd.get<std::uint8_t>() != 0) {
    sampler_weights_ = rd.get_vector<double>();
    if (sampler_weights_.size() > n_items) rd.fail("pending sampler larger than the catalogue");
    double total = 0.0;
    for (double x : sampler_weights_) {
      if (!(x >= 0.0) || !std::isfinite(x)) rd.fail("pending sampler weight not finite and >= 0");
      total += x;
    }
    if (!(total > 0.0)) rd.fail("pending sampler weights sum to 0");
    const auto steps = rd.get<std::uint64_t>();
    if (steps > 4 * sampler_weights_.size() + 4) rd.fail("pending sampler step count out of range");
    sampler_next_.begin_build(sampler_weights_);
    for (std::uint64_t j = 0; j < steps; ++j)
      if (sampler_next_.build_step(sampler_budget())) rd.fail("pending sampler already complete");
    sampler_steps_ = steps;
  }
  // Cross-checks of user lists against the item count.
  auto item_ok = [&](std::uint32_t i) { return i < n_items; };
  for (const UserState& u : users_) {
    for (const auto& e : u.session.clicked) if (!item_ok(e.item)) rd.fail("session item out of range");
    for (const auto& e : u.session.embedding) if (!item_ok(e.item)) rd.fail("session item out of range");
    for (std::uint32_t p : u.purchased) if (!item_ok(p)) rd.fail("purchased item out of range");
    for (const auto& h : u.history) if (!item_ok(h.first)) rd.fail("history item out of range");
    for (const auto& cc : u.session.categories) if (cc.first >= n_cat) rd.fail("category out of range");
  }

  // Guard.
  auto check_record = [&](const LearnRecord& r) {
    if (r.user >= n_user_keys || r.item >= n_items || r.type >= kNumEventTypes) rd.fail("record out of range");
    return r;
  };
  const auto nh = rd.get_count();
  if (nh > cfg_.guard.holdout_size) rd.fail("holdout larger than guard.holdout_size");
  holdout_.resize(nh);
  for (HoldoutPair& h : holdout_) {
    h.user = rd.get<std::uint32_t>();
    h.item = rd.get<std::uint32_t>();
    h.negative = rd.get<std::uint32_t>();
    h.label = rd.get<float>();
    if (h.user >= n_user_keys || h.item >= n_items || (h.negative != kNone && h.negative >= n_items))
      rd.fail("holdout pair out of range");
  }
  auto get_ring = [&](std::vector<LearnRecord>& ring, std::size_t cap) {
    const auto n = rd.get_count();
    if (n > cap) rd.fail("ring longer than its capacity");
    ring.clear();
    ring.reserve(n);
    for (std::uint64_t j = 0; j < n; ++j) ring.push_back(check_record(get_record(rd)));
  };
  get_ring(replay_, cfg_.guard.replay_capacity);
  replay_head_ = 0;
  get_ring(pending_, cfg_.guard.cycle_events);
  cycle_events_ = rd.get<std::uint64_t>();
  validate_n_ = rd.get<std::uint64_t>();
  if (validate_n_ > holdout_.size()) rd.fail("validation size beyond the holdout");
  loss_before_ = rd.get<double>();
  evicted_in_cycle_ = true;  // unknown: the next rolled-back cycle recomputes its starting loss
  ++cycle_id_;
  undo_users_.clear();
  undo_items_.clear();
  undo_floats_.clear();
  const auto nuu = rd.get_count();
  for (std::uint64_t j = 0; j < nuu; ++j) {
    UserUndo e;
    e.key = rd.get<std::uint32_t>();
    e.dbias = rd.get<float>();
    e.updates = rd.get<std::uint32_t>();
    e.offset = undo_floats_.size();
    undo_floats_.resize(e.offset + k);
    rd.get_into(&undo_floats_[e.offset], k);
    if (e.key != kNone) {
      if (e.key >= n_user_keys || user_slot_[e.key] < 0) rd.fail("undo entry of an untracked user");
      const std::int32_t slot = user_slot_[e.key];
      user_stamp_[slot] = cycle_id_;
      user_undo_at_[slot] = static_cast<std::uint32_t>(undo_users_.size());
    }
    undo_users_.push_back(e);
  }
  const auto nui = rd.get_count();
  for (std::uint64_t j = 0; j < nui; ++j) {
    ItemUndo e;
    e.item = rd.get<std::uint32_t>();
    if (e.item >= n_items) rd.fail("undo entry of an unknown item");
    e.bias = rd.get<float>();
    e.init = rd.get<std::uint32_t>();
    e.offset = undo_floats_.size();
    undo_floats_.resize(e.offset + k);
    rd.get_into(&undo_floats_[e.offset], k);
    item_stamp_[e.item] = cycle_id_;
    undo_items_.push_back(e);
  }
  get_ring(journal_, cfg_.journal_capacity);
  journal_head_ = 0;
  const bool has_explorer = rd.get<std::uint8_t>() != 0;
  if (has_explorer) {
    // Exploration state cannot be dropped silently: its posteriors and pending impressions
    // would be lost and the continuation would differ from the run that wrote it.
    if (!explorer_) rd.fail("checkpoint holds exploration state but explore.slots is 0");
    std::istringstream ex(rd.get_string());
    explorer_->restore(ex);
    explorer_item_key_.clear();
  }
  // A checkpoint without it and exploration on now: the explorer starts empty (constructor).
  if (!rd.at_end()) rd.fail("trailing bytes");

  // Derived state.
  max_item_events_ = 0;
  for (std::size_t i = 0; i < n_items_; ++i) {
    refresh_norm(static_cast<std::uint32_t>(i));
    max_item_events_ = std::max(max_item_events_, item_events_[i]);
    item_lp_[i] = std::log1p(static_cast<double>(item_events_[i]));
    // The row itself, not its norm: a finite row beyond ~1.8e19 has an infinite float norm
    // and is a state the engine runs on (and checkpoints) like any other.
    if (!items_.row(static_cast<Eigen::Index>(i)).allFinite()) rd.fail("non-finite item vector");
  }
  lp_max_ = std::log1p(static_cast<double>(max_item_events_));
  for (float d : user_delta_)
    if (!std::isfinite(d)) rd.fail("non-finite user delta");
  reserve_buffers();
}

}  // namespace freshrec::stream
