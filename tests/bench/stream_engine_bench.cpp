// Streaming engine hot paths on one core: apply (per event), recommend (top-10 while the
// stream is being applied) and state_digest, on a random nightly model.
//
// A random implicit model (default 100K users, 100K items, k = 64) and a synthetic skewed
// event stream (items and users drawn with a power-law skew, 1% of the events from users
// absent from the baseline, 0.5% on stream-born items, all event types, 1 ms of event time
// apart) are generated with a fixed seed. Each repetition builds a fresh engine, applies
// the stream timing every event, and after every `--every` events serves one recommend
// request (known user, with a product page item on one request in four and a cart item):
// the requests see caches as polluted by ingestion as they would be in the process. The
// table prints the median over repetitions of each figure.
//
//   build-perf/tests/bench/stream_engine_bench [--items N] [--users N] [--k K]
//        [--events N] [--every N] [--reps N] [--callgrind]
//
// --callgrind: one repetition, and when run under valgrind --tool=callgrind
// --collect-atstart=no the instruction counts cover only the apply loop (then the
// recommend loop, separately dumped): instruction counts are reliable on a noisy machine.
//   valgrind --tool=callgrind --collect-atstart=no build-perf/tests/bench/stream_engine_bench
//        --items 20000 --users 20000 --events 20000 --callgrind
#include <valgrind/callgrind.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu/stream/stream_engine.hpp"

using namespace freshrec;

namespace {

struct Options {
  int items = 100000, users = 100000, k = 64, events = 200000, every = 500, reps = 3;
  bool callgrind = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int a = 1; a < argc; ++a) {
    auto val = [&](int& dst) {
      if (a + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[a]);
        std::exit(2);
      }
      dst = std::atoi(argv[++a]);
    };
    if (!std::strcmp(argv[a], "--items")) val(o.items);
    else if (!std::strcmp(argv[a], "--users")) val(o.users);
    else if (!std::strcmp(argv[a], "--k")) val(o.k);
    else if (!std::strcmp(argv[a], "--events")) val(o.events);
    else if (!std::strcmp(argv[a], "--every")) val(o.every);
    else if (!std::strcmp(argv[a], "--reps")) val(o.reps);
    else if (!std::strcmp(argv[a], "--callgrind")) o.callgrind = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[a]);
      std::exit(2);
    }
  }
  if (o.callgrind) o.reps = 1;
  return o;
}

struct Lcg {
  std::uint64_t s;
  std::uint64_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return s >> 11;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-42; }
  // Power-law skew: index floor(n * u^3), so low indices are hot.
  int skewed(int n) {
    const double u = uniform();
    return std::min(n - 1, static_cast<int>(n * u * u * u));
  }
};

std::shared_ptr<FactorModel> random_model(const Options& o) {
  auto m = std::make_shared<FactorModel>();
  m->user_factors.resize(o.users, o.k);
  m->item_factors.resize(o.items, o.k);
  Lcg r{7};
  for (Eigen::Index j = 0; j < m->user_factors.size(); ++j)
    m->user_factors.data()[j] = static_cast<float>(0.3 * (r.uniform() - 0.5));
  for (Eigen::Index j = 0; j < m->item_factors.size(); ++j)
    m->item_factors.data()[j] = static_cast<float>(0.3 * (r.uniform() - 0.5));
  m->user_bias = Eigen::VectorXf::Zero(o.users);
  m->item_bias = Eigen::VectorXf::Zero(o.items);
  for (int u = 0; u < o.users; ++u) m->user_ids.intern("u" + std::to_string(u));
  for (int i = 0; i < o.items; ++i) m->item_ids.intern("i" + std::to_string(i));
  return m;
}

