#include "cpu/experiment/experiment_runner.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "cpu/data/event_type.hpp"
#include "cpu/experiment/statistics.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

template <typename... Args>
void say(std::FILE* f, fmt::format_string<Args...> format, Args&&... args) {
  if (!f) return;
  std::fputs(fmt::format(format, std::forward<Args>(args)...).c_str(), f);
  std::fflush(f);
}

/// Global indices of the events before which a retrained model is swapped in: the first
/// stream event at or after cutoff + m * days (m = 1, 2, ...).
std::vector<std::size_t> retrain_points(const ReplayData& data, std::size_t end, double days) {
  std::vector<std::size_t> at;
  if (!(days > 0)) return at;
  const double step = days * 86400.0;
  double next = data.cutoff_time + step;
  for (std::size_t e = data.train_events; e < end; ++e) {
    if (data.log.timestamp[e] >= next) {
      at.push_back(e);
      while (data.log.timestamp[e] >= next) next += step;
    }
  }
  return at;
}

struct Job {
  std::size_t spec = 0;   ///< index into the flat spec list
  std::size_t seed = 0;   ///< index into config.seeds
  ReplaySpec replay;
  std::string backend;
  ReplayResult result;
};

nlohmann::json metrics_json(const std::vector<const ReplayResult*>& runs, int k, const VariantSpec& v,
                            const std::vector<std::uint64_t>& seeds, const std::string& backend) {
  const std::string K = std::to_string(k);
  std::vector<double> hr, recall, ndcg, eps, p50, p99, r50, r99;
  for (const ReplayResult* r : runs) {
    hr.push_back(r->hr);
    recall.push_back(r->recall);
    ndcg.push_back(r->ndcg);
    eps.push_back(r->events_per_second);
    p50.push_back(r->update_p50_us);
    p99.push_back(r->update_p99_us);
    r50.push_back(r->recommend_p50_us);
    r99.push_back(r->recommend_p99_us);
  }
  nlohmann::json j;
  j["scorer"] = scorer_kind_name(v.scorer);
  if (!v.description.empty()) j["description"] = v.description;
  j["retrain_every_days"] = v.retrain_every_days;
  j["backend"] = backend;
  j["hr@" + K] = mean_std(hr).mean;
  j["recall@" + K] = mean_std(recall).mean;
  j["ndcg@" + K] = mean_std(ndcg).mean;
  j["hr@" + K + "_std"] = mean_std(hr).std;
  j["recall@" + K + "_std"] = mean_std(recall).std;
  j["ndcg@" + K + "_std"] = mean_std(ndcg).std;
  j["events_per_s"] = mean_std(eps).mean;
  j["update_latency_us"] = {{"p50", mean_std(p50).mean}, {"p99", mean_std(p99).mean}};
  j["recommend_latency_us"] = {{"p50", mean_std(r50).mean}, {"p99", mean_std(r99).mean}};
  const ReplayResult& first = *runs.front();
  j["stream_events"] = first.stream_events;
  j["scored_events"] = first.scored_events;
  j["rejected_events"] = first.rejected_events;
  j["swaps"] = first.swaps;
  // Windows: means over seeds, window by window.
  nlohmann::json windows = nlohmann::json::array();
  for (std::size_t w = 0; w < first.windows.size(); ++w) {
    std::vector<double> wh, wn;
    for (const ReplayResult* r : runs) {
      wh.push_back(r->windows[w].hr);
      wn.push_back(r->windows[w].ndcg);
    }
    const WindowMetrics& fw = first.windows[w];
    windows.push_back({{"start_time", fw.start_time}, {"end_time", fw.end_time}, {"events", fw.events},
                       {"scored", fw.scored}, {"hr@" + K, mean_std(wh).mean}, {"recall@" + K, mean_std(wh).mean},
                       {"ndcg@" + K, mean_std(wn).mean}, {"hr@" + K + "_std", mean_std(wh).std}});
  }
  j["windows"] = windows;
  nlohmann::json per_seed = nlohmann::json::array();
  for (std::size_t s = 0; s < runs.size(); ++s) {
    const ReplayResult& r = *runs[s];
    per_seed.push_back({{"seed", seeds[s]}, {"hr@" + K, r.hr}, {"recall@" + K, r.recall}, {"ndcg@" + K, r.ndcg},
                        {"events_per_s", r.events_per_second}, {"wall_s", r.wall_seconds},
                        {"update_latency_us", {{"p50", r.update_p50_us}, {"p99", r.update_p99_us}}}});
  }
  j["per_seed"] = per_seed;
  if (v.scorer == ScorerKind::kEngine) {
    const StreamCounters& c = first.counters;
    j["engine_counters"] = {{"events", c.events},           {"sgd_updates", c.sgd_updates},
                            {"foldins", c.foldins},         {"guard_accepts", c.guard_accepts},
                            {"guard_rollbacks", c.guard_rollbacks}, {"new_users", c.new_users},
                            {"new_items", c.new_items},     {"non_finite_skipped", c.non_finite_skipped}};
  }
  j["overrides"] = v.overrides;
  return j;
}

}  // namespace

