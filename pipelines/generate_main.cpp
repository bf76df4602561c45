// freshrec-generate: writes the built-in synthetic e-commerce event log as NDJSON.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cpu/data/generator.hpp"
#include "cpu/util/error.hpp"

int main(int argc, char** argv) {
  freshrec::GeneratorConfig config;
  std::string out;
  CLI::App app{
      "Writes the built-in synthetic e-commerce event log (users with category tastes, sessions "
      "with intent shifts, Zipf item popularity, view/click/add_to_cart/purchase funnel, searches) "
      "as NDJSON, one event a line, in time order. Deterministic by --seed."};
  app.add_option("--out,-o", out, "Output file ('-' for stdout)")->required();
  app.add_option("--events,-n", config.events, "Total events, searches included")->capture_default_str();
  app.add_option("--users,-u", config.users, "Users")->capture_default_str();
  app.add_option("--items,-i", config.items, "Items in the catalogue")->capture_default_str();
  app.add_option("--categories", config.categories, "Item categories")->capture_default_str();
  app.add_option("--seed,-s", config.seed, "Random seed")->capture_default_str();
  app.add_option("--days", config.days, "Span of event time, days")->capture_default_str();
  app.add_option("--start-time", config.start_time, "Epoch seconds of the span's start")->capture_default_str();
  app.add_option("--zipf", config.zipf_exponent, "Zipf exponent of item popularity within a category")
      ->capture_default_str();
  app.add_option("--session-gap", config.session_gap_seconds, "Inactivity gap between sessions, seconds")
      ->capture_default_str();
  app.add_option("--intent-shift", config.intent_shift_probability,
                 "Share of sessions aimed at a category outside the user's tastes")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const auto t0 = std::chrono::steady_clock::now();
    const freshrec::GeneratorStats stats = freshrec::write_ndjson(config, out);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%s\n",
                 fmt::format("freshrec-generate: {} events ({} searches, {} sessions, {} with a shifted intent; "
                             "{} users, {} items, {} categories, seed {}) written to {} in {:.2f} s "
                             "({:.2f} M events/s)",
                             stats.emitted, stats.searches, stats.sessions, stats.shifted_sessions, config.users,
                             config.items, config.categories, config.seed, out, seconds,
                             seconds > 0 ? static_cast<double>(stats.emitted) / seconds / 1e6 : 0.0)
                     .c_str());
    if (stats.users_past_span > 0)
      std::fprintf(stderr,
                   "freshrec-generate: warning: %lld users have more sessions than fit into %g days with "
                   "%g s gaps; their events run past the span (use more --users or --days)\n",
                   static_cast<long long>(stats.users_past_span), config.days, config.session_gap_seconds);
    return 0;
  } catch (const freshrec::InputError& e) {
    std::fprintf(stderr, "freshrec-generate: invalid option: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "freshrec-generate: %s\n", e.what());
    return 1;
  }
}
