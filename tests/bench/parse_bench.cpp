// Parse throughput of load_interaction_log on one core: MovieLens TSV and NDJSON.
//
// Writes a synthetic file of each format (default 2M lines, first argument overrides),
// loads it 5 times and prints the median MB/s and events/s, the resident memory the
// loaded log holds and the peak growth during a load. The "scan only" row walks the
// same file with LineReader and parses nothing: the ceiling set by reading the file.
//
//   build-data/tests/bench/parse_bench [lines]
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cpu/data/line_reader.hpp"
#include "cpu/data/log_reader.hpp"

using namespace freshrec;

namespace {

constexpr int kRepeats = 5;

// VmRSS or VmHWM of this process, bytes.
long long proc_status_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return std::atoll(line.c_str() + prefix.size()) * 1024;
  return -1;
}

// Resets VmHWM to the current RSS so the next reading is the peak of what follows.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU time of this thread: the one-core figure even when other jobs share the machine.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Popular users and items come up more often, as in real logs (a squared uniform).
struct Draw {
  std::mt19937_64 rng{12345};
  std::uniform_real_distribution<double> unit{0.0, 1.0};
  std::uint32_t skewed(std::uint32_t n) {
    const double u = unit(rng);
    return static_cast<std::uint32_t>(u * u * n);
  }
};

void write_tsv(const std::string& path, std::size_t lines) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) std::perror(path.c_str()), std::exit(1);
  Draw d;
  double t = 874724710;
  for (std::size_t k = 0; k < lines; ++k) {
    t += d.unit(d.rng) * 10;
    const int half_stars = 2 + static_cast<int>(d.unit(d.rng) * 9);  // 1.0 .. 5.0
    std::fprintf(f, "%u\t%u\t%g\t%lld\n", d.skewed(140000) + 1, d.skewed(27000) + 1, half_stars / 2.0,
                 static_cast<long long>(t));
  }
  std::fclose(f);
}

void write_ndjson(const std::string& path, std::size_t lines) {
  static const char* kTypes[] = {"view", "view", "view", "view", "click", "click", "add_to_cart", "purchase", "rating", "search"};
  static const char* kCategories[] = {"running_shoes", "winter_boots", "headphones", "coffee", "books"};
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) std::perror(path.c_str()), std::exit(1);
  Draw d;
  double t = 1714564800.0;
  for (std::size_t k = 0; k < lines; ++k) {
    t += d.unit(d.rng) * 0.5;
    const char* type = kTypes[k % 10];
    const std::uint32_t cat = d.skewed(5);
    char ts[64];
    // Mostly epoch seconds, some millis, some ISO-8601 strings: all three paths run.
    if (k % 10 < 7) {
      std::snprintf(ts, sizeof ts, "%.3f", t);
    } else if (k % 10 < 9) {
      std::snprintf(ts, sizeof ts, "%lld", static_cast<long long>(t * 1000));
    } else {
      const long long s = static_cast<long long>(t) - 1714521600LL;  // since 2024-05-01T00:00Z
      std::snprintf(ts, sizeof ts, "\"2024-05-%02lldT%02lld:%02lld:%02lld.%03d+00:00\"", 1 + s / 86400,
                    s / 3600 % 24, s / 60 % 60, s % 60, static_cast<int>((t - std::floor(t)) * 1000));
    }
    if (type[0] == 's') {
      std::fprintf(f,
                   "{\"user_id\":\"u%u\",\"event_type\":\"search\",\"timestamp\":%s,"
                   "\"properties\":{\"query\":\"cheap %s\"}}\n",
                   d.skewed(140000), ts, kCategories[cat]);
    } else if (type[0] == 'r') {
      std::fprintf(f,
                   "{\"user_id\":\"u%u\",\"item_id\":\"i%u\",\"event_type\":\"rating\",\"timestamp\":%s,"
                   "\"properties\":{\"rating\":%d.0}}\n",
                   d.skewed(140000), d.skewed(27000), ts, 1 + static_cast<int>(d.unit(d.rng) * 5));
    } else {
      std::fprintf(f,
                   "{\"user_id\":\"u%u\",\"item_id\":\"i%u\",\"event_type\":\"%s\",\"timestamp\":%s,"
                   "\"properties\":{\"category\":\"%s\",\"price\":%.2f}}\n",
                   d.skewed(140000), d.skewed(27000), type, ts, kCategories[cat], 5 + d.unit(d.rng) * 200);
    }
  }
  std::fclose(f);
}

