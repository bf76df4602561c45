#include "cpu/experiment/prequential.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <unordered_set>

#include <Eigen/Core>

#include "cpu/util/error.hpp"

namespace freshrec {

const char* scorer_kind_name(ScorerKind kind) noexcept {
  switch (kind) {
    case ScorerKind::kEngine: return "engine";
    case ScorerKind::kFrozen: return "frozen";
    case ScorerKind::kPopularity: return "popularity";
  }
  return "?";
}

EventMetrics event_metrics(int rank, int k) noexcept {
  EventMetrics m;
  if (rank >= 0 && rank < k) {
    m.hr = 1.0;
    m.recall = 1.0;
    m.ndcg = 1.0 / std::log2(static_cast<double>(rank) + 2.0);
  }
  return m;
}

int rank_of_target(const float* scores, const std::vector<char>& excluded, std::size_t n, std::size_t target) {
  if (target >= n || excluded[target] || std::isnan(scores[target])) return -1;
  const float st = scores[target];
  int rank = 0;
  for (std::size_t j = 0; j < n; ++j) {
    if (excluded[j] || j == target) continue;
    const float s = scores[j];
    if (s > st || (s == st && j < target)) ++rank;
  }
  return rank;
}

namespace {

using Clock = std::chrono::steady_clock;

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0.0;
  const auto idx = static_cast<std::size_t>(std::min<double>(static_cast<double>(v.size() - 1),
                                                             std::floor(p * static_cast<double>(v.size() - 1) + 0.5)));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(idx), v.end());
  return v[idx];
}

/// What a replay needs from whatever serves the recommendations. Item and user indices
/// are those of the replayed log.
class Scorer {
 public:
  virtual ~Scorer() = default;
  /// Rank of `item` for `user` at `time`, `seen` (the user's items so far) excluded.
  virtual int rank(std::uint32_t user, std::uint32_t item, double time, const std::vector<std::uint32_t>& seen) = 0;
  /// Learns from event `e` (global index) of the log.
  virtual ApplyResult apply(std::size_t e) = 0;
  /// Serves `model` (trained on events [0, prefix)) from now on.
  virtual void swap(std::shared_ptr<const FactorModel> model, std::size_t prefix) = 0;
};

/// Per-item event counts of the log's first `n` events.
std::vector<std::uint32_t> prefix_counts(const InteractionLog& log, std::size_t n) {
  std::vector<std::uint32_t> c(log.items.size(), 0u);
  for (std::size_t e = 0; e < n; ++e) ++c[log.item[e]];
  return c;
}

class PopularityScorer final : public Scorer {
 public:
  PopularityScorer(const InteractionLog& log, std::size_t prefix)
      : log_(log), counts_(prefix_counts(log, prefix)), scores_(counts_.size()), excluded_(counts_.size()) {}
  int rank(std::uint32_t, std::uint32_t item, double, const std::vector<std::uint32_t>& seen) override {
    // An item nobody has touched yet is not in the served catalogue.
    for (std::size_t j = 0; j < counts_.size(); ++j) {
      scores_[j] = static_cast<float>(counts_[j]);
      excluded_[j] = counts_[j] == 0;
    }
    for (std::uint32_t s : seen) excluded_[s] = 1;
    return rank_of_target(scores_.data(), excluded_, counts_.size(), item);
  }
  ApplyResult apply(std::size_t e) override {
    ++counts_[log_.item[e]];
    return {true, {}};
  }
  void swap(std::shared_ptr<const FactorModel>, std::size_t) override {}

 private:
  const InteractionLog& log_;
  std::vector<std::uint32_t> counts_;
  std::vector<float> scores_;
  std::vector<char> excluded_;
};

