// Cost of the bandit layer (issue 8), measured in one run:
//  1. ingest: StreamEngine::apply events/s alone, and with the per-event bandit work the
//     engine does once integrated (impression tracking, reward attribution, and the rank-1
//     posterior update of the user per closed outcome) — interleaved repetitions, medians;
//  2. recommend under a budget: 4 client threads each gather {nightly = engine.recommend,
//     realtime, context, remote} through ParallelFeatureFetcher with a 20 ms budget while the
//     remote source is artificially slowed to 100 ms; p50/p99/max of the whole request.
//
//   build-i8/tests/bench/bandit_bench [--users N] [--items N] [--k K] [--events N] [--reps N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cpu/stream/bandit.hpp"
#include "cpu/stream/impressions.hpp"
#include "cpu/stream/latency_budget.hpp"
#include "cpu/stream/rng.hpp"
#include "cpu/stream/stream_engine.hpp"

using namespace freshrec;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  int users = 20000, items = 20000, k = 32, events = 100000, reps = 5, requests = 400;
};

std::shared_ptr<FactorModel> random_model(const Options& o) {
  auto m = std::make_shared<FactorModel>();
  m->user_factors.resize(o.users, o.k);
  m->item_factors.resize(o.items, o.k);
  stream::Xoshiro256 r(7);
  for (Eigen::Index j = 0; j < m->user_factors.size(); ++j) m->user_factors.data()[j] = static_cast<float>(0.3 * (r.uniform() - 0.5));
  for (Eigen::Index j = 0; j < m->item_factors.size(); ++j) m->item_factors.data()[j] = static_cast<float>(0.3 * (r.uniform() - 0.5));
  m->user_bias = Eigen::VectorXf::Zero(o.users);
  m->item_bias = Eigen::VectorXf::Zero(o.items);
  for (int u = 0; u < o.users; ++u) m->user_ids.intern("u" + std::to_string(u));
  for (int i = 0; i < o.items; ++i) m->item_ids.intern("i" + std::to_string(i));
  return m;
}

// Traffic as the bandit sees it: every 10th event an impression of 10 items; one in three
// impressions is followed by an event on one of its items (a reward when it is a click);
// the rest are views and clicks. Integer keys travel alongside the strings.
struct Traffic {
  std::vector<Event> events;
  std::vector<std::uint32_t> user, item;
  std::vector<std::vector<std::uint32_t>> shown;  // non-empty for impressions
};

Traffic make_traffic(const Options& o) {
  Traffic t;
  stream::Xoshiro256 r(11);
  auto skew = [&](int n) { const double u = r.uniform(); return static_cast<std::uint32_t>(std::min(n - 1, static_cast<int>(n * u * u * u))); };
  std::vector<std::uint32_t> last_shown;
  for (int j = 0; j < o.events; ++j) {
    Event e;
    const std::uint32_t u = skew(o.users);
    std::uint32_t i = skew(o.items);
    std::vector<std::uint32_t> shown;
    e.user_id = "u" + std::to_string(u);
    e.timestamp = 1.7e9 + j * 0.1;  // 10^5 events span 10^4 s: most impressions close inside the run
    if (j % 10 == 0) {
      e.type = EventType::kImpression;
      for (int s = 0; s < 10; ++s) shown.push_back(skew(o.items));
      for (auto x : shown) e.items.push_back("i" + std::to_string(x));
      last_shown = shown;
    } else {
      e.type = r.uniform() < 0.6 ? EventType::kView : EventType::kClick;
      if (j % 10 == 1 && r.uniform() < 0.33 && !last_shown.empty()) i = last_shown[r.below(10)];
      e.item_id = "i" + std::to_string(i);
    }
    t.events.push_back(std::move(e));
    t.user.push_back(u);
    t.item.push_back(i);
    t.shown.push_back(std::move(shown));
  }
  return t;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  const std::size_t at = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(at), v.end());
  return v[at];
}

// Per-event bandit work of the integrated engine, on the same thread as apply.
struct BanditLayer {
  const FactorModel& m;
  stream::ExploreConfig cfg;
  stream::ImpressionTracker tracker;
  std::unordered_map<std::uint32_t, stream::UserPosterior> post;
  stream::ItemEvidence evidence;
  std::vector<stream::ImpressionOutcome> out;
  std::uint64_t updates = 0;
  explicit BanditLayer(const FactorModel& model)
      : m(model), tracker(cfg.reward_window_seconds, cfg.max_pending_impressions, cfg.max_items_per_impression) {}
  void on_event(const Event& e, std::uint32_t u, std::uint32_t i, const std::vector<std::uint32_t>& shown) {
    tracker.expire(e.timestamp, out);
    if (e.type == EventType::kImpression) tracker.on_impression(u, shown, e.timestamp, out);
    else if (e.type == EventType::kClick || e.type == EventType::kPurchase) tracker.on_engagement(u, i, e.timestamp, out);
    for (const auto& o : out) {
      auto it = post.find(o.user);
      if (it == post.end())
        it = post.emplace(o.user, stream::UserPosterior(m.user_factors.row(o.user).eval().data(), static_cast<int>(m.user_factors.cols()),
                                                        cfg.prior_precision)).first;
      const float* q = m.item_factors.row(o.item).data();  // row-major: contiguous
      updates += it->second.update(q, o.rewarded ? 1.0 : 0.0, 1.0, cfg.noise_variance);
      evidence.add(o.item);
    }
    out.clear();
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int a = 1; a + 1 < argc; a += 2) {
    const int v = std::atoi(argv[a + 1]);
    if (!std::strcmp(argv[a], "--users")) o.users = v;
    else if (!std::strcmp(argv[a], "--items")) o.items = v;
    else if (!std::strcmp(argv[a], "--k")) o.k = v;
    else if (!std::strcmp(argv[a], "--events")) o.events = v;
    else if (!std::strcmp(argv[a], "--reps")) o.reps = v;
    else if (!std::strcmp(argv[a], "--requests")) o.requests = v;
    else { std::fprintf(stderr, "unknown argument %s\n", argv[a]); return 2; }
  }
  const auto model = random_model(o);
  const Traffic traffic = make_traffic(o);
  StreamConfig sc;
  sc.seed = 1;