nlohmann::json run_experiment(const ExperimentConfig& config, const RunOptions& options) {
  const auto t_start = Clock::now();
  std::FILE* log = options.progress;
  const int k = config.protocol.replay.k;
  const std::string K = std::to_string(k);

  auto t = Clock::now();
  const ReplayData data = load_replay_data(config.dataset, config.protocol.train_fraction);
  const double load_s = seconds_since(t);
  std::size_t end = data.log.size();
  if (config.protocol.replay.max_stream_events > 0)
    end = std::min(end, data.train_events + config.protocol.replay.max_stream_events);
  say(log, "[data] {} events, {} users, {} items; nightly trains on {} events (cutoff {:.0f}), {} replayed ({:.1f}s)\n",
      data.log.size(), data.log.users.size(), data.log.items.size(), data.train_events, data.cutoff_time,
      end - data.train_events, load_s);

  // Every spec to replay: the variants, then each sweep's points.
  std::vector<const VariantSpec*> specs;
  for (const VariantSpec& v : config.variants) specs.push_back(&v);
  for (const SweepSpec& s : config.sweeps)
    for (const VariantSpec& p : s.points) specs.push_back(&p);

  // Models: one per (train config, seed, prefix), trained once and shared (read-only).
  t = Clock::now();
  std::map<std::tuple<std::string, std::uint64_t, std::size_t>, std::pair<std::shared_ptr<const FactorModel>, std::string>>
      models;
  auto model_for = [&](const VariantSpec& v, std::uint64_t seed, std::size_t prefix) {
    auto key = std::make_tuple(v.train_key, seed, prefix);
    auto it = models.find(key);
    if (it != models.end()) return it->second;
    TrainConfig tc = v.train;
    tc.seed = seed;
    const auto t0 = Clock::now();
    std::string backend;
    auto m = train_prefix_model(data.log, prefix, tc, &backend);
    say(log, "[train] seed {} on {} events: {} users x {} items, {} ({:.2f}s)\n", seed, prefix, m->n_users(),
        m->n_items(), m->hyperparameters.count("trainer") ? m->hyperparameters.at("trainer") : backend,
        seconds_since(t0));
    return models[key] = {m, backend};
  };
  std::vector<Job> jobs;
  for (std::size_t si = 0; si < config.seeds.size(); ++si) {
    for (std::size_t vi = 0; vi < specs.size(); ++vi) {
      const VariantSpec& v = *specs[vi];
      Job job;
      job.spec = vi;
      job.seed = si;
      job.replay.scorer = v.scorer;
      job.replay.stream = v.stream;
      job.replay.stream.seed = config.seeds[si];
      job.replay.stream.guard.log_decisions = false;  // one line per cycle per replay is noise here
      auto [m0, backend] = model_for(v, config.seeds[si], data.train_events);
      job.backend = backend;
      job.replay.models.push_back(m0);
      job.replay.swap_at.push_back(data.train_events);
      if (v.scorer != ScorerKind::kPopularity)
        for (std::size_t at : retrain_points(data, end, v.retrain_every_days)) {
          job.replay.models.push_back(model_for(v, config.seeds[si], at).first);
          job.replay.swap_at.push_back(at);
        }
      jobs.push_back(std::move(job));
    }
  }
  const double train_s = seconds_since(t);

  // Replays in parallel: each owns its engine; the models and the data are shared read-only.
  t = Clock::now();
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned n_threads =
      std::min<unsigned>(config.threads > 0 ? static_cast<unsigned>(config.threads) : hw, static_cast<unsigned>(jobs.size()));
  std::atomic<std::size_t> next{0};
  std::mutex err_mu, log_mu;
  std::exception_ptr error;
  auto worker = [&] {
    for (std::size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      try {
        jobs[j].result = run_replay(data, jobs[j].replay, config.protocol.replay);
        std::lock_guard<std::mutex> lock(log_mu);
        const ReplayResult& r = jobs[j].result;
        say(log, "[replay] {:<24} seed {:<4} hr@{} {:.4f} ndcg@{} {:.4f}  {:.0f} events/s\n", specs[jobs[j].spec]->name,
            config.seeds[jobs[j].seed], k, r.hr, k, r.ndcg, r.events_per_second);
      } catch (...) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < n_threads; ++i) pool.emplace_back(worker);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  const double replay_s = seconds_since(t);

  // Aggregate.
  auto runs_of = [&](std::size_t vi) {
    std::vector<const ReplayResult*> runs(config.seeds.size());
    for (const Job& j : jobs)
      if (j.spec == vi) runs[j.seed] = &j.result;
    return runs;
  };
  auto backend_of = [&](std::size_t vi) {
    for (const Job& j : jobs)
      if (j.spec == vi) return j.backend;
    return std::string();
  };
  nlohmann::json results;
  results["experiment"] = config.name;
  results["config_file"] = config.source;
  results["git_commit"] = options.git_commit;
  results["config"] = config.resolved;
  results["k"] = k;
  results["seeds"] = config.seeds;
  results["protocol"] = {{"train_fraction", config.protocol.train_fraction},
                         {"windows", config.protocol.replay.windows},
                         {"skip_seen_targets", config.protocol.replay.skip_seen_targets},
                         {"max_stream_events", config.protocol.replay.max_stream_events},
                         {"ranking", "full catalogue, the user's already-seen items excluded"},
                         {"recall_note", "one target per event, so recall@K = HR@K"}};
  results["data"] = {{"events", data.log.size()},       {"users", data.log.users.size()},
                     {"items", data.log.items.size()},  {"train_events", data.train_events},
                     {"stream_events", end - data.train_events}, {"cutoff_time", data.cutoff_time},
                     {"bad_lines", data.lines_bad},
                     {"as_event_type", config.dataset.as_event_type
                                           ? nlohmann::json(std::string(event_type_name(*config.dataset.as_event_type)))
                                           : nlohmann::json(nullptr)}};
  std::size_t vi = 0;
  nlohmann::json variants = nlohmann::json::object();
  for (const VariantSpec& v : config.variants) {
    variants[v.name] = metrics_json(runs_of(vi), k, v, config.seeds, backend_of(vi));
    ++vi;
  }
  results["variants"] = variants;
  nlohmann::json sweeps = nlohmann::json::object();
  for (const SweepSpec& s : config.sweeps) {
    nlohmann::json points = nlohmann::json::array();
    for (std::size_t p = 0; p < s.points.size(); ++p) {
      nlohmann::json m = metrics_json(runs_of(vi), k, s.points[p], config.seeds, backend_of(vi));
      m["value"] = s.values[p];
      m["name"] = s.points[p].name;
      m.erase("per_seed");
      points.push_back(std::move(m));
      ++vi;
    }
    sweeps[s.name] = {{"variant", s.variant}, {"key", s.key}, {"points", points}};
  }
  results["sweeps"] = sweeps;

  // Paired test over time windows (seed means) and over seeds.
  if (variants.contains(config.compare.treatment) && variants.contains(config.compare.baseline)) {
    const auto& a = variants[config.compare.treatment];
    const auto& b = variants[config.compare.baseline];
    std::vector<double> wa, wb, sa, sb;
    for (std::size_t w = 0; w < a["windows"].size(); ++w) {
      if (a["windows"][w]["scored"].get<std::size_t>() == 0) continue;
      wa.push_back(a["windows"][w]["hr@" + K].get<double>());
      wb.push_back(b["windows"][w]["hr@" + K].get<double>());
    }
    for (std::size_t s = 0; s < a["per_seed"].size(); ++s) {
      sa.push_back(a["per_seed"][s]["hr@" + K].get<double>());
      sb.push_back(b["per_seed"][s]["hr@" + K].get<double>());
    }
    auto to_json = [](const PairedTest& p) {
      return nlohmann::json{{"n", p.n},       {"mean_diff", p.mean_diff}, {"t", std::isfinite(p.t) ? nlohmann::json(p.t) : nlohmann::json(p.t > 0 ? "inf" : "-inf")},
                            {"t_p", p.t_p},   {"wins", p.wins},           {"losses", p.losses},
                            {"ties", p.ties}, {"sign_p", p.sign_p}};
    };
    results["paired_test"] = {{"treatment", config.compare.treatment},
                              {"baseline", config.compare.baseline},
                              {"metric", "hr@" + K},
                              {"over_windows", to_json(paired_test(wa, wb))},
                              {"over_seeds", to_json(paired_test(sa, sb))}};
  }
  results["timing"] = {{"load_s", load_s},
                       {"train_s", train_s},
                       {"replay_s", replay_s},
                       {"replay_threads", n_threads},
                       {"models_trained", models.size()},
                       {"total_s", seconds_since(t_start)}};
  return results;
}

}  // namespace freshrec
