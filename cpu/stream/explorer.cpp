#include "cpu/stream/explorer.hpp"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <istream>
#include <iterator>
#include <limits>
#include <ostream>
#include <sstream>

#include "cpu/util/error.hpp"
#include "cpu/stream/vec_ops.hpp"
#include "cpu/util/sha256.hpp"

namespace freshrec::stream {
namespace {

// FNV-1a: a user's hash must not depend on the standard library (std::hash may differ).
std::uint64_t fnv1a(const std::string& s) noexcept {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// 2: posteriors hold the precision A; 1 (still read): its Cholesky factor.
constexpr std::uint32_t kFormat = 2;
constexpr std::uint32_t kFormatCholesky = 1;

}  // namespace

Explorer::Explorer(ExplorerConfig cfg)
    : cfg_(std::move(cfg)),
      tracker_(cfg_.explore.reward_window_seconds, cfg_.explore.max_pending_impressions, cfg_.explore.max_items_per_impression) {}

namespace {
// The user's row of `m` as k floats, zeros when `m` does not know the user.
void nightly_vector(const FactorModel& m, const std::string& user, int k, std::vector<float>& out) {
  out.assign(static_cast<std::size_t>(k), 0.0f);
  if (auto row = m.user_ids.find(user); row && static_cast<Eigen::Index>(*row) < m.user_factors.rows())
    for (int d = 0; d < k; ++d) out[static_cast<std::size_t>(d)] = m.user_factors(static_cast<Eigen::Index>(*row), d);
}
}  // namespace

Explorer::UserEntry* Explorer::posterior_for(const std::string& user, const FactorModel& baseline) {
  auto it = users_.find(user);
  if (it != users_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return &it->second;
  }
  const int k = static_cast<int>(baseline.item_factors.cols());
  if (k <= 0) return nullptr;
  std::vector<float> prior;
  nightly_vector(baseline, user, k, prior);
  while (users_.size() >= std::max<std::size_t>(cfg_.max_users, 1)) {
    if (const auto key = users_ids_.find(lru_.back()); key && *key < post_of_key_.size()) post_of_key_[*key] = nullptr;
    users_.erase(lru_.back());
    lru_.pop_back();
    ++counters_.evicted_users;
  }
  lru_.push_front(user);
  return &users_.emplace(user, UserEntry{UserPosterior(prior.data(), k, cfg_.explore.prior_precision), lru_.begin()}).first->second;
}

UserPosterior* Explorer::posterior_for_key(std::uint32_t user, const FactorModel& baseline) {
  if (user < post_of_key_.size() && post_of_key_[user]) {
    UserEntry* e = post_of_key_[user];
    lru_.splice(lru_.begin(), lru_, e->lru);
    return &e->posterior;
  }
  UserEntry* e = posterior_for(users_ids_.id(user), baseline);
  if (!e) return nullptr;
  if (user >= post_of_key_.size()) post_of_key_.resize(static_cast<std::size_t>(user) + 1, nullptr);
  post_of_key_[user] = e;  // map nodes are stable: valid until the entry is evicted or cleared
  return &e->posterior;
}

void Explorer::drop_posteriors() {
  counters_.evicted_users += users_.size();
  users_.clear();
  lru_.clear();
  post_of_key_.clear();
}

void Explorer::rebase(const FactorModel& old_base, const FactorModel& new_base) {
  row_model_ = nullptr;  // item rows are per model
  const int k = static_cast<int>(new_base.item_factors.cols());
  if (k != static_cast<int>(old_base.item_factors.cols())) {
    drop_posteriors();
    return;
  }
  std::vector<float> old_mean, new_mean;
  for (auto& [user, entry] : users_) {
    nightly_vector(old_base, user, k, old_mean);
    nightly_vector(new_base, user, k, new_mean);
    entry.posterior.rebase(old_mean.data(), new_mean.data(), cfg_.explore.prior_precision);
  }
}

std::optional<std::vector<double>> Explorer::posterior_mean(const std::string& user) const {
  auto it = users_.find(user);
  if (it == users_.end()) return std::nullopt;
  return it->second.posterior.mean();
}

std::int32_t Explorer::item_row(std::uint32_t key, const FactorModel& baseline) {
  if (row_model_ != &baseline) {
    item_row_.clear();
    row_model_ = &baseline;
  }
  while (item_row_.size() <= key) {
    const auto row = baseline.item_ids.find(items_.id(static_cast<std::uint32_t>(item_row_.size())));
    item_row_.push_back(row && static_cast<Eigen::Index>(*row) < baseline.item_factors.rows() ? static_cast<std::int32_t>(*row) : -1);
  }
  return item_row_[key];
}

void Explorer::close_run(std::size_t from, std::size_t to, const FactorModel& baseline) {
  // Only Thompson draws from the posterior: greedy and epsilon keep none (the impression
  // loop, rewards, evidence and weak negatives still run for them).
  const bool learn = cfg_.explore.policy == ExplorePolicy::kThompson;
  run_x_.clear();
  run_y_.clear();
  for (std::size_t j = from; j < to; ++j) {
    const ImpressionOutcome& o = scratch_[j];
    (o.rewarded ? counters_.rewards : counters_.weak_negatives) += 1;
    evidence_.add(o.item, 1.0f);
    if (!learn) continue;
    const std::int32_t row = item_row(o.item, baseline);
    if (row < 0) continue;  // no vector: nothing to learn about the user
    run_x_.push_back(baseline.item_factors.row(row).data());
    // The rows are scattered over the item matrix: start every miss now so they overlap.
    prefetch_bytes(run_x_.back(), sizeof(float) * static_cast<std::size_t>(baseline.item_factors.cols()));
    run_y_.push_back(o.rewarded ? 1.0 : 0.0);
  }
  if (run_x_.empty()) return;
  // Posteriors of another dimension (a checkpoint's, or a model of another k given without
  // rebase) cannot take this model's rows (k floats each): dropped, as rebase() does. All
  // posteriors share one dimension (save() writes one), so the first tells.
  if (!users_.empty() && users_.begin()->second.posterior.dim() != static_cast<int>(baseline.item_factors.cols()))
    drop_posteriors();
  UserPosterior* p = posterior_for_key(scratch_[from].user, baseline);
  if (!p) return;
  p->prefetch();
  counters_.posterior_updates += p->update_many(run_x_.data(), run_y_.data(), run_x_.size(), 1.0, cfg_.explore.noise_variance);
}

void Explorer::observe(const Event& e, const FactorModel& baseline, std::vector<WeakNegative>* weak_negatives,
                       std::optional<bool> item_in_baseline) {
  // First, while no key of this call is out: the keys handed back below stay valid until the
  // next call.
  if (users_ids_.size() > 2 * cfg_.explore.max_pending_impressions + 1024) compact_users();
  tracker_.expire(e.timestamp, scratch_);
  if (e.type == EventType::kImpression) {
    // Only an impression gives a user a key.
    const std::uint32_t user = users_ids_.intern(e.user_id);
    impression_keys_.clear();
    for (const std::string& i : e.items) items_.prefetch(i);  // overlap the table misses
    for (const std::string& i : e.items) impression_keys_.push_back(items_.intern(i));
    tracker_.on_impression(user, impression_keys_, e.timestamp, scratch_);
    ++counters_.impressions;
  } else if (!e.item_id.empty()) {
    const bool known = item_in_baseline ? *item_in_baseline : baseline.item_ids.find(e.item_id).has_value();
    if (!known && std::find(cold_.begin(), cold_.end(), e.item_id) == cold_.end()) {
      cold_.push_back(e.item_id);
      if (cold_.size() > cfg_.max_cold_items) cold_.erase(cold_.begin());
    }
    // A click or purchase can only reward impressions of a user who has a key (and an item
    // that was shown, so has one too); other events have nothing pending to match.
    if (e.type == EventType::kClick || e.type == EventType::kPurchase) {
      if (const auto user = users_ids_.find(e.user_id))
        if (const auto item = items_.find(e.item_id)) tracker_.on_engagement(*user, *item, e.timestamp, scratch_);
    }
  }
  // Outcomes come in runs of one user (the items of one impression close together).
  for (std::size_t j = 0; j < scratch_.size();) {
    std::size_t end = j + 1;
    while (end < scratch_.size() && scratch_[end].user == scratch_[j].user) ++end;
    close_run(j, end, baseline);
    if (weak_negatives)
      for (std::size_t n = j; n < end; ++n)
        if (!scratch_[n].rewarded) weak_negatives->push_back({scratch_[n].user, scratch_[n].item});
    j = end;
  }
  scratch_.clear();
}

void Explorer::prefetch(const Event& e) const noexcept {
  // An impression's own lookups come first thing in observe, which prefetches its items.
  if (e.type == EventType::kClick || e.type == EventType::kPurchase) {
    users_ids_.prefetch(e.user_id);
    items_.prefetch(e.item_id);
  }
}

void Explorer::compact_users() {
  std::vector<std::uint8_t> live(users_ids_.size(), 0);
  tracker_.for_each_pending_user([&](std::uint32_t u) { live[u] = 1; });
  std::vector<std::uint32_t> remap(users_ids_.size(), UINT32_MAX);
  DenseIds kept;
  for (std::uint32_t u = 0; u < users_ids_.size(); ++u) {
    if (!live[u]) continue;
    remap[u] = kept.intern(users_ids_.id(u));  // old key order: deterministic
  }
  tracker_.remap_users(remap);
  std::vector<UserEntry*> post(kept.size(), nullptr);
  for (std::uint32_t u = 0; u < remap.size() && u < post_of_key_.size(); ++u)
    if (remap[u] != UINT32_MAX) post[remap[u]] = post_of_key_[u];
  post_of_key_ = std::move(post);
  users_ids_ = std::move(kept);
}

Recommendation Explorer::recommend(const StreamEngine& engine, const RecommendRequest& request, std::uint64_t request_number) const {
  const auto baseline = engine.baseline();
  return recommend([&](const RecommendRequest& r) { return engine.recommend(r); },
                   [&](const std::string& u, const std::string& i, double t) { return engine.score(u, i, t); },
                   *baseline, engine.watermark(), request, request_number);
}

Recommendation Explorer::recommend(const GreedyFn& greedy_fn, const ScoreFn& score_fn, const FactorModel& base,
                                   double watermark, const RecommendRequest& request, std::uint64_t request_number) const {
  RecommendRequest wide = request;
  const int pool = std::max(cfg_.pool, 0);
  wide.k = request.k > std::numeric_limits<int>::max() - pool ? std::numeric_limits<int>::max() : request.k + pool;
  const double t = request.time ? *request.time : watermark;
  wide.time = t;
  Recommendation greedy = greedy_fn(wide);
  if (cfg_.explore.policy == ExplorePolicy::kGreedy || request.k <= 0) {
    if (static_cast<int>(greedy.items.size()) > request.k) greedy.items.resize(static_cast<std::size_t>(std::max(request.k, 0)));
    return greedy;
  }
  // The candidate pool: the greedy top (k + pool), then the cold items it lacks.
  std::vector<std::string> ids;
  std::vector<float> scores;
  for (const auto& s : greedy.items) {
    ids.push_back(s.item_id);
    scores.push_back(s.score);
  }
  for (const std::string& c : cold_) {
    if (std::find(ids.begin(), ids.end(), c) != ids.end()) continue;
    if (std::find(request.cart_items.begin(), request.cart_items.end(), c) != request.cart_items.end()) continue;
    const float s = score_fn(request.user_id, c, t);
    if (!std::isfinite(s)) continue;
    ids.push_back(c);
    scores.push_back(s);
  }
  const FactorModel* baseline = &base;
  const int k = static_cast<int>(baseline->item_factors.cols());
  std::vector<float> vectors(ids.size() * static_cast<std::size_t>(k), 0.0f);
  std::vector<float> sd(ids.size());
  const double prior = 1.0 / (cfg_.explore.item_sigma * cfg_.explore.item_sigma);
  for (std::size_t j = 0; j < ids.size(); ++j) {
    float n = 0.0f;
    if (auto row = baseline->item_ids.find(ids[j]); row && static_cast<Eigen::Index>(*row) < baseline->item_factors.rows()) {
      std::copy_n(baseline->item_factors.row(static_cast<Eigen::Index>(*row)).data(), k, &vectors[j * static_cast<std::size_t>(k)]);
      n += cfg_.nightly_item_evidence;
    }
    if (const auto key = items_.find(ids[j])) n += evidence_.count(*key);
    sd[j] = static_cast<float>(1.0 / std::sqrt(prior + static_cast<double>(n) / cfg_.explore.noise_variance));
  }
  const UserPosterior* post = nullptr;
  if (auto it = users_.find(request.user_id); it != users_.end()) post = &it->second.posterior;
  std::uint64_t req = request_number;
  if (req == 0) {
    const double w = watermark;
    std::memcpy(&req, &w, sizeof req);
  }
  const ItemEvidence none;
  const auto slots = select_with_exploration(scores, {}, vectors.data(), k, post, none, cfg_.explore,
                                             {request.k, cfg_.seed, fnv1a(request.user_id), req}, &sd);
  Recommendation out = greedy;
  out.items.clear();
  for (const auto& s : slots) out.items.push_back({ids[s.item], s.score});
  return out;
}

void Explorer::save(std::ostream& out) const {
  BinaryWriter w(&out);
  w.put<std::uint32_t>(kFormat);
  w.put<std::uint64_t>(items_.size());
  for (std::uint32_t i = 0; i < items_.size(); ++i) w.put_string(items_.id(i));
  w.put<std::uint64_t>(users_ids_.size());
  for (std::uint32_t u = 0; u < users_ids_.size(); ++u) w.put_string(users_ids_.id(u));
  w.put_vector(evidence_.counts());
  tracker_.save(w);
  w.put<std::uint64_t>(cold_.size());
  for (const auto& s : cold_) w.put_string(s);
  // Posteriors in LRU order (most recent first), so eviction resumes identically.
  w.put<std::uint64_t>(lru_.size());
  int k = users_.empty() ? 0 : users_.begin()->second.posterior.dim();
  w.put<std::int32_t>(k);
  for (const auto& name : lru_) {
    w.put_string(name);
    users_.at(name).posterior.save(w);
  }
  const ExplorerCounters& c = counters_;
  for (std::uint64_t v : {c.impressions, c.rewards, c.weak_negatives, c.posterior_updates, c.evicted_users}) w.put<std::uint64_t>(v);
  w.flush();
}

void Explorer::restore(std::istream& in) {
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BinaryReader r(std::move(bytes));
  const auto format = r.get<std::uint32_t>();
  if (format != kFormat && format != kFormatCholesky) r.fail("explorer: unknown format");
  Explorer next(cfg_);
  const auto n_items = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < n_items; ++i) {
    const std::string s = r.get_string();
    if (next.items_.intern(s) != i) r.fail("explorer: duplicate item id");
  }
  const auto n_users = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < n_users; ++i) {
    const std::string s = r.get_string();
    if (next.users_ids_.intern(s) != i) r.fail("explorer: duplicate user id");
  }
  next.evidence_.counts() = r.get_vector<float>();
  for (float c : next.evidence_.counts())
    if (!(std::isfinite(c) && c >= 0.0f)) r.fail("explorer: item evidence is not a finite count >= 0");
  // Item keys index items_ (item_name, item_row): one it does not hold would read past it.
  next.tracker_.load(r, static_cast<std::uint32_t>(std::min<std::uint64_t>(n_users, UINT32_MAX)), n_items);
  const auto n_cold = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < n_cold; ++i) next.cold_.push_back(r.get_string());
  const auto n_post = r.get<std::uint64_t>();
  const auto k = r.get<std::int32_t>();
  if (n_post > 0 && (k <= 0 || k > 4096)) r.fail("explorer: bad posterior dimension");
  for (std::uint64_t i = 0; i < n_post; ++i) {
    std::string name = r.get_string();
    UserPosterior p = UserPosterior::load(
        r, k, format == kFormatCholesky ? UserPosterior::StoredAs::kCholesky : UserPosterior::StoredAs::kPrecision);
    next.lru_.push_back(name);
    if (!next.users_.emplace(name, UserEntry{std::move(p), std::prev(next.lru_.end())}).second) r.fail("explorer: duplicate posterior");
  }
  ExplorerCounters& c = next.counters_;
  for (std::uint64_t* v : {&c.impressions, &c.rewards, &c.weak_negatives, &c.posterior_updates, &c.evicted_users}) *v = r.get<std::uint64_t>();
  if (!r.at_end()) r.fail("explorer: trailing bytes");
  *this = std::move(next);
}

std::string Explorer::state_digest() const {
  std::ostringstream out;
  save(out);
  return sha256_hex(out.str());
}

std::size_t Explorer::posterior_bytes() const noexcept {
  std::size_t n = 0;
  for (const auto& [name, e] : users_) n += e.posterior.memory_bytes();
  return n;
}

}  // namespace freshrec::stream