class FrozenScorer final : public Scorer {
 public:
  FrozenScorer(const InteractionLog& log, std::shared_ptr<const FactorModel> model, std::size_t prefix) : log_(log) {
    swap(std::move(model), prefix);
  }
  int rank(std::uint32_t user, std::uint32_t item, double, const std::vector<std::uint32_t>& seen) override {
    const std::int32_t row = user_row_[user];
    const std::size_t n = log_.items.size();
    if (row >= 0) {
      // Model rows → log item order, so ties break the same way in every scorer.
      dots_.noalias() = model_->item_factors * model_->user_factors.row(row).transpose();
      for (std::size_t j = 0; j < n; ++j) {
        const std::int32_t r = item_row_[j];
        excluded_[j] = r < 0;
        scores_[j] = r < 0 ? 0.0f : dots_[r] + (model_->kind == ModelKind::kExplicit
                                                     ? model_->item_bias[r] : 0.0f);
      }
    } else {
      for (std::size_t j = 0; j < n; ++j) {
        excluded_[j] = counts_[j] == 0;
        scores_[j] = static_cast<float>(counts_[j]);
      }
    }
    for (std::uint32_t s : seen) excluded_[s] = 1;
    return rank_of_target(scores_.data(), excluded_, n, item);
  }
  ApplyResult apply(std::size_t) override { return {true, {}}; }
  void swap(std::shared_ptr<const FactorModel> model, std::size_t prefix) override {
    model_ = std::move(model);
    user_row_.assign(log_.users.size(), -1);
    item_row_.assign(log_.items.size(), -1);
    for (std::size_t u = 0; u < log_.users.size(); ++u)
      if (auto r = model_->user_ids.find(log_.users.id(static_cast<std::uint32_t>(u))))
        user_row_[u] = static_cast<std::int32_t>(*r);
    for (std::size_t i = 0; i < log_.items.size(); ++i)
      if (auto r = model_->item_ids.find(log_.items.id(static_cast<std::uint32_t>(i))))
        item_row_[i] = static_cast<std::int32_t>(*r);
    counts_ = prefix_counts(log_, prefix);
    scores_.assign(log_.items.size(), 0.0f);
    excluded_.assign(log_.items.size(), 0);
  }

 private:
  const InteractionLog& log_;
  std::shared_ptr<const FactorModel> model_;
  std::vector<std::int32_t> user_row_, item_row_;
  std::vector<std::uint32_t> counts_;
  std::vector<float> scores_;
  std::vector<char> excluded_;
  Eigen::VectorXf dots_;
};

class EngineScorer final : public Scorer {
 public:
  EngineScorer(const InteractionLog& log, const StreamConfig& config, std::shared_ptr<const FactorModel> model,
               int k)
      : log_(log), engine_(config, std::move(model)), k_(k) {}
  int rank(std::uint32_t user, std::uint32_t item, double time, const std::vector<std::uint32_t>& seen) override {
    req_.user_id = log_.users.id(user);
    req_.k = k_;
    req_.time = time;
    // The engine never recommends cart items: exactly the seen-item exclusion we need.
    req_.cart_items.resize(seen.size());
    for (std::size_t j = 0; j < seen.size(); ++j) req_.cart_items[j] = log_.items.id(seen[j]);
    const Recommendation rec = engine_.recommend(req_);
    const std::string& target = log_.items.id(item);
    for (std::size_t r = 0; r < rec.items.size(); ++r)
      if (rec.items[r].item_id == target) return static_cast<int>(r);
    return -1;  // the engine ranks only its top K: the exact rank beyond K is not needed
  }
  ApplyResult apply(std::size_t e) override {
    ev_.user_id = log_.users.id(log_.user[e]);
    ev_.item_id = log_.items.id(log_.item[e]);
    ev_.type = log_.type[e];
    ev_.timestamp = log_.timestamp[e];
    ev_.rating = ev_.type == EventType::kRating ? static_cast<double>(log_.value[e]) : NAN;
    return engine_.apply(ev_);
  }
  void swap(std::shared_ptr<const FactorModel> model, std::size_t) override { engine_.swap_baseline(std::move(model)); }
  StreamCounters counters() const { return engine_.counters(); }

 private:
  const InteractionLog& log_;
  StreamEngine engine_;
  int k_;
  RecommendRequest req_;
  Event ev_;
};

}  // namespace

