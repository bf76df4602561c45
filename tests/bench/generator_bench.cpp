// Throughput of the embedded generator: events into an InteractionLog (what the nightly
// job does with `data.format: generated`) and into an NDJSON file. Prints medians.
// Usage: generator_bench [events=20000000] [repeats=3] [ndjson_events=2000000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "cpu/data/generator.hpp"

namespace {

// CPU time of this thread: on a shared build machine, wall time also counts the
// neighbours; both are printed.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timer {
  std::chrono::steady_clock::time_point wall0 = std::chrono::steady_clock::now();
  double cpu0 = thread_cpu_seconds();
  double wall() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count(); }
  double cpu() const { return thread_cpu_seconds() - cpu0; }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const long long events = argc > 1 ? std::atoll(argv[1]) : 20'000'000LL;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  const long long ndjson_events = argc > 3 ? std::atoll(argv[3]) : 2'000'000LL;

  // ML-20M-sized: ~140K users, ~27K items.
  freshrec::GeneratorConfig config;
  config.events = events;
  config.users = 140000;
  config.items = 27000;
  config.categories = 60;

  std::vector<double> plan, plan_cpu, log_total, log_cpu, ndjson, ndjson_cpu;
  std::size_t stored = 0;
  for (int r = 0; r < repeats; ++r) {
    Timer t;
    { freshrec::EventGenerator gen(config); }
    plan.push_back(t.wall());
    plan_cpu.push_back(t.cpu());
    Timer t2;
    const freshrec::InteractionLog log = freshrec::generate_interaction_log(config);
    log_total.push_back(t2.wall());
    log_cpu.push_back(t2.cpu());
    stored = log.size();
  }
  freshrec::GeneratorConfig small = config;
  small.events = ndjson_events;
  const std::string path = "/tmp/freshrec_generator_bench.ndjson";
  for (int r = 0; r < repeats; ++r) {
    Timer t;
    freshrec::write_ndjson(small, path);
    ndjson.push_back(t.wall());
    ndjson_cpu.push_back(t.cpu());
  }
  std::remove(path.c_str());

  const double p = median(plan_cpu), l = median(log_cpu), n = median(ndjson_cpu);
  std::printf("generator bench: %lld events, 140000 users, 27000 items, 60 categories, 1 thread, median of %d\n",
              events, repeats);
  std::printf("%-34s %9s %9s %16s\n", "stage", "wall s", "cpu s", "M events/cpu-s");
  std::printf("%-34s %9.3f %9.3f %16s\n", "plan sessions (EventGenerator)", median(plan), p, "-");
  std::printf("%-34s %9.3f %9.3f %16.2f\n", "generate_interaction_log (total)", median(log_total), l,
              events / l / 1e6);
  std::printf("%-34s %9s %9.3f %16.2f\n", "  of which emission (total - plan)", "", l - p, events / (l - p) / 1e6);
  std::printf("%-34s %9.3f %9.3f %16.2f   (%lld events)\n", "write_ndjson", median(ndjson), n,
              ndjson_events / n / 1e6, ndjson_events);
  std::printf("stored item events: %zu of %lld (searches are not stored)\n", stored, events);
  return 0;
}
