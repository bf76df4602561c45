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
  return static_cast<float>(std::log1p(static_cast<double>(item_events_[item])) /
                            std::log1p(static_cast<double>(max_item_events_)));
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
}  // namespace

Recommendation Core::recommend(const RecommendRequest& req) const {
  Recommendation out;
  const double t = req.time ? *req.time : watermark_;
  out.time = t;
  const RequestView v = view_of(req.user_id, t, page_beta_scale(cfg_, req.page_type));
  out.known_user = v.known;
  out.blend_weight = v.g;
  const auto n = static_cast<Eigen::Index>(n_items_);
  if (n == 0 || req.k <= 0) return out;
  const auto items = items_.topRows(n);

  // One pass over the item matrix: column 0 the user, column 1 the page item (if any).
  std::int32_t page = -1;
  if (!req.page_item_id.empty())
    if (auto p = item_ids_.find(req.page_item_id)) page = static_cast<std::int32_t>(*p);
  Eigen::VectorXf dots;
  Eigen::VectorXf page_dots;
  if (page >= 0 && cfg_.context.page_item_weight != 0.0f && item_norm_[page] > 0.0f) {
    Eigen::Matrix<float, Eigen::Dynamic, 2> rhs(k_, 2);
    rhs.col(0) = v.u_eff;
    rhs.col(1) = items_.row(page).transpose();
    const Eigen::Matrix<float, Eigen::Dynamic, 2> both = items * rhs;
    dots = both.col(0);
    page_dots = both.col(1);
  } else if (v.personal) {
    dots.noalias() = items * v.u_eff;
  } else {
    dots = Eigen::VectorXf::Zero(n);
  }

  std::vector<float> score(n);
  const float trend_w = cfg_.blend.trending_weight;
  const float page_w = cfg_.context.page_item_weight;
  const float page_norm = page >= 0 ? item_norm_[page] : 0.0f;
  for (Eigen::Index i = 0; i < n; ++i) {
    float s = finish_score(v, static_cast<std::uint32_t>(i), dots[i]);
    if (trend_w != 0.0f && item_events_[i] > 0 && item_windows_.windows() > 0)
      s += trend_w * static_cast<float>(std::log1p(static_cast<double>(item_windows_.count(i, 0, t))));
    if (page_dots.size() && item_norm_[i] > 0.0f) s += page_w * page_dots[i] / (item_norm_[i] * page_norm);
    score[i] = s;
  }

  // Exclusions: the page item, the cart, purchases, new items not yet recommendable.
  constexpr float kOut = -std::numeric_limits<float>::infinity();
  std::vector<char> out_mask(n, 0);
  if (page >= 0) out_mask[page] = 1;
  for (const std::string& c : req.cart_items)
    if (auto p = item_ids_.find(c)) out_mask[*p] = 1;
  if (cfg_.session.exclude_purchased && v.slot >= 0)
    for (std::uint32_t p : users_[v.slot].purchased) out_mask[p] = 1;
  const auto min_ev = static_cast<std::uint32_t>(std::max(0, cfg_.new_items.min_events));
  for (Eigen::Index i = 0; i < n; ++i)
    if (item_base_row_[i] < 0 && item_events_[i] < min_ev) out_mask[i] = 1;

  // Exact top-k: a bounded heap, ties broken by the smaller item key.
  auto better = [&score](std::uint32_t a, std::uint32_t b) {
    return score[a] != score[b] ? score[a] > score[b] : a < b;
  };
  const auto k = static_cast<std::size_t>(req.k);
  std::vector<std::uint32_t> heap;
  heap.reserve(k + 1);
  for (Eigen::Index i = 0; i < n; ++i) {
    if (out_mask[i] || score[i] == kOut || std::isnan(score[i])) continue;
    const auto idx = static_cast<std::uint32_t>(i);
    if (heap.size() < k) {
      heap.push_back(idx);
      std::push_heap(heap.begin(), heap.end(), better);  // heap top = the worst kept
    } else if (better(idx, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = idx;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  out.items.reserve(heap.size());
  for (std::uint32_t i : heap) out.items.push_back({item_ids_.id(i), score[i]});
  return out;
}

float Core::score(std::string_view user_id, std::string_view item_id, std::optional<double> time) const {
  const double t = time ? *time : watermark_;
  auto item = item_ids_.find(item_id);
  if (!item) return 0.0f;  // unknown item: no vector, no popularity
  const RequestView v = view_of(user_id, t, 1.0f);
  const float dot = v.personal ? items_.row(*item).dot(v.u_eff.transpose()) : 0.0f;
  float s = finish_score(v, *item, dot);
  if (cfg_.blend.trending_weight != 0.0f && item_windows_.windows() > 0)
    s += cfg_.blend.trending_weight * static_cast<float>(std::log1p(static_cast<double>(item_windows_.count(*item, 0, t))));
  return s;
}

}  // namespace freshrec::stream