std::vector<Event> make_stream(const Options& o) {
  std::vector<Event> out(o.events);
  Lcg r{11};
  static const char* cats[] = {"shoes", "boots", "kitchen", "garden", "books", "toys", "audio", "sport"};
  for (int j = 0; j < o.events; ++j) {
    Event& e = out[j];
    const double p = r.uniform();
    e.user_id = p < 0.01 ? "new_u" + std::to_string(r.skewed(o.users / 10 + 1)) : "u" + std::to_string(r.skewed(o.users));
    const double q = r.uniform();
    e.item_id = q < 0.005 ? "new_i" + std::to_string(r.skewed(o.items / 100 + 1)) : "i" + std::to_string(r.skewed(o.items));
    const double t = r.uniform();
    e.type = t < 0.50 ? EventType::kView
             : t < 0.80 ? EventType::kClick
             : t < 0.88 ? EventType::kAddToCart
             : t < 0.91 ? EventType::kPurchase
             : t < 0.96 ? EventType::kSearch
                        : EventType::kRating;
    e.timestamp = 1.7e9 + j * 0.001;
    e.category = cats[r.next() % 8];
    e.price = static_cast<double>(r.next() % 20000) / 100.0;
    if (e.type == EventType::kSearch) {
      e.item_id.clear();
      e.query = "query " + std::to_string(r.next() % 50);
    } else if (e.type == EventType::kRating) {
      e.rating = 1.0 + static_cast<double>(r.next() % 5);
    }
  }
  return out;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  const std::size_t at = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + at, v.end());
  return v[at];
}
double median(std::vector<double> v) { return quantile(std::move(v), 0.5); }

struct Rep {
  double apply_p50_ns, apply_p99_ns, apply_p999_ns, apply_mean_ns, known_p99_ns, events_per_s;
  double rec_p50_us, rec_p99_us, digest_ms;
  double cycle_end_p50_us, cycle_end_max_us;  ///< the events that close a guard cycle
};

