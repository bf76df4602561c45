#include "cpu/experiment/bandit_sim.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "cpu/config/yaml_reader.hpp"
#include "cpu/experiment/statistics.hpp"
#include "cpu/stream/impressions.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

using stream::ExploreConfig;
using stream::ExplorePolicy;
using stream::hashed_normal;
using stream::hashed_uniform;

// Independent hash streams of one seed (truth, nightly noise, traffic, clicks).
enum Stream : std::uint64_t { kTruth = 1, kNoise = 2, kTraffic = 3, kClicks = 4 };

nlohmann::json to_json(const YAML::Node& n) {
  if (!n || n.IsNull()) return nullptr;
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "false") return s == "true";
    try {
      std::size_t used = 0;
      const double d = std::stod(s, &used);
      if (used == s.size()) return d;
    } catch (...) {
    }
    return s;
  }
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& x : n) a.push_back(to_json(x));
    return a;
  }
  nlohmann::json o = nlohmann::json::object();
  for (const auto& kv : n) o[kv.first.Scalar()] = to_json(kv.second);
  return o;
}

void read_explore(YamlSection& s, ExploreConfig& e) {
  s.get_enum("policy", e.policy,
             {{"greedy", ExplorePolicy::kGreedy}, {"epsilon", ExplorePolicy::kEpsilon}, {"thompson", ExplorePolicy::kThompson}});
  s.get("slots", e.slots, 0, 1000);
  s.get("epsilon", e.epsilon, 0.0, 1.0);
  s.get("prior_precision", e.prior_precision, 1e-9, 1e9);
  s.get("noise_variance", e.noise_variance, 1e-9, 1e9);
  s.get("item_sigma", e.item_sigma, 1e-9, 1e6);
  s.get("reward_window_seconds", e.reward_window_seconds, 1e-3, 1e9);
  s.get("impression_weight", e.impression_weight, 0.0, 1.0);
  int pending = static_cast<int>(e.max_pending_impressions);
  s.get("max_pending_impressions", pending, 1, 100000000);
  e.max_pending_impressions = static_cast<std::size_t>(pending);
  int items = static_cast<int>(e.max_items_per_impression);
  s.get("max_items_per_impression", items, 1, 100000);
  e.max_items_per_impression = static_cast<std::size_t>(items);
}

void read_sim(YamlSection& s, BanditSimConfig& c) {
  std::string kind = "bandit_cold_start";
  s.get("kind", kind);
  if (kind != "bandit_cold_start") s.fail("kind", "'" + kind + "' is not one of: bandit_cold_start");
  s.get("users", c.users, 1, 10000000);
  s.get("dims", c.dims, 1, 128);
  s.get("initial_items", c.initial_items, 1, 10000000);
  s.get("new_items", c.new_items, 0, 10000000);
  s.get("arrival_fraction", c.arrival_fraction, 0.0, 1.0);
  s.get("requests", c.requests, 1, 100000000);
  s.get("k", c.k, 1, 1000);
  s.get("base_ctr", c.base_ctr, 0.0, 1.0);
  s.get("max_affinity", c.max_affinity, 0.0, 1.0);
  s.get("secondary_items", c.secondary_items, 0.0, 1.0);
  s.get("user_noise", c.user_noise, 0.0, 10.0);
  s.get("item_noise", c.item_noise, 0.0, 10.0);
  s.get("nightly_item_evidence", c.nightly_item_evidence, 0.0, 1e9);
  s.get("item_prior_precision", c.item_prior_precision, 1e-9, 1e9);
  s.get("seconds_per_request", c.seconds_per_request, 1e-3, 1e6);
  s.get("click_delay_seconds", c.click_delay_seconds, 0.0, 1e6);
  if (c.base_ctr + c.max_affinity > 1.0) s.fail("max_affinity", "base_ctr + max_affinity must not exceed 1");
  if (c.click_delay_seconds >= c.seconds_per_request)
    s.fail("click_delay_seconds", "must be below seconds_per_request (clicks land before the next request)");
}