  // 1. Ingest. The engine does not take impressions yet (they carry no item_id), so both
  // loops feed it the same non-impression events; the bandit loop adds the layer's work.
  std::vector<double> base_eps, bandit_eps, layer_eps;
  std::uint64_t updates = 0;
  for (int rep = 0; rep < o.reps; ++rep) {
    for (int with = 0; with < 2; ++with) {
      StreamEngine engine(sc, model);
      BanditLayer layer(*model);
      std::size_t n = 0;
      const auto t0 = Clock::now();
      for (std::size_t j = 0; j < traffic.events.size(); ++j) {
        const Event& e = traffic.events[j];
        if (e.type != EventType::kImpression) engine.apply(e);
        if (with) layer.on_event(e, traffic.user[j], traffic.item[j], traffic.shown[j]);
        ++n;
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      (with ? bandit_eps : base_eps).push_back(static_cast<double>(n) / s);
      if (with) updates = layer.updates;
    }
    BanditLayer alone(*model);  // the layer by itself: its cost per event, free of the engine's noise
    const auto t0 = Clock::now();
    for (std::size_t j = 0; j < traffic.events.size(); ++j)
      alone.on_event(traffic.events[j], traffic.user[j], traffic.item[j], traffic.shown[j]);
    layer_eps.push_back(static_cast<double>(traffic.events.size()) / std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double b = quantile(base_eps, 0.5), w = quantile(bandit_eps, 0.5);
  std::printf("ingest (%d users, %d items, k=%d, %d events, median of %d reps)\n", o.users, o.items, o.k, o.events, o.reps);
  std::printf("  %-28s %12s\n", "loop", "events/s");
  std::printf("  %-28s %12.0f\n", "engine.apply", b);
  std::printf("  %-28s %12.0f\n", "engine.apply + bandit", w);
  const double l = quantile(layer_eps, 0.5);
  std::printf("  %-28s %12.0f\n", "bandit layer alone", l);
  std::printf("  cost from the separate timings: %.1f%% (1 - (1/b) / (1/b + 1/l))\n", 100.0 * (1.0 / l) / (1.0 / b + 1.0 / l));
  std::printf("  throughput kept: %.1f%% (cost %.1f%%), posterior updates %llu, %zu B per posterior\n", 100.0 * w / b,
              100.0 * (1.0 - w / b), static_cast<unsigned long long>(updates),
              stream::UserPosterior(model->user_factors.row(0).eval().data(), o.k, 1.0).memory_bytes());

  // 2. Recommend under a 20 ms budget with the remote source slowed to 100 ms.
  StreamEngine engine(sc, model);
  for (const Event& e : traffic.events)
    if (e.type != EventType::kImpression) engine.apply(e);
  stream::ParallelFeatureFetcher fetcher(8, 2);
  const auto budget = std::chrono::milliseconds(20);
  std::vector<std::vector<double>> lat(4);
  std::vector<int> degraded(4, 0);
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c)
    clients.emplace_back([&, c] {
      for (int r = 0; r < o.requests; ++r) {
        const auto t0 = Clock::now();
        auto rec = std::make_shared<Recommendation>();
        RecommendRequest req;
        req.user_id = "u" + std::to_string((c * 7919 + r * 104729) % o.users);
        std::vector<stream::ParallelFeatureFetcher::Task> tasks;
        tasks.push_back({stream::Signal::kNightly, [&engine, rec, req] { *rec = engine.recommend(req); }});
        tasks.push_back({stream::Signal::kRealtime, [&engine, uid = req.user_id] { (void)engine.features(uid); }});
        tasks.push_back({stream::Signal::kContext, [] {}});
        tasks.push_back({stream::Signal::kRemote, [] { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }});
        const auto rep = fetcher.gather(std::move(tasks), budget);
        degraded[static_cast<std::size_t>(c)] += rep.degraded;
        lat[static_cast<std::size_t>(c)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  for (auto& t : clients) t.join();
  std::vector<double> all;
  int deg = 0;
  for (int c = 0; c < 4; ++c) {
    all.insert(all.end(), lat[static_cast<std::size_t>(c)].begin(), lat[static_cast<std::size_t>(c)].end());
    deg += degraded[static_cast<std::size_t>(c)];
  }
  const auto& cnt = fetcher.counters();
  std::printf("\nrecommend under a 20 ms budget, remote source slowed to 100 ms, 4 client threads x %d requests\n", o.requests);
  std::printf("  p50 %.2f ms  p99 %.2f ms  max %.2f ms  (p99 / budget = %.2f)\n", quantile(all, 0.5), quantile(all, 0.99),
              *std::max_element(all.begin(), all.end()), quantile(all, 0.99) / 20.0);
  std::printf("  degraded %d of %zu; remote late %llu, shed %llu; nightly late %llu\n", deg, all.size(),
              static_cast<unsigned long long>(cnt.late[3].load()), static_cast<unsigned long long>(cnt.shed[3].load()),
              static_cast<unsigned long long>(cnt.late[0].load()));
  return 0;
}
