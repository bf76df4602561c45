// Cost of the bandit layer (issue 8), measured in one run:
//  1. ingest: the same events (impressions included) through a StreamEngine with
//     exploration off and on (impression tracking, rewards, batched posterior updates, weak
//     negatives into the SGD) — interleaved repetitions, medians;
//  2. recommend under a budget: 4 client threads each gather {nightly = engine.recommend,
//     realtime, context, remote} through ParallelFeatureFetcher with a 20 ms budget while the
//     remote source is artificially slowed to 100 ms; p50/p99/max of the whole request.
//
//   build/tests/bench/bandit_bench [--users N] [--items N] [--k K] [--events N] [--reps N] [--only 1|2]
//   (--only 1 / 2 / 3 / 4: only the ingest with exploration on / off / the impression loop alone /
//   the loop without weak-negative SGD steps, for a profiler)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cpu/stream/bandit.hpp"
#include "cpu/stream/latency_budget.hpp"
#include "cpu/stream/rng.hpp"
#include "cpu/stream/stream_engine.hpp"

using namespace freshrec;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  int users = 20000, items = 20000, k = 32, events = 100000, reps = 5, requests = 400;
  int warmup = 100000;  ///< events each engine ingests before the timed ones (a long-lived updater's state)
  int only = 0;  ///< --only 1: ingest with exploration on only, 2: off only (for a profiler), then stop
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
  for (int j = 0; j < o.warmup + o.events; ++j) {
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
    else if (!std::strcmp(argv[a], "--only")) o.only = v;
    else if (!std::strcmp(argv[a], "--warmup")) o.warmup = v;
    else { std::fprintf(stderr, "unknown argument %s\n", argv[a]); return 2; }
  }
  const auto model = random_model(o);
  const Traffic traffic = make_traffic(o);
  StreamConfig sc;
  sc.seed = 1;

  // 1. Ingest: the same events (impressions included) into an engine with exploration off
  // (impressions only counted) and into one with it on (stream.explore.slots = 2: impression
  // tracking, rewards, posterior updates, and weak negatives fed to the SGD); and once with
  // impression_weight 0 (the bandit's own bookkeeping without the extra SGD steps).
  // Interleaved repetitions, medians.
  StreamConfig on = sc;
  on.explore.slots = 2;
  StreamConfig on_no_sgd = on;
  on_no_sgd.explore.impression_weight = 0.0f;
  // The impression loop alone (rewards, weak negatives into the SGD), no posteriors: what the
  // greedy and epsilon policies run; the difference to `on` is Thompson's own cost.
  StreamConfig loop_only = on;
  loop_only.explore.policy = stream::ExplorePolicy::kGreedy;
  std::vector<double> base_eps, bandit_eps, book_eps, loop_eps;
  StreamCounters last{};
  // Each engine first ingests the warm-up events (a fresh engine meets every id, posterior
  // and row for the first time: costs a long-lived updater has paid long ago), then the timed
  // ones; both rates are kept ("cold": the warm-up events from a fresh engine).
  std::vector<double> base_cold, bandit_cold, book_cold, loop_cold;
  const auto warm_end = traffic.events.begin() + o.warmup;
  auto run = [&](const StreamConfig& cfg, std::vector<double>& out, StreamCounters* counters, std::vector<double>* cold = nullptr) {
    StreamEngine engine(cfg, model);
    const auto t0 = Clock::now();
    for (auto it = traffic.events.begin(); it != warm_end; ++it) engine.apply(*it);
    const auto t1 = Clock::now();
    for (auto it = warm_end; it != traffic.events.end(); ++it) engine.apply(*it);
    out.push_back(static_cast<double>(o.events) / std::chrono::duration<double>(Clock::now() - t1).count());
    if (cold && o.warmup > 0) cold->push_back(static_cast<double>(o.warmup) / std::chrono::duration<double>(t1 - t0).count());
    if (counters) *counters = engine.counters();
  };
  if (o.only) {
    StreamConfig loop_no_sgd = loop_only;
    loop_no_sgd.explore.impression_weight = 0.0f;
    const StreamConfig* pick[] = {&on, &sc, &loop_only, &loop_no_sgd};
    const char* names[] = {"exploration on", "exploration off", "impression loop only", "impression loop only, impression_weight 0"};
    const int at = std::min(std::max(o.only, 1), 4) - 1;
    for (int rep = 0; rep < o.reps; ++rep) run(*pick[at], bandit_eps, &last);
    std::printf("%s: %.0f events/s (median of %d)\n", names[at], quantile(bandit_eps, 0.5), o.reps);
    return 0;
  }
  for (int rep = 0; rep < o.reps; ++rep) {
    run(sc, base_eps, nullptr, &base_cold);
    run(on, bandit_eps, &last, &bandit_cold);
    run(on_no_sgd, book_eps, nullptr, &book_cold);
    run(loop_only, loop_eps, nullptr, &loop_cold);
  }
  const double b = quantile(base_eps, 0.5), w = quantile(bandit_eps, 0.5), n = quantile(book_eps, 0.5);
  const double bc = quantile(base_cold, 0.5), wc = quantile(bandit_cold, 0.5), nc = quantile(book_cold, 0.5);
  const double l = quantile(loop_eps, 0.5), lc = quantile(loop_cold, 0.5);
  std::printf("ingest (%d users, %d items, k=%d; %d timed events after %d warm-up events, 10%% impressions of 10 items;"
              " median of %d reps)\n", o.users, o.items, o.k, o.events, o.warmup, o.reps);
  std::printf("  %-40s %12s %8s %14s %8s\n", "engine", "events/s", "cost", "cold events/s", "cost");
  std::printf("  %-40s %12.0f %8s %14.0f %8s\n", "exploration off (explore.slots 0)", b, "-", bc, "-");
  std::printf("  %-40s %12.0f %7.1f%% %14.0f %7.1f%%\n", "exploration on (slots 2)", w, 100.0 * (1.0 - w / b), wc, 100.0 * (1.0 - wc / bc));
  std::printf("  %-40s %12.0f %7.1f%% %14.0f %7.1f%%\n", "exploration on, impression_weight 0", n, 100.0 * (1.0 - n / b), nc,
              100.0 * (1.0 - nc / bc));
  std::printf("  %-40s %12.0f %7.1f%% %14.0f %7.1f%%\n", "impression loop only (policy greedy)", l, 100.0 * (1.0 - l / b), lc,
              100.0 * (1.0 - lc / bc));
  std::printf("  Thompson's own cost (on vs loop only): steady %.1f%%, cold %.1f%%\n", 100.0 * (1.0 - w / l), 100.0 * (1.0 - wc / lc));
  std::printf("  rewards %llu, weak negatives %llu, explored users %llu, %zu B per posterior\n",
              static_cast<unsigned long long>(last.impression_rewards), static_cast<unsigned long long>(last.weak_negatives),
              static_cast<unsigned long long>(last.explored_users),
              stream::UserPosterior(model->user_factors.row(0).eval().data(), o.k, 1.0).memory_bytes());

  // 2. Recommend under a 20 ms budget with the remote source slowed to 100 ms.
  StreamEngine engine(sc, model);
  for (const Event& e : traffic.events) engine.apply(e);
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
