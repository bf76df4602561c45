// The machine's ceiling for the streaming updater: how long one random cache line takes to
// arrive from a table of a given size, alone (a chain of dependent loads: latency) and with
// 4..32 independent chains in flight (throughput, what prefetching can reach at best). An
// event of the updater touches ~100 random lines of tables far larger than the caches (ids,
// user and item rows, their baselines, windows, the undo log), so lines/event x ns/line
// bounds its rate whatever the code does between the loads.
//   usage: memory_lines_bench [max_mib=256]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

namespace {

struct alignas(64) Line {
  std::uint64_t next;
  char pad[56];
};

double ns_per_line(const std::vector<Line>& table, const std::vector<std::uint64_t>& starts, std::size_t steps) {
  std::vector<std::uint64_t> at = starts;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t s = 0; s < steps; ++s)
    for (auto& p : at) p = table[p].next;
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  std::uint64_t sink = 0;
  for (const auto p : at) sink ^= p;
  if (sink == UINT64_MAX) std::printf("(unreachable)\n");  // keeps the loads
  return ns / static_cast<double>(steps * at.size());
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t max_mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256;
  const std::vector<int> chains{1, 4, 8, 16, 32};
  std::printf("| table MiB | ns/line, 1 chain (latency) |");
  for (std::size_t c = 1; c < chains.size(); ++c) std::printf(" %d chains |", chains[c]);
  std::printf("\n|---|---|");
  for (std::size_t c = 1; c < chains.size(); ++c) std::printf("---|");
  std::printf("\n");
  for (std::size_t mib = 1; mib <= max_mib; mib *= 4) {
    const std::size_t n = mib * 1024 * 1024 / sizeof(Line);
    // One random cycle through every line: no line is visited twice before all were.
    std::vector<std::uint64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(1));
    std::vector<Line> table(n);
    for (std::size_t i = 0; i < n; ++i) table[order[i]].next = order[(i + 1) % n];
    std::printf("| %zu |", mib);
    for (const int c : chains) {
      std::vector<std::uint64_t> starts(static_cast<std::size_t>(c));
      for (int j = 0; j < c; ++j) starts[j] = order[(static_cast<std::size_t>(j) * n) / c];
      const std::size_t steps = 2'000'000 / static_cast<std::size_t>(c);
      ns_per_line(table, starts, steps / 10);  // warm the TLB and caches the same way each time
      std::printf(" %.1f |", ns_per_line(table, starts, steps));
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