long long file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  return static_cast<long long>(in.tellg());
}

void bench_format(const char* name, const std::string& path, DataFormat format) {
  DataConfig config;
  config.path = path;
  config.format = format;
  config.max_bad_fraction = 0.0;
  const double mb = static_cast<double>(file_bytes(path)) / 1e6;

  std::vector<double> times, cpu_times;
  long long held = 0, peak = 0;
  std::size_t events = 0, lines = 0, users = 0, items = 0;
  for (int r = 0; r < kRepeats; ++r) {
    const long long before = proc_status_bytes("VmRSS");
    reset_peak_rss();
    ParseReport report;
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    InteractionLog log = load_interaction_log(config, &report);
    cpu_times.push_back(thread_cpu_seconds() - c0);
    times.push_back(seconds_since(t0));
    if (r == 0) {
      held = proc_status_bytes("VmRSS") - before;
      peak = proc_status_bytes("VmHWM") - before;
      events = log.size();
      lines = report.lines;
      users = log.users.size();
      items = log.items.size();
    }
  }
  // Scan only: the cost of getting the lines off the page cache. Run after the loads so
  // that their RSS baseline holds no allocator leftovers.
  std::vector<double> scan;
  std::size_t scanned = 0;  // used below, so the scan loop is not optimised away
  for (int r = 0; r < kRepeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    LineReader reader(path);
    std::string_view line;
    std::size_t bytes = 0;
    while (reader.next(line)) bytes += line.size();
    scan.push_back(seconds_since(t0));
    scanned += bytes;
  }

  if (scanned == 0) std::fprintf(stderr, "%s: scan saw no bytes\n", path.c_str());
  const double t = median(times);
  const double c = median(cpu_times);
  const double s = median(scan);
  std::printf("%-8s %8.1f %9zu %9zu %7zu %8.3f %7.1f %7.1f %10.2f %9.1f %8.1f %8.1f %7.1f\n", name, mb,
              lines, events, users + items, t, mb / t, mb / c, events / c / 1e6, mb / s,
              static_cast<double>(held) / 1e6, static_cast<double>(peak) / 1e6,
              events ? static_cast<double>(held) / static_cast<double>(events) : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t lines = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2000000;
  const std::string base = "/tmp/freshrec_parse_bench_" + std::to_string(::getpid());
  const std::string tsv = base + ".tsv", nd = base + ".ndjson";
  write_tsv(tsv, lines);
  write_ndjson(nd, lines);

  std::printf("parse_bench: %zu lines per file, median of %d loads, one thread\n", lines, kRepeats);
  std::printf("%-8s %8s %9s %9s %7s %8s %7s %7s %10s %9s %8s %8s %7s\n", "format", "file_MB", "lines",
              "events", "ids", "median_s", "MB/s", "cpuMB/s", "cpuMev/s", "scan_MB/s", "held_MB",
              "peak_MB", "B/event");
  std::fflush(stdout);
  // Each format loads in a fresh child process, so RSS figures are not blurred by memory
  // the allocator kept from the previous format.
  const std::pair<const char*, std::pair<std::string, DataFormat>> runs[] = {
      {"tsv", {tsv, DataFormat::kMovielensTsv}}, {"ndjson", {nd, DataFormat::kNdjson}}};
  for (const auto& run : runs) {
    const pid_t child = ::fork();
    if (child == 0) {
      bench_format(run.first, run.second.first, run.second.second);
      std::fflush(stdout);
      std::_Exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
  }
  std::printf("MB/s: file bytes over the median wall time; cpuMB/s, cpuMev/s: over the median CPU\n"
              "time of the loading thread (the one-core figure on a shared machine); scan_MB/s:\n"
              "LineReader alone, no parsing (wall); held_MB: RSS growth with the loaded log alive;\n"
              "peak_MB: RSS high-water growth during a load; B/event: held bytes per stored event.\n");
  std::remove(tsv.c_str());
  std::remove(nd.c_str());
  return 0;
}