BanditExperimentConfig parse_root(const YAML::Node& root, const std::string& origin, const std::set<std::string>& overridden) {
  BanditExperimentConfig c;
  c.source = origin;
  c.resolved = to_json(root);
  // seeds is a list, which YamlSection reads only as scalars: take it out first.
  YAML::Node rest = YAML::Clone(root);
  if (const YAML::Node seeds = root["seeds"]) {
    c.seeds.clear();
    if (!seeds.IsSequence() || seeds.size() == 0)
      throw InputError(origin + ":" + std::to_string(seeds.Mark().line + 1) + ": key 'seeds': expected a non-empty list of integers");
    for (const auto& x : seeds) {
      try {
        c.seeds.push_back(x.as<std::uint64_t>());
      } catch (const YAML::Exception&) {
        throw InputError(origin + ":" + std::to_string(x.Mark().line + 1) + ": key 'seeds': '" + x.Scalar() +
                         "' is not a non-negative integer");
      }
    }
    rest.remove("seeds");
  }
  YamlSection top(rest, "", origin, &overridden);
  top.get("name", c.name);
  std::string description;
  top.get("description", description);
  top.section("simulation", [&](YamlSection& s) { read_sim(s, c.sim); });
  ExploreConfig base;
  top.section("explore", [&](YamlSection& s) { read_explore(s, base); });
  if (!top.has("variants")) top.fail("variants", "required: a mapping of variant name to explore overrides");
  const YAML::Node vnode = rest["variants"];
  if (!vnode.IsMap() || vnode.size() == 0) top.fail("variants", "expected a non-empty mapping of variant name to explore overrides");
  top.section("variants", [&](YamlSection& vs) {
    for (const auto& kv : vnode) {
      BanditVariant v;
      v.name = kv.first.Scalar();
      v.explore = base;
      vs.section(v.name, [&](YamlSection& s) { read_explore(s, v.explore); });
      c.variants.push_back(std::move(v));
    }
  });
  top.finish();
  return c;
}

struct Truth {
  int dims = 0;
  std::vector<float> user;   // users x dims
  std::vector<float> item;   // items x dims (initial, then new)
};

float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

}  // namespace

bool is_bandit_experiment(const std::string& file) {
  try {
    const YAML::Node root = YAML::LoadFile(file);
    return root.IsMap() && root["simulation"];
  } catch (const YAML::Exception&) {
    return false;  // the regular loader reports the syntax error with its context
  }
}

BanditExperimentConfig load_bandit_experiment(const std::string& file, const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  const YAML::Node root = load_yaml_with_overrides(file, overrides, overridden);
  return parse_root(root, file, overridden);
}

BanditExperimentConfig parse_bandit_experiment(const std::string& yaml_text, const std::string& origin,
                                               const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  const YAML::Node root = parse_yaml_with_overrides(yaml_text, origin, overrides, overridden);
  return parse_root(root, origin, overridden);
}