ReplayResult run_replay(const ReplayData& data, const ReplaySpec& spec, const ReplayOptions& options,
                        const ReplayObserver& observer) {
  const InteractionLog& log = data.log;
  if (spec.models.empty() || !spec.models[0]) throw InputError("run_replay: no nightly model");
  if (spec.swap_at.size() != spec.models.size()) throw InputError("run_replay: models and swap_at differ in length");
  if (options.k < 1) throw InputError("run_replay: k must be >= 1");
  const std::size_t begin = data.train_events;
  std::size_t end = log.size();
  if (options.max_stream_events > 0) end = std::min(end, begin + options.max_stream_events);

  std::unique_ptr<Scorer> scorer;
  EngineScorer* engine = nullptr;
  switch (spec.scorer) {
    case ScorerKind::kPopularity: scorer = std::make_unique<PopularityScorer>(log, begin); break;
    case ScorerKind::kFrozen: scorer = std::make_unique<FrozenScorer>(log, spec.models[0], begin); break;
    case ScorerKind::kEngine: {
      auto e = std::make_unique<EngineScorer>(log, spec.stream, spec.models[0], options.k);
      engine = e.get();
      scorer = std::move(e);
      break;
    }
  }

  // Seen items: everything before the split, then each event as it is applied.
  std::vector<std::vector<std::uint32_t>> seen(log.users.size());
  std::unordered_set<std::uint64_t> seen_pairs;
  seen_pairs.reserve(end * 2);
  auto mark_seen = [&](std::size_t e) {
    const std::uint64_t key = (static_cast<std::uint64_t>(log.user[e]) << 32) | log.item[e];
    if (seen_pairs.insert(key).second) seen[log.user[e]].push_back(log.item[e]);
  };
  for (std::size_t e = 0; e < begin; ++e) mark_seen(e);

  ReplayResult out;
  const std::size_t n_stream = end - begin;
  const int n_windows = std::max(1, std::min<int>(options.windows, static_cast<int>(std::max<std::size_t>(1, n_stream))));
  out.windows.resize(n_windows);
  std::vector<double> update_us, recommend_us;
  update_us.reserve(n_stream);
  recommend_us.reserve(n_stream);
  double sum_hr = 0.0, sum_ndcg = 0.0;
  std::size_t next_model = 1;

  const auto t0 = Clock::now();
  for (std::size_t e = begin; e < end; ++e) {
    while (next_model < spec.models.size() && spec.swap_at[next_model] <= e) {
      scorer->swap(spec.models[next_model], spec.swap_at[next_model]);
      ++next_model;
      ++out.swaps;
    }
    const std::size_t s = e - begin;
    WindowMetrics& w = out.windows[static_cast<std::size_t>(s * n_windows / n_stream)];
    if (w.events == 0) w.start_time = log.timestamp[e];
    w.end_time = log.timestamp[e];
    ++w.events;
    const std::uint32_t u = log.user[e], i = log.item[e];
    const bool repeat = seen_pairs.count((static_cast<std::uint64_t>(u) << 32) | i) > 0;
    if (!(repeat && options.skip_seen_targets)) {
      const auto r0 = Clock::now();
      EventOutcome outcome;
      outcome.rank = scorer->rank(u, i, log.timestamp[e], seen[u]);
      recommend_us.push_back(micros(Clock::now() - r0));
      const EventMetrics m = event_metrics(outcome.rank, options.k);
      sum_hr += m.hr;
      sum_ndcg += m.ndcg;
      w.hr += m.hr;
      w.ndcg += m.ndcg;
      ++w.scored;
      ++out.scored_events;
      if (observer) observer(e, outcome);
    }
    const auto a0 = Clock::now();
    if (!scorer->apply(e).accepted) ++out.rejected_events;
    update_us.push_back(micros(Clock::now() - a0));
    mark_seen(e);
  }
  out.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  out.stream_events = n_stream;
  if (out.scored_events) {
    out.hr = sum_hr / static_cast<double>(out.scored_events);
    out.recall = out.hr;
    out.ndcg = sum_ndcg / static_cast<double>(out.scored_events);
  }
  for (WindowMetrics& w : out.windows)
    if (w.scored) {
      w.hr /= static_cast<double>(w.scored);
      w.ndcg /= static_cast<double>(w.scored);
    }
  out.events_per_second = out.wall_seconds > 0 ? static_cast<double>(n_stream) / out.wall_seconds : 0.0;
  out.update_p50_us = percentile(update_us, 0.50);
  out.update_p99_us = percentile(update_us, 0.99);
  out.recommend_p50_us = percentile(recommend_us, 0.50);
  out.recommend_p99_us = percentile(recommend_us, 0.99);
  if (engine) out.counters = engine->counters();
  return out;
}

}  // namespace freshrec
