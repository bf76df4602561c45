// Streaming updater benchmark (issue 4 targets):
//   1. ingest end to end from an NDJSON file (read, parse, engine.apply: sessions,
//      windows, SGD, guard) on one core, events/s and per-event apply p50/p99;
//   2. recommend top-10 over 100K items, k=64, on one core while another thread ingests;
//   3. the brief's Python (tests/bench/brief_reference.py, numpy) on a prefix of the same
//      file, and our ratio.
// Medians/percentiles measured in this run; nothing is asserted.
//   usage: stream_bench [events=1500000] [python_events=100000] [all|ingest|stages|sizes] [users=items=100000]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/data/generator.hpp"
#include "cpu/data/ndjson_event_parser.hpp"
#include "cpu/stream/source.hpp"
#include "cpu/stream/stream_engine.hpp"
#include "cpu/stream/updater_config.hpp"

using namespace freshrec;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0.0;
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

std::shared_ptr<const FactorModel> random_baseline(int users, int items, int k) {
  auto m = std::make_shared<FactorModel>();
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 0.1f);
  m->user_factors.resize(users, k);
  m->item_factors.resize(items, k);
  for (Eigen::Index i = 0; i < m->user_factors.size(); ++i) m->user_factors.data()[i] = n(rng);
  for (Eigen::Index i = 0; i < m->item_factors.size(); ++i) m->item_factors.data()[i] = n(rng);
  m->user_bias = Eigen::VectorXf::Zero(users);
  m->item_bias = Eigen::VectorXf::Zero(items);
  for (int u = 0; u < users; ++u) m->user_ids.intern(generated_user_id(static_cast<std::uint32_t>(u)));
  for (int i = 0; i < items; ++i) m->item_ids.intern(generated_item_id(static_cast<std::uint32_t>(i)));
  m->data_cutoff = 1700000000.0;
  return m;
}

// Read + parse only (no engine): what the source and parser cost per line.
double parse_only_rate(const std::string& path) {
  auto source = open_file_source(path);
  NdjsonEventParser parser;
  EventView view;
  Event event;
  std::string reason;
  SourceLine line;
  std::uint64_t n = 0;
  const auto t0 = Clock::now();
  while (source->next(line) == SourceStatus::kLine) {
    n += parser.parse_padded(line.text, line.text.size() + kSourcePadding, view, reason);
    assign_event(view, event);
  }
  return static_cast<double>(n) / seconds_since(t0);
}

struct Ingest {
  std::uint64_t lines = 0, accepted = 0;
  double seconds = 0;
  std::vector<float> apply_ns;
};

// The updater's hot loop: source line → simdjson parse in place → Event → engine.apply,
// one event per call (batch = 1) or, as freshrec-stream does, parsed into batches applied
// under one writer lock (apply_batch).
Ingest ingest(StreamEngine& engine, const std::string& path, bool time_each, std::size_t batch = 1,
              std::uint64_t max_hold_ns = 0) {
  Ingest r;
  auto source = open_file_source(path);
  NdjsonEventParser parser;
  EventView view;
  std::vector<Event> events(batch);
  std::vector<ApplyResult> results(batch);
  std::vector<std::uint64_t> ns(batch);
  std::string reason;
  SourceLine line;
  r.apply_ns.reserve(2'000'000);
  std::size_t filled = 0;
  auto flush = [&] {
    if (batch == 1) {
      const auto a = Clock::now();
      results[0] = engine.apply(events[0]);
      ns[0] = time_each ? static_cast<std::uint64_t>(std::chrono::duration<double, std::nano>(Clock::now() - a).count()) : 0;
    } else {
      for (std::size_t done = 0; done < filled;)
        done += engine.apply_batch(events.data() + done, filled - done, results.data() + done,
                                   time_each ? ns.data() + done : nullptr, max_hold_ns);
    }
    for (std::size_t j = 0; j < filled; ++j) {
      r.accepted += results[j].accepted;
      if (time_each) r.apply_ns.push_back(static_cast<float>(ns[j]));
    }
    filled = 0;
  };
  const auto t0 = Clock::now();
  while (source->next(line) == SourceStatus::kLine) {
    ++r.lines;
    if (!parser.parse_padded(line.text, line.text.size() + kSourcePadding, view, reason)) continue;
    assign_event(view, events[filled++]);
    if (filled == batch) flush();
  }
  if (filled) flush();
  r.seconds = seconds_since(t0);
  return r;
}