BanditRunResult run_bandit_simulation(const BanditSimConfig& sim, const ExploreConfig& explore, std::uint64_t seed) {
  const int D = sim.dims;
  const int n_old = sim.initial_items, n_new = sim.new_items, n_items = n_old + n_new;
  const auto dn = static_cast<std::size_t>(D);

  // Ground truth: a main topic (weight 0.6..1) and a second one per user; items in one or
  // two topics with a quality, scaled so truth_u . truth_i <= max_affinity.
  Truth truth;
  truth.dims = D;
  truth.user.assign(static_cast<std::size_t>(sim.users) * dn, 0.0f);
  truth.item.assign(static_cast<std::size_t>(n_items) * dn, 0.0f);
  auto topic = [&](std::uint64_t a, std::uint64_t b, std::uint64_t c) {
    return static_cast<int>(hashed_uniform(seed, kTruth * 1000003 + a, b, c) * D) % D;
  };
  for (int u = 0; u < sim.users; ++u) {
    const int t1 = topic(1, static_cast<std::uint64_t>(u), 0);
    const int t2 = topic(1, static_cast<std::uint64_t>(u), 1);
    const double w1 = 0.6 + 0.4 * hashed_uniform(seed, kTruth, static_cast<std::uint64_t>(u), 2);
    truth.user[static_cast<std::size_t>(u) * dn + static_cast<std::size_t>(t1)] += static_cast<float>(w1);
    truth.user[static_cast<std::size_t>(u) * dn + static_cast<std::size_t>(t2)] += static_cast<float>(1.0 - w1);
  }
  for (int i = 0; i < n_items; ++i) {
    const auto ii = static_cast<std::uint64_t>(i);
    const double quality = sim.max_affinity * (0.2 + 0.8 * hashed_uniform(seed, kTruth + 10, ii, 0));
    const int t1 = topic(2, ii, 0);
    float* v = &truth.item[static_cast<std::size_t>(i) * dn];
    if (hashed_uniform(seed, kTruth + 10, ii, 1) < sim.secondary_items) {
      const int t2 = topic(2, ii, 2);
      v[t1] += static_cast<float>(0.6 * quality);
      v[t2] += static_cast<float>(0.4 * quality);
    } else {
      v[t1] += static_cast<float>(quality);
    }
  }
  // The nightly model: truth plus noise for users and the items it knows; new items unknown.
  std::vector<float> q(static_cast<std::size_t>(n_items) * dn, 0.0f);
  for (int i = 0; i < n_old; ++i)
    for (int d = 0; d < D; ++d) {
      const std::size_t at = static_cast<std::size_t>(i) * dn + static_cast<std::size_t>(d);
      q[at] = truth.item[at] + static_cast<float>(sim.item_noise * hashed_normal(seed, kNoise, static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(d)));
    }
  std::vector<stream::UserPosterior> users;
  users.reserve(static_cast<std::size_t>(sim.users));
  for (int u = 0; u < sim.users; ++u) {
    std::vector<float> p(dn);
    for (int d = 0; d < D; ++d)
      p[static_cast<std::size_t>(d)] = truth.user[static_cast<std::size_t>(u) * dn + static_cast<std::size_t>(d)] +
          static_cast<float>(sim.user_noise * hashed_normal(seed, kNoise + 100, static_cast<std::uint64_t>(u), static_cast<std::uint64_t>(d)));
    users.emplace_back(p.data(), D, explore.prior_precision);
  }
  const std::vector<float> zero(dn, 0.0f);
  std::vector<stream::UserPosterior> item_post;  // new items only: ridge posterior of the vector
  item_post.reserve(static_cast<std::size_t>(n_new));
  for (int i = 0; i < n_new; ++i) item_post.emplace_back(zero.data(), D, sim.item_prior_precision);
  stream::ItemEvidence evidence;
  evidence.resize(static_cast<std::size_t>(n_items));
  for (int i = 0; i < n_old; ++i) evidence.add(static_cast<std::uint32_t>(i), static_cast<float>(sim.nightly_item_evidence));

  // New item j arrives before request arrival[j].
  std::vector<long long> arrival(static_cast<std::size_t>(n_new));
  const double span = sim.arrival_fraction * sim.requests;
  for (int j = 0; j < n_new; ++j) arrival[static_cast<std::size_t>(j)] = static_cast<long long>(span * (j + 1) / (n_new + 1));
  std::vector<long long> arrival_event(static_cast<std::size_t>(n_new), -1), first_click_event(static_cast<std::size_t>(n_new), -1);

  std::vector<float> item_sd(static_cast<std::size_t>(n_items));
  for (int i = 0; i < n_old; ++i) item_sd[static_cast<std::size_t>(i)] = static_cast<float>(evidence.sigma(static_cast<std::uint32_t>(i), explore));
  stream::ImpressionTracker tracker(explore.reward_window_seconds, explore.max_pending_impressions, explore.max_items_per_impression);
  std::vector<stream::ImpressionOutcome> outcomes;
  std::vector<float> mean_f(dn);
  std::vector<double> mean_d(dn);
  auto close = [&](const stream::ImpressionOutcome& o) {
    const double y = (o.rewarded ? 1.0 : 0.0) - sim.base_ctr;
    stream::UserPosterior& up = users[o.user];
    const float* qi = &q[static_cast<std::size_t>(o.item) * dn];
    up.update(qi, y, 1.0, explore.noise_variance);
    evidence.add(o.item, 1.0f);
    if (static_cast<int>(o.item) < n_old) item_sd[o.item] = static_cast<float>(evidence.sigma(o.item, explore));
    if (static_cast<int>(o.item) >= n_old) {
      up.mean_into(mean_d.data());
      for (int d = 0; d < D; ++d) mean_f[static_cast<std::size_t>(d)] = static_cast<float>(mean_d[static_cast<std::size_t>(d)]);
      stream::UserPosterior& ip = item_post[o.item - static_cast<std::uint32_t>(n_old)];
      ip.update(mean_f.data(), y, 1.0, explore.noise_variance);
      float* qw = &q[static_cast<std::size_t>(o.item) * dn];
      ip.mean_into(mean_d.data());
      for (int d = 0; d < D; ++d) qw[d] = static_cast<float>(mean_d[static_cast<std::size_t>(d)]);
    }
  };
  auto drain = [&] {
    for (const auto& o : outcomes) close(o);
    outcomes.clear();
  };

  BanditRunResult r;
  std::vector<std::uint8_t> shown_ever(static_cast<std::size_t>(n_items), 0);
  std::vector<float> scores(static_cast<std::size_t>(n_items));
  std::vector<float> truth_p(static_cast<std::size_t>(n_items));

  const std::vector<std::uint8_t> excluded;
  long long events = 0;
  int available = n_old;
  double clicks = 0.0, shown = 0.0, regret = 0.0;
  double tenth_clicks = 0.0, tenth_shown = 0.0;
  const auto start = std::chrono::steady_clock::now();
  for (int req = 0; req < sim.requests; ++req) {
    while (available < n_items && arrival[static_cast<std::size_t>(available - n_old)] <= req) {
      arrival_event[static_cast<std::size_t>(available - n_old)] = events;
      ++available;
    }
    const double t = req * sim.seconds_per_request;
    tracker.expire(t, outcomes);
    drain();
    const auto u = static_cast<std::uint32_t>(hashed_uniform(seed, kTraffic, static_cast<std::uint64_t>(req), 0) * sim.users) %
                   static_cast<std::uint32_t>(sim.users);
    const stream::UserPosterior& up = users[u];
    up.mean_into(mean_d.data());
    for (int d = 0; d < D; ++d) mean_f[static_cast<std::size_t>(d)] = static_cast<float>(mean_d[static_cast<std::size_t>(d)]);
    for (int i = 0; i < n_items; ++i) {
      const std::size_t at = static_cast<std::size_t>(i) * dn;
      scores[static_cast<std::size_t>(i)] = i < available ? dot(mean_f.data(), &q[at], D) : -std::numeric_limits<float>::infinity();
      truth_p[static_cast<std::size_t>(i)] =
          i < available ? static_cast<float>(sim.base_ctr) + dot(&truth.user[static_cast<std::size_t>(u) * dn], &truth.item[at], D) : -1.0f;
    }
    // New items: the exact width of this user's score under the item's own posterior.
    for (int i = n_old; i < available; ++i)
      item_sd[static_cast<std::size_t>(i)] = static_cast<float>(std::sqrt(item_post[static_cast<std::size_t>(i - n_old)].variance_along(mean_f.data())));
    const auto slots = stream::select_with_exploration(scores, excluded, q.data(), D, &up, evidence, explore,
                                                       {sim.k, seed, u, static_cast<std::uint64_t>(req)}, &item_sd);
    // Regret against the true best k of the catalogue available now.
    std::vector<float> best(truth_p.begin(), truth_p.begin() + available);
    const std::size_t kk = std::min<std::size_t>(static_cast<std::size_t>(sim.k), best.size());
    std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(kk), best.end(), std::greater<float>());
    double best_sum = 0.0, got = 0.0;
    for (std::size_t j = 0; j < kk; ++j) best_sum += best[j];
    std::vector<std::uint32_t> items;
    for (const auto& s : slots) {
      items.push_back(s.item);
      got += truth_p[s.item];
      shown_ever[s.item] = 1;
    }
    regret += best_sum - got;
    tracker.on_impression(u, items, t, outcomes);
    ++events;
    drain();
    for (std::uint32_t i : items) {
      if (hashed_uniform(seed, kClicks, static_cast<std::uint64_t>(req), i) >= truth_p[i]) continue;
      tracker.on_engagement(u, i, t + sim.click_delay_seconds, outcomes);
      ++events;
      clicks += 1.0;
      tenth_clicks += 1.0;
      if (static_cast<int>(i) >= n_old && first_click_event[i - static_cast<std::uint32_t>(n_old)] < 0)
        first_click_event[i - static_cast<std::uint32_t>(n_old)] = events;
      drain();
    }
    shown += static_cast<double>(items.size());
    tenth_shown += static_cast<double>(items.size());
    if ((req + 1) % std::max(1, sim.requests / 10) == 0 && r.ctr_curve.size() < 10) {
      r.ctr_curve.push_back(tenth_shown > 0 ? tenth_clicks / tenth_shown : 0.0);
      r.regret_curve.push_back(regret);
      tenth_clicks = tenth_shown = 0.0;
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.clicks = clicks;
  r.impressions = shown;
  r.ctr = shown > 0 ? clicks / shown : 0.0;
  r.regret = regret;
  r.coverage = static_cast<double>(std::count(shown_ever.begin(), shown_ever.end(), 1)) / n_items;
  double first = 0.0, clicked = 0.0;
  for (int j = 0; j < n_new; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    const long long end = first_click_event[jj] >= 0 ? first_click_event[jj] : events;  // censored at the end
    first += static_cast<double>(end - arrival_event[jj]);
    clicked += first_click_event[jj] >= 0 ? 1.0 : 0.0;
  }
  r.new_item_first_click_events = n_new > 0 ? first / n_new : 0.0;
  r.new_items_clicked = n_new > 0 ? clicked / n_new : 0.0;
  r.requests_per_s = wall > 0 ? sim.requests / wall : 0.0;
  return r;
}

nlohmann::json run_bandit_experiment(const BanditExperimentConfig& config, std::FILE* progress) {
  nlohmann::json variants = nlohmann::json::object();
  for (const BanditVariant& v : config.variants) {
    std::vector<double> ctr, regret, cov, first, clicked, rps;
    std::vector<double> ctr_curve(10, 0.0), regret_curve(10, 0.0);
    nlohmann::json per_seed = nlohmann::json::array();
    for (std::uint64_t seed : config.seeds) {
      const BanditRunResult r = run_bandit_simulation(config.sim, v.explore, seed);
      ctr.push_back(r.ctr);
      regret.push_back(r.regret);
      cov.push_back(r.coverage);
      first.push_back(r.new_item_first_click_events);
      clicked.push_back(r.new_items_clicked);
      rps.push_back(r.requests_per_s);
      for (std::size_t w = 0; w < r.ctr_curve.size() && w < 10; ++w) {
        ctr_curve[w] += r.ctr_curve[w] / static_cast<double>(config.seeds.size());
        regret_curve[w] += r.regret_curve[w] / static_cast<double>(config.seeds.size());
      }
      per_seed.push_back({{"seed", seed}, {"ctr", r.ctr}, {"regret", r.regret}, {"coverage", r.coverage},
                          {"new_item_first_click_events", r.new_item_first_click_events},
                          {"new_items_clicked", r.new_items_clicked}});
      if (progress)
        std::fputs(fmt::format("[bandit] {:<10} seed {:<4} ctr {:.4f} regret {:.1f} coverage {:.3f} first-click {:.0f} events\n",
                               v.name, seed, r.ctr, r.regret, r.coverage, r.new_item_first_click_events).c_str(), progress);
    }
    variants[v.name] = {{"policy", stream::explore_policy_name(v.explore.policy)},
                        {"slots", v.explore.slots},
                        {"ctr", mean_std(ctr).mean},
                        {"ctr_std", mean_std(ctr).std},
                        {"regret", mean_std(regret).mean},
                        {"regret_std", mean_std(regret).std},
                        {"coverage", mean_std(cov).mean},
                        {"new_item_first_click_events", mean_std(first).mean},
                        {"new_items_clicked", mean_std(clicked).mean},
                        {"requests_per_s", mean_std(rps).mean},
                        {"ctr_by_tenth", ctr_curve},
                        {"cumulative_regret_by_tenth", regret_curve},
                        {"per_seed", per_seed}};
  }
  nlohmann::json results;
  results["experiment"] = config.name;
  results["kind"] = "bandit_simulation";
  results["config_file"] = config.source;
  results["config"] = config.resolved;
  results["seeds"] = config.seeds;
  results["k"] = config.sim.k;
  results["variants"] = variants;
  if (variants.contains("greedy") && variants.contains("thompson")) {
    const auto& g = variants["greedy"];
    const auto& th = variants["thompson"];
    results["targets"] = {
        {"thompson_ctr_beats_greedy", th["ctr"].get<double>() > g["ctr"].get<double>()},
        {"thompson_regret_below_greedy", th["regret"].get<double>() < g["regret"].get<double>()},
        {"first_click_ratio", th["new_item_first_click_events"].get<double>() / std::max(1e-9, g["new_item_first_click_events"].get<double>())},
        {"first_click_at_most_half", th["new_item_first_click_events"].get<double>() <= 0.5 * g["new_item_first_click_events"].get<double>()}};
  }
  return results;
}

void write_bandit_reports(const nlohmann::json& results, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError("cannot create " + dir + ": " + ec.message());
  auto write = [&](const std::string& name, const std::string& text) {
    const fs::path p = fs::path(dir) / name;
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    if (!f) throw IoError("cannot write " + p.string());
  };
  write("results.json", results.dump(2) + "\n");
  std::string csv = "variant,seed,ctr,regret,coverage,new_item_first_click_events,new_items_clicked\n";
  std::string md = "# " + results.value("experiment", std::string("bandit")) +
                   "\n\n| variant | CTR | cumulative regret | coverage | events to a new item's first click | new items clicked |\n"
                   "|---|---|---|---|---|---|\n";
  for (const auto& [name, v] : results["variants"].items()) {
    for (const auto& s : v["per_seed"])
      csv += fmt::format("{},{},{:.6f},{:.3f},{:.6f},{:.3f},{:.4f}\n", name, s["seed"].get<std::uint64_t>(), s["ctr"].get<double>(),
                         s["regret"].get<double>(), s["coverage"].get<double>(), s["new_item_first_click_events"].get<double>(),
                         s["new_items_clicked"].get<double>());
    md += fmt::format("| {} | {:.4f} ± {:.4f} | {:.1f} ± {:.1f} | {:.3f} | {:.0f} | {:.3f} |\n", name, v["ctr"].get<double>(),
                      v["ctr_std"].get<double>(), v["regret"].get<double>(), v["regret_std"].get<double>(),
                      v["coverage"].get<double>(), v["new_item_first_click_events"].get<double>(), v["new_items_clicked"].get<double>());
  }
  write("results.csv", csv);
  write("summary.md", md);
}

}  // namespace freshrec
