// The blend of the nightly and the fresh layers, and exact top-k over the catalogue.
//
// score(u,i,t) = b_i + (p_u + g d_u)·q_i + β g s_u(t)·q_i (+ μ + b_u + g δb_u when the
// baseline is explicit), g = exp(-lambda_blend (t − t_last(u))), q_i the current item
// vectors. All three user terms fold into one vector u_eff, so the catalogue is scored by a
// single mat-vec over the dense item matrix. s_u counts only while the session is live at t.
// Users absent from the baseline have p_u = 0: as g fades there would be no signal left, so
// their score is g·(personal) + (1 − g)·popularity; unknown users get popularity alone.
// Popularity is log1p(stream events of the item) / log1p(max over items), in [0, 1].
#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/stream/engine_core.hpp"
#include "cpu/stream/vec_ops.hpp"

namespace freshrec::stream {

struct Core::RequestView {
  bool known = false;      ///< in the baseline or tracked by the stream
  bool personal = false;   ///< has any user vector (baseline row or tracked)
  bool new_user = false;   ///< tracked, not in the baseline: blended with popularity
  std::int32_t slot = -1;
  double g = 0.0;
  float bias = 0.0f;       ///< μ + b_u + g δb_u (explicit), else 0
  Eigen::VectorXf u_eff;
};

Core::RequestView Core::view_of(std::string_view user_id, double t, float beta_scale) const {
  RequestView v;
  v.u_eff = Eigen::VectorXf::Zero(k_);
  std::int32_t base_row = -1;
  auto key = user_ids_.find(user_id);
  if (key) {
    base_row = user_base_row_[*key];
    v.slot = user_slot_[*key];
  } else if (auto r = base_->user_ids.find(user_id)) {
    base_row = static_cast<std::int32_t>(*r);
  }
  v.known = base_row >= 0 || v.slot >= 0;
  v.personal = v.known;
  v.new_user = base_row < 0 && v.slot >= 0;
  if (base_row >= 0) v.u_eff = base_->user_factors.row(base_row).transpose();
  if (explicit_) v.bias = base_->global_bias + (base_row >= 0 && base_->user_bias.size() ? base_->user_bias[base_row] : 0.0f);
  if (v.slot >= 0) {
    const UserState& u = users_[v.slot];
    v.g = std::exp(-cfg_.blend.lambda_blend * std::max(0.0, t - u.last_time));
    const auto g = static_cast<float>(v.g);
    v.u_eff += g * Eigen::Map<const Eigen::VectorXf>(&user_delta_[static_cast<std::size_t>(v.slot) * k_], k_);
    if (explicit_) v.bias += g * user_dbias_[v.slot];
    const float beta = cfg_.blend.beta * beta_scale;
    if (beta != 0.0f && u.session.live_at(cfg_.session, t)) {
      Eigen::VectorXf s(k_);
      session_embedding(cfg_.session, u.session, items_, t, s.data());
      v.u_eff += (beta * g) * s;
    }
  }
  return v;
}

float Core::popularity(std::uint32_t item) const {
  if (max_item_events_ == 0) return 0.0f;
  return static_cast<float>(item_lp_[item] / lp_max_);
}

float Core::finish_score(const RequestView& v, std::uint32_t item, float dot) const {
  float s;
  if (!v.personal) {
    s = popularity(item);
  } else {
    s = dot + (explicit_ ? v.bias + item_bias_[item] : 0.0f);
    if (v.new_user) s = static_cast<float>(v.g * s + (1.0 - v.g) * popularity(item));
  }
  return s;
}

namespace {
float page_beta_scale(const StreamConfig& cfg, const std::string& page_type) {
  return (page_type == "product" || page_type == "search" || page_type == "cart") ? cfg.context.product_page_beta
                                                                                   : 1.0f;
}

// The product of the context scales that apply to a request (device, time of day, weekend,
// holiday season; the brief's RequestTimeFeatureExtractor categories).
ContextScale context_scale(const ContextConfig& c, const std::string& device, double t) {
  ContextScale s;
  auto mul = [&s](const ContextScale& x) {
    s.beta *= x.beta;
    s.trending *= x.trending;
  };
  if (device == "mobile") mul(c.mobile);
  else if (device == "tablet") mul(c.tablet);
  else if (device == "desktop") mul(c.desktop);
  const double local = t + c.utc_offset_hours * 3600.0;
  // Calendar terms only for times a long long day count holds with room to spare (about
  // +-300,000 years): an in-process caller may pass any double.
  if (std::isfinite(local) && std::fabs(local) < 1e13) {
    const double days_f = std::floor(local / 86400.0);
    const auto days = static_cast<long long>(days_f);
    const int hour = static_cast<int>(std::floor((local - days_f * 86400.0) / 3600.0)) % 24;
    if (hour >= 6 && hour < 12) mul(c.morning);
    else if (hour >= 12 && hour < 18) mul(c.afternoon);
    else if (hour >= 18 && hour < 22) mul(c.evening);
    else mul(c.night);
    // 1970-01-01 was a Thursday: weekday (Monday = 0) = (days + 3) mod 7.
    const long long wd = ((days + 3) % 7 + 7) % 7;
    if (wd >= 5) mul(c.weekend);
    // Civil month from days since the epoch (Howard Hinnant's days_from_civil inverse).
    const long long z = days + 719468;
    const long long era = (z >= 0 ? z : z - 146096) / 146097;
    const long long doe = z - era * 146097;
    const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const long long mp = (5 * doy + 2) / 153;
    const long long month = mp < 10 ? mp + 3 : mp - 9;
    if (month == 11 || month == 12) mul(c.holiday_season);
  }
  return s;
}

// Candidates of the first pass, in item order.
struct Candidate {
  std::uint32_t item;
  float upper;  ///< upper bound of the exact score
};
}  // namespace

float Core::exact_score(const RequestView& v, std::uint32_t item, double t, float trend_w, const float* page_vec,
                        float page_norm) const {
  const float d = v.personal ? dot(items_.row(item).data(), v.u_eff.data(), k_) : 0.0f;
  float s = finish_score(v, item, d);
  if (trend_w != 0.0f && item_events_[item] > 0 && item_windows_.windows() > 0)
    s += trend_w * static_cast<float>(std::log1p(static_cast<double>(item_windows_.count(item, 0, t))));
  if (page_vec && item_norm_[item] > 0.0f)
    s += cfg_.context.page_item_weight * dot(items_.row(item).data(), page_vec, k_) / (item_norm_[item] * page_norm);
  return s;
}

// Exact top-k in two passes. Pass 1 reads the int8 copy of the item matrix (n*k bytes
// instead of 4*n*k: the float matrix is memory-bound at ~25 MB for 100K x 64) and gives
// each item an approximate score a_i with a proven error bound e_i:
//   |q·u - scale_i Σ q8_d u_d| <= scale_i (|q - scale_i q8|_inf |u|_1 + float rounding)
//                              <= scale_i |u|_1 (1/2 + 2 * 64 * 2^-24 * 127 + ...) < 0.51 scale_i |u|_1,
// for k up to 64 (the rounding share grows with k: the constant is 0.5 + k * 1.6e-5), both
// for the approximate and the exact float dot. The page-item cosine term gets the same bound
// through its own dot; the blend's other terms (biases, popularity, trending) are computed
// exactly, and a relative slack of 1e-5 covers the float additions. Hence exact s_i lies in
// [a_i - e_i, a_i + e_i]. The k-th largest lower bound tau (eligible items only) is a lower
// bound of the k-th best exact score, so every item of the exact top-k has a_i + e_i >= tau:
// keeping every item whose upper bound reaches the running tau is a safe superset. Pass 2
// rescores those candidates exactly in float32 (the same arithmetic as score()) and selects
// the top-k with ties to the smaller item key. On random 100K x 64 models the superset is
// typically k plus a few items.
Recommendation Core::recommend(const RecommendRequest& req) const {
  if (!explorer_ || req.k <= 0) return recommend_greedy(req);
  // The explorer re-ranks the greedy top (k + pool) plus its cold candidates; its draw is keyed
  // on the watermark, so the same events give the same recommendations.
  return explorer_->recommend([this](const RecommendRequest& r) { return recommend_greedy(r); },
                              [this, &req](const std::string&, const std::string& item, double t) {
                                return explore_score(req, item, t);
                              },
                              *base_, watermark_, req);
}

float Core::explore_score(const RecommendRequest& req, const std::string& item_id, double t) const {
  constexpr float kNever = -std::numeric_limits<float>::infinity();
  const auto item = item_ids_.find(item_id);
  if (!item) return kNever;
  const std::uint32_t i = *item;
  if (item_base_row_[i] < 0 && item_events_[i] < static_cast<std::uint32_t>(std::max(0, cfg_.new_items.min_events)))
    return kNever;
  if (!req.page_item_id.empty() && req.page_item_id == item_id) return kNever;
  for (const std::string& c : req.cart_items)
    if (c == item_id) return kNever;
  if (cfg_.session.exclude_purchased)
    if (const auto u = user_ids_.find(req.user_id); u && user_slot_[*u] >= 0) {
      const auto& bought = users_[user_slot_[*u]].purchased;
      if (std::find(bought.begin(), bought.end(), i) != bought.end()) return kNever;
    }
  return score(req.user_id, item_id, t);
}

Recommendation Core::recommend_greedy(const RecommendRequest& req) const {
  Recommendation out;
  const double t = req.time ? *req.time : watermark_;
  out.time = t;
  const ContextScale ctx = context_scale(cfg_.context, req.device, t);
  const RequestView v = view_of(req.user_id, t, page_beta_scale(cfg_, req.page_type) * ctx.beta);
  out.known_user = v.known;
  out.blend_weight = v.g;
  const std::size_t n = n_items_;
  if (n == 0 || req.k <= 0) return out;
  const int k = k_;

  std::int32_t page = -1;
  if (!req.page_item_id.empty())
    if (auto p = item_ids_.find(req.page_item_id)) page = static_cast<std::int32_t>(*p);
  const bool use_page = page >= 0 && cfg_.context.page_item_weight != 0.0f && item_norm_[page] > 0.0f &&
                        std::isfinite(item_norm_[page]);
  const float* page_vec = use_page ? items_.row(page).data() : nullptr;
  const float page_norm = use_page ? item_norm_[page] : 0.0f;
  const float page_w = cfg_.context.page_item_weight;
  const float trend_w = cfg_.blend.trending_weight * ctx.trending;

  // Exclusions: the page item, the cart, purchases (sorted, binary-searched only when an item
  // could enter the result), and new items not yet recommendable.
  std::vector<std::uint32_t> excluded;
  if (page >= 0) excluded.push_back(static_cast<std::uint32_t>(page));
  for (const std::string& c : req.cart_items)
    if (auto p = item_ids_.find(c)) excluded.push_back(*p);
  if (cfg_.session.exclude_purchased && v.slot >= 0)
    excluded.insert(excluded.end(), users_[v.slot].purchased.begin(), users_[v.slot].purchased.end());
  std::sort(excluded.begin(), excluded.end());
  const auto min_ev = static_cast<std::uint32_t>(std::max(0, cfg_.new_items.min_events));
  auto eligible = [&](std::uint32_t i) {
    if (item_base_row_[i] < 0 && item_events_[i] < min_ev) return false;
    return !std::binary_search(excluded.begin(), excluded.end(), i);
  };

  // Error-bound factors: e_i = scale_i * (user_factor + page_factor / |q_i|) (+ slack).
  const float* u = v.u_eff.data();
  const bool use_user = v.personal;
  double u_l1 = 0.0, p_l1 = 0.0;
  for (int d = 0; d < k; ++d) u_l1 += std::fabs(static_cast<double>(u[d]));
  if (use_page)
    for (int d = 0; d < k; ++d) p_l1 += std::fabs(static_cast<double>(page_vec[d]));
  const double c_bound = 0.5 + 1.6e-5 * std::max(k, 64) + 1e-3;
  const double dot_scale = v.new_user ? v.g : 1.0;  // finish_score's factor on the dot
  const auto user_err = static_cast<float>(c_bound * u_l1 * dot_scale);
  const auto page_err = use_page ? static_cast<float>(c_bound * p_l1 * std::fabs(page_w) / page_norm) : 0.0f;

  // No more than the catalogue: a larger k (an in-process caller) would only size the buffers.
  const std::size_t want = std::min(static_cast<std::size_t>(req.k), n);
  // Min-heap of the `want` largest lower bounds: tau = its top once full.
  std::vector<float> lows;
  lows.reserve(want + 1);
  float tau = -std::numeric_limits<float>::infinity();
  std::vector<Candidate> cands;
  cands.reserve(4 * want + 64);
  constexpr std::size_t kBlock = 256;
  float dots_u[kBlock], dots_p[kBlock], uppers[kBlock];
  const bool plain = use_user && !use_page && trend_w == 0.0f && v.personal && !v.new_user && !explicit_;
  const std::int8_t* q8 = items_q8_.data();
  for (std::size_t b0 = 0; b0 < n; b0 += kBlock) {
    const std::size_t b1 = std::min(n, b0 + kBlock);
    if (use_user && use_page) {
      for (std::size_t i = b0; i < b1; ++i)
        dot2_q8(q8 + i * k, u, page_vec, k, &dots_u[i - b0], &dots_p[i - b0]);
    } else if (use_user) {
      for (std::size_t i = b0; i < b1; ++i) dots_u[i - b0] = dot_q8(q8 + i * k, u, k);
    } else if (use_page) {
      for (std::size_t i = b0; i < b1; ++i) dots_p[i - b0] = dot_q8(q8 + i * k, page_vec, k);
    }
    // The common request (a known user, no page item, no trending term, implicit model):
    // upper bounds of the whole block first, in a branch-free loop that vectorises, with the
    // expressions of the per-item path below; only items whose bound reaches tau go through
    // it (a NaN or infinite bound does too, and is handled there).
    if (plain) {
      const std::size_t nb = b1 - b0;
      const float* scale = &item_scale_[b0];
      for (std::size_t j = 0; j < nb; ++j) {
        const float a = scale[j] * dots_u[j];
        float e = scale[j] * user_err;
        e += 1e-5f * (std::fabs(a) + e);
        uppers[j] = a + e;
      }
    }
    for (std::size_t i = b0; i < b1; ++i) {
      if (plain && uppers[i - b0] < tau) continue;
      const auto item = static_cast<std::uint32_t>(i);
      const float sc = item_scale_[i];
      // The same expressions as exact_score(), the user's dot taken from the int8 row.
      float a = finish_score(v, item, use_user ? sc * dots_u[i - b0] : 0.0f);
      float e = use_user ? sc * user_err : 0.0f;
      float mag = std::fabs(a);  // magnitude of the summed terms: bounds the float rounding
      if (trend_w != 0.0f && item_events_[i] > 0 && item_windows_.windows() > 0) {
        const float tr = trend_w * static_cast<float>(std::log1p(static_cast<double>(item_windows_.count(i, 0, t))));
        a += tr;
        mag += std::fabs(tr);
      }
      if (use_page && item_norm_[i] > 0.0f) {
        const float pt = page_w * (sc * dots_p[i - b0]) / (item_norm_[i] * page_norm);
        a += pt;
        mag += std::fabs(pt);
        e += sc * page_err / item_norm_[i];
      }
      e += 1e-5f * (mag + e);
      if (!(e < std::numeric_limits<float>::infinity()) || std::isnan(a)) {
        // No usable bound (an extreme row): always a candidate, never raises tau.
        if (eligible(item)) cands.push_back({item, std::numeric_limits<float>::infinity()});
        continue;
      }
      const float upper = a + e;
      if (upper < tau) continue;
      if (!eligible(item)) continue;
      cands.push_back({item, upper});
      const float lower = a - e;
      if (lows.size() < want) {
        lows.push_back(lower);
        std::push_heap(lows.begin(), lows.end(), std::greater<float>());
        if (lows.size() == want) tau = lows.front();
      } else if (lower > tau) {
        std::pop_heap(lows.begin(), lows.end(), std::greater<float>());
        lows.back() = lower;
        std::push_heap(lows.begin(), lows.end(), std::greater<float>());
        tau = lows.front();
      }
    }
  }

  // Pass 2: exact scores of the candidates still above the final tau.
  constexpr float kOut = -std::numeric_limits<float>::infinity();
  std::vector<std::pair<float, std::uint32_t>> scored;
  scored.reserve(cands.size());
  for (const Candidate& c : cands) {
    if (c.upper < tau) continue;
    const float s = exact_score(v, c.item, t, trend_w, page_vec, page_norm);
    if (s == kOut || std::isnan(s)) continue;
    scored.emplace_back(s, c.item);
  }
  auto better = [](const std::pair<float, std::uint32_t>& a, const std::pair<float, std::uint32_t>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  const std::size_t keep = std::min(want, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep), scored.end(), better);
  out.items.reserve(keep);
  for (std::size_t j = 0; j < keep; ++j) out.items.push_back({item_ids_.id(scored[j].second), scored[j].first});
  return out;
}

float Core::score(std::string_view user_id, std::string_view item_id, std::optional<double> time) const {
  const double t = time ? *time : watermark_;
  auto item = item_ids_.find(item_id);
  if (!item) return 0.0f;  // unknown item: no vector, no popularity
  const RequestView v = view_of(user_id, t, 1.0f);
  return exact_score(v, *item, t, cfg_.blend.trending_weight, nullptr, 0.0f);
}

}  // namespace freshrec::stream