// As freshrec-stream applies: the updater's batches (source.apply_batch) and lock holds
// (source.apply_hold_ms), shipped defaults. Unlike freshrec-stream, no per-event timings.
Ingest ingest_as_updater(StreamEngine& engine, const std::string& path) {
  const SourceSettings shipped;
  return ingest(engine, path, false, shipped.apply_batch, static_cast<std::uint64_t>(shipped.apply_hold_ms * 1e6));
}

// Median events/s of `reps` ingests on fresh engines, applied as freshrec-stream applies
// (the updater's batches and lock holds); `digest` gets the state the runs ended in (empty
// when two runs disagree).
double median_batched_rate(const StreamConfig& config, const std::shared_ptr<const FactorModel>& baseline,
                           const std::string& path, int reps, std::string* digest = nullptr) {
  std::vector<double> rates;
  std::string first;
  bool same = true;
  for (int rep = 0; rep < reps; ++rep) {
    StreamEngine engine(config, baseline);
    const Ingest x = ingest_as_updater(engine, path);
    rates.push_back(static_cast<double>(x.lines) / x.seconds);
    const std::string d = engine.state_digest();
    if (rep == 0) first = d;
    same = same && d == first;
  }
  if (digest) *digest = same ? first : std::string();
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

// The brief's Python (numpy) on the first `events` lines of `path`, events/s (0 when it
// could not run, e.g. without python3-numpy, or when events is 0).
double python_reference_rate(const std::string& path, std::int64_t events, int items) {
  if (events <= 0) return 0.0;
  const std::string cmd = std::string("python3 ") + FRESHREC_SOURCE_DIR + "/tests/bench/brief_reference.py --path " + path +
                          " --events " + std::to_string(events) + " --k 64 --items " + std::to_string(items);
  double rate = 0.0;
  if (std::FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::string out;
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    if (::pclose(p) == 0) rate = nlohmann::json::parse(out).value("events_per_s", 0.0);
  }
  return rate;
}

void generate(std::int64_t events, int users, int items, const std::string& path) {
  GeneratorConfig g;
  g.events = events;
  g.users = users;
  g.items = items;
  g.categories = 50;
  g.days = 7;
  g.seed = 3;
  write_ndjson(g, path);
}

// "stages": what each part of the shipped configuration costs, by turning it off in turn
// (100K users/items unless given). "sizes": the shipped configuration over catalogues of
// growing size (users = items), where the per-event rows stop fitting in the caches.
int run_breakdown(const std::string& mode, std::int64_t events, std::int64_t py_events, int size_arg,
                  const std::string& path) {
  constexpr int kReps = 3;
  if (mode == "stages") {
    const int n = size_arg > 0 ? size_arg : 100000;
    generate(events, n, n, path);
    const auto baseline = random_baseline(n, n, 64);
    struct Variant { const char* what; StreamConfig config; };
    std::vector<Variant> v(7);
    v[0].what = "shipped configuration (stream.yaml defaults)";
    v[1].what = "guard.replay_ratio 0 (no replayed events)";
    v[1].config.guard.replay_ratio = 0.0;
    v[2].what = "guard.enabled false (no replay, undo log, holdout)";
    v[2].config.guard.enabled = false;
    v[3].what = "sgd.negatives 0 (positive step only)";
    v[3].config.sgd.negatives = 0;
    v[4].what = "windows.seconds [] (no window counters)";
    v[4].config.windows.seconds.clear();
    v[5].what = "sgd.enabled false (no factor updates)";
    v[5].config.sgd.enabled = false;
    // The work the brief's numpy reference does per event (one SGD step and the session),
    // for a like-for-like ratio next to the shipped one.
    v[6].what = "the brief's work only (sgd.negatives 0, guard off, no windows)";
    v[6].config.sgd.negatives = 0;
    v[6].config.guard.enabled = false;
    v[6].config.windows.seconds.clear();
    const double py = python_reference_rate(path, py_events, n);
    std::printf("\n| configuration (%d users x %d items, k=64, %lld events, median of %d) | events/s | ns/event | x numpy |\n|---|---|---|---|\n",
                n, n, static_cast<long long>(events), kReps);
    for (const Variant& x : v) {
      const double r = median_batched_rate(x.config, baseline, path, kReps);
      std::printf("| %s | %.0f | %.0f | %.0fx |\n", x.what, r, 1e9 / r, py > 0 ? r / py : 0.0);
      std::fflush(stdout);
    }
    std::printf("| the brief's numpy reference (tests/bench/brief_reference.py, %lld events) | %.0f | %.0f | 1x |\n",
                static_cast<long long>(py_events), py, py > 0 ? 1e9 / py : 0.0);
    return 0;
  }
  std::printf("\n| users = items (k=64, %lld events, shipped config, median of %d) | events/s | ns/event |\n|---|---|---|\n",
              static_cast<long long>(events), kReps);
  for (const int n : {1000, 10000, 100000, 300000}) {
    generate(events, n, n, path);
    const auto baseline = random_baseline(n, n, 64);
    const double r = median_batched_rate(StreamConfig{}, baseline, path, kReps);
    std::printf("| %d | %.0f | %.0f |\n", n, r, 1e9 / r);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t events = argc > 1 ? std::atoll(argv[1]) : 1'500'000;
  const std::int64_t py_events = argc > 2 ? std::atoll(argv[2]) : 100'000;
  // "ingest": stop after the single-core ingest (for profiling that path alone);
  // "stages" / "sizes": the cost breakdown tables (run_breakdown).
  const std::string mode = argc > 3 ? argv[3] : "all";
  const bool ingest_only = mode == "ingest";
  // Catalogue and user count (default 100K each, the size); smaller = cache-resident.
  const int size_arg = argc > 4 ? std::atoi(argv[4]) : 0;
  const int kItems = size_arg > 0 ? size_arg : 100000, kUsers = kItems;
  constexpr int kFactors = 64;
  const std::string path = "/tmp/freshrec_stream_bench.ndjson";
  if (mode == "stages" || mode == "sizes") return run_breakdown(mode, events, py_events, size_arg, path);

  auto t0 = Clock::now();
  generate(events, kUsers, kItems, path);
  std::printf("generated %lld events (%d users, %d items) in %.2f s -> %s\n", static_cast<long long>(events), kUsers,
              kItems, seconds_since(t0), path.c_str());
  t0 = Clock::now();
  const auto baseline = random_baseline(kUsers, kItems, kFactors);
  std::printf("random baseline %d users x %d items, k=%d in %.2f s\n", kUsers, kItems, kFactors, seconds_since(t0));

  StreamConfig config;  // the shipped defaults (configs/stream.yaml)
  // 1. ingest, one core
  t0 = Clock::now();
  StreamEngine engine(config, baseline);
  std::printf("engine construction %.2f s\n", seconds_since(t0));
  if (ingest_only) {
    // As freshrec-stream applies (the updater's batches and lock holds), three runs on fresh
    // engines, the median reported; all three must end in the state of one event a call.
    const Ingest plain = ingest(engine, path, false);
    std::string digest;
    const double rate = median_batched_rate(config, baseline, path, 3, &digest);
    const bool same_state = digest == engine.state_digest();
    std::printf("ingest end to end in the updater's batches, median of 3: %.0f events/s (%llu lines, %d users/items); same state: %s (digest %.16s)\n",
                rate, static_cast<unsigned long long>(plain.lines), kItems, same_state ? "yes" : "NO", digest.c_str());
    std::printf("one event a call: %.0f events/s\n", static_cast<double>(plain.lines) / plain.seconds);
    return same_state ? 0 : 1;
  }
  const Ingest plain = ingest(engine, path, false);
  StreamEngine engine_timed(config, baseline);
  const Ingest timed = ingest(engine_timed, path, true);
  const double eps = static_cast<double>(plain.lines) / plain.seconds;
  const double eps_timed = static_cast<double>(timed.lines) / timed.seconds;
  double apply_sum = 0;
  for (const float v : timed.apply_ns) apply_sum += v;
  const double apply_mean = timed.apply_ns.empty() ? 0.0 : apply_sum / static_cast<double>(timed.apply_ns.size()) / 1e3;
  const double apply_max = timed.apply_ns.empty() ? 0.0 : *std::max_element(timed.apply_ns.begin(), timed.apply_ns.end()) / 1e3;
  if (std::getenv("FRESHREC_BENCH_SLOWEST")) {  // where the slowest applies fall (event index, us)
    std::vector<std::size_t> idx(timed.apply_ns.size());
    for (std::size_t j = 0; j < idx.size(); ++j) idx[j] = j;
    std::partial_sort(idx.begin(), idx.begin() + 12, idx.end(), [&](auto a, auto b) { return timed.apply_ns[a] > timed.apply_ns[b]; });
    for (int j = 0; j < 12; ++j) std::printf("slow apply #%zu: %.0f us\n", idx[j], timed.apply_ns[idx[j]] / 1e3);
  }
  const double parse_eps = parse_only_rate(path);
  // The same without the stability guard (no replay share, undo log or holdout): what the
  // guard costs, reported beside the shipped configuration, never instead of it.
  StreamConfig unguarded = config;
  unguarded.guard.enabled = false;
  StreamEngine engine_unguarded(unguarded, baseline);
  const Ingest plain_unguarded = ingest(engine_unguarded, path, false);
  const double eps_unguarded = static_cast<double>(plain_unguarded.lines) / plain_unguarded.seconds;
  const double p50 = percentile(timed.apply_ns, 0.5) / 1e3, p99 = percentile(timed.apply_ns, 0.99) / 1e3;
  // The same as freshrec-stream applies it: in the updater's batches under one lock each.
  StreamEngine engine_batched(config, baseline);
  const Ingest batched = ingest_as_updater(engine_batched, path);
  const double eps_batched = static_cast<double>(batched.lines) / batched.seconds;
  const bool batched_same = engine_batched.state_digest() == engine.state_digest();

  // 2. recommend on this thread while another ingests into the same engine, in the
  // updater's batches and lock holds (source.apply_batch / apply_hold_ms: readers let a
  // waiting writer in first; a batch pays that wait once, a reader waits at most one hold)
  const std::size_t kServeBatch = SourceSettings{}.apply_batch;
  StreamEngine live(config, baseline);
  std::atomic<bool> done{false};
  Ingest background;
  std::thread writer([&] {
    background = ingest_as_updater(live, path);
    done = true;
  });
  std::vector<float> rec_ns;
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> pick(0, kUsers - 1);
  RecommendRequest request;
  request.k = 10;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the stream warm up
  std::size_t during = 0;  // requests answered while the writer was still ingesting
  while (!done.load() || rec_ns.size() < 200) {
    if (!done.load()) ++during;
    request.user_id = generated_user_id(static_cast<std::uint32_t>(pick(rng)));
    const auto a = Clock::now();
    const Recommendation rec = live.recommend(request);
    rec_ns.push_back(static_cast<float>(std::chrono::duration<double, std::nano>(Clock::now() - a).count()));
    if (rec.items.size() != 10) std::printf("warning: %zu items for %s\n", rec.items.size(), request.user_id.c_str());
    if (rec_ns.size() >= 20000) break;
  }
  writer.join();
  const double r50 = percentile(rec_ns, 0.5) / 1e6, r99 = percentile(rec_ns, 0.99) / 1e6;

  // 3. the brief's Python on a prefix of the same file
  const double py_eps = python_reference_rate(path, py_events, kItems);

  std::printf("\n| measure (one core each, k=%d, %d items) | value | target |\n|---|---|---|\n", kFactors, kItems);
  std::printf("| ingest end to end (read+parse+apply in the updater's batches of %zu), events/s (same state: %s) | %.0f | >= 1,000,000 |\n",
              SourceSettings{}.apply_batch, batched_same ? "yes" : "NO", eps_batched);
  std::printf("| same, one event a call, events/s | %.0f | |\n", eps);
  std::printf("| same, one event a call with per-event timing, events/s | %.0f | |\n", eps_timed);
  std::printf("| one event a call with guard.enabled false (no replay, undo log, holdout), events/s | %.0f | |\n", eps_unguarded);
  std::printf("| apply p50 / p99, us | %.2f / %.2f | p99 <= 20 |\n", p50, p99);
  std::printf("| apply mean / max, us | %.2f / %.0f | |\n", apply_mean, apply_max);
  std::printf("| read + parse only (no engine), events/s | %.0f | |\n", parse_eps);
  std::printf("| recommend top-10 p50 / p99 while ingesting, ms (%zu requests, %zu during ingest) | %.3f / %.3f | <= 1 / <= 3 |\n",
              rec_ns.size(), during, r50, r99);
  std::printf("| ingest rate while serving (batches of %zu), events/s | %.0f | |\n", kServeBatch,
              static_cast<double>(background.lines) / background.seconds);
  std::printf("| brief's Python (numpy) on %lld events, events/s | %.0f | |\n", static_cast<long long>(py_events), py_eps);
  std::printf("| ratio ours (batched) / Python | %.0fx | >= 100x |\n", py_eps > 0 ? eps_batched / py_eps : 0.0);
  std::printf("\naccepted %llu of %llu lines; guard accepts %llu rollbacks %llu\n",
              static_cast<unsigned long long>(plain.accepted), static_cast<unsigned long long>(plain.lines),
              static_cast<unsigned long long>(engine.counters().guard_accepts),
              static_cast<unsigned long long>(engine.counters().guard_rollbacks));
  return 0;
}