Rep run_once(const Options& o, const std::shared_ptr<FactorModel>& model, const std::vector<Event>& events) {
  using Clock = std::chrono::steady_clock;
  StreamConfig cfg;
  cfg.guard.log_decisions = false;
  StreamEngine eng(cfg, model);
  std::vector<double> apply_ns, known_ns, rec_us, cycle_end_us;
  apply_ns.reserve(events.size());
  known_ns.reserve(events.size());
  RecommendRequest req;
  req.k = 10;
  Lcg r{23};
  std::vector<RecommendRequest> reqs;
  for (std::size_t j = 0; j < events.size() / std::max(1, o.every) + 1; ++j) {
    req.user_id = "u" + std::to_string(r.skewed(o.users));
    req.page_type = j % 4 == 0 ? "product" : "home";
    req.page_item_id = j % 4 == 0 ? "i" + std::to_string(r.skewed(o.items)) : "";
    req.cart_items = {"i" + std::to_string(r.skewed(o.items))};
    reqs.push_back(req);
  }
  double total_apply_s = 0.0;
  std::size_t next_req = 0;
  if (o.callgrind) CALLGRIND_START_INSTRUMENTATION;
  for (std::size_t j = 0; j < events.size(); ++j) {
    const auto t0 = Clock::now();
    eng.apply(events[j]);
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    apply_ns.push_back(ns);
    if (events[j].user_id[0] == 'u') known_ns.push_back(ns);
    if ((j + 1) % cfg.guard.cycle_events == 0) cycle_end_us.push_back(ns * 1e-3);
    total_apply_s += ns * 1e-9;
    if (!o.callgrind && o.every > 0 && (j + 1) % o.every == 0) {
      const auto r0 = Clock::now();
      const Recommendation rec = eng.recommend(reqs[next_req++]);
      rec_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - r0).count());
      if (rec.items.empty()) std::fprintf(stderr, "empty recommendation\n");
    }
  }
  if (o.callgrind) {
    CALLGRIND_DUMP_STATS_AT("apply loop");
    for (int j = 0; j < 50; ++j) eng.recommend(reqs[j % reqs.size()]);
    CALLGRIND_DUMP_STATS_AT("50 recommend");
    eng.state_digest();
    CALLGRIND_DUMP_STATS_AT("state_digest");
    CALLGRIND_STOP_INSTRUMENTATION;
  }
  const auto d0 = Clock::now();
  const std::string digest = eng.state_digest();
  const double digest_ms = std::chrono::duration<double, std::milli>(Clock::now() - d0).count();
  Rep rep;
  rep.apply_p50_ns = quantile(apply_ns, 0.5);
  rep.apply_p99_ns = quantile(apply_ns, 0.99);
  rep.apply_p999_ns = quantile(apply_ns, 0.999);
  rep.known_p99_ns = quantile(known_ns, 0.99);
  rep.apply_mean_ns = total_apply_s * 1e9 / static_cast<double>(events.size());
  rep.events_per_s = static_cast<double>(events.size()) / total_apply_s;
  rep.rec_p50_us = quantile(rec_us, 0.5);
  rep.rec_p99_us = quantile(rec_us, 0.99);
  rep.digest_ms = digest_ms;
  rep.cycle_end_p50_us = quantile(cycle_end_us, 0.5);
  rep.cycle_end_max_us = cycle_end_us.empty() ? NAN : *std::max_element(cycle_end_us.begin(), cycle_end_us.end());
  const StreamCounters c = eng.counters();
  std::printf("  rep: %llu events, %llu sgd updates, %llu fold-ins, %llu accepts / %llu rollbacks, digest %.16s…\n",
              static_cast<unsigned long long>(c.events), static_cast<unsigned long long>(c.sgd_updates),
              static_cast<unsigned long long>(c.foldins), static_cast<unsigned long long>(c.guard_accepts),
              static_cast<unsigned long long>(c.guard_rollbacks), digest.c_str());
  return rep;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::printf("stream_engine_bench: %d items, %d users, k=%d, %d events, a request every %d events, %d reps\n",
              o.items, o.users, o.k, o.events, o.every, o.reps);
  const auto model = random_model(o);
  const auto events = make_stream(o);
  std::vector<Rep> reps;
  for (int r = 0; r < o.reps; ++r) reps.push_back(run_once(o, model, events));
  auto med = [&reps](double Rep::*f) {
    std::vector<double> v;
    for (const Rep& r : reps) v.push_back(r.*f);
    return median(v);
  };
  std::printf("\n%-34s %12s\n", "median over repetitions", "value");
  std::printf("%-34s %12.0f\n", "apply ns/event p50", med(&Rep::apply_p50_ns));
  std::printf("%-34s %12.0f\n", "apply ns/event p99", med(&Rep::apply_p99_ns));
  std::printf("%-34s %12.0f\n", "apply ns/event p99.9", med(&Rep::apply_p999_ns));
  std::printf("%-34s %12.0f\n", "apply ns/event p99 (known users)", med(&Rep::known_p99_ns));
  std::printf("%-34s %12.0f\n", "apply ns/event mean", med(&Rep::apply_mean_ns));
  std::printf("%-34s %12.0f\n", "apply events/s (engine only)", med(&Rep::events_per_s));
  std::printf("%-34s %12.1f\n", "cycle-end apply us p50", med(&Rep::cycle_end_p50_us));
  std::printf("%-34s %12.1f\n", "cycle-end apply us max", med(&Rep::cycle_end_max_us));
  std::printf("%-34s %12.1f\n", "recommend top-10 us p50", med(&Rep::rec_p50_us));
  std::printf("%-34s %12.1f\n", "recommend top-10 us p99", med(&Rep::rec_p99_us));
  std::printf("%-34s %12.1f\n", "state_digest ms", med(&Rep::digest_ms));
  std::printf("%-34s %12.2f\n", "target ratio apply (500 ns / mean)", 500.0 / med(&Rep::apply_mean_ns));
  std::printf("%-34s %12.2f\n", "target ratio rec p50 (1 ms / p50)", 1000.0 / med(&Rep::rec_p50_us));
  std::printf("%-34s %12.2f\n", "target ratio rec p99 (3 ms / p99)", 3000.0 / med(&Rep::rec_p99_us));
  return 0;
}
