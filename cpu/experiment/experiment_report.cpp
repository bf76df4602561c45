// results.json, results.csv and summary.md from the results document.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cpu/experiment/experiment_report.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError("cannot write " + path.string());
  out << text;
  out.flush();
  if (!out) throw IoError("error writing " + path.string());
}

double num(const nlohmann::json& j, const std::string& key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

std::string pm(const nlohmann::json& v, const std::string& key, std::size_t seeds) {
  if (seeds > 1) return fmt::format("{:.4f} ± {:.4f}", num(v, key), num(v, key + "_std"));
  return fmt::format("{:.4f}", num(v, key));
}

std::string csv_rows(const std::string& name, const nlohmann::json& v, const std::string& K) {
  std::string out;
  auto row = [&](const std::string& seed, const nlohmann::json& m) {
    out += fmt::format("{},{},{},{:.6f},{:.6f},{:.6f},{:.1f},{:.2f},{:.2f},{}\n", name, v.value("scorer", ""), seed,
                       num(m, "hr@" + K), num(m, "recall@" + K), num(m, "ndcg@" + K), num(m, "events_per_s"),
                       m.contains("update_latency_us") ? num(m["update_latency_us"], "p50") : 0.0,
                       m.contains("update_latency_us") ? num(m["update_latency_us"], "p99") : 0.0,
                       v.value("scored_events", std::size_t{0}));
  };
  if (v.contains("per_seed"))
    for (const auto& s : v["per_seed"]) row(std::to_string(s["seed"].get<std::uint64_t>()), s);
  row("mean", v);
  return out;
}

}  // namespace

std::string experiment_summary_markdown(const nlohmann::json& r) {
  const std::string K = std::to_string(r.value("k", 10));
  const std::size_t seeds = r.contains("seeds") ? r["seeds"].size() : 1;
  std::ostringstream md;
  md << "# Experiment " << r.value("experiment", "") << "\n\n";
  const auto& d = r["data"];
  md << fmt::format(
      "{} events ({} users, {} items); the nightly model trains on the first {} (time order), the next {} are "
      "replayed test-then-learn. Full-catalogue ranking, the user's seen items excluded; K = {}; "
      "recall@{} = HR@{} (one target per event). Seeds: {}. Commit {}.\n\n",
      d.value("events", 0), d.value("users", 0), d.value("items", 0), d.value("train_events", 0),
      d.value("stream_events", 0), K, K, K, r["seeds"].dump(), r.value("git_commit", "unknown"));
  md << "| variant | scorer | HR@" << K << " | recall@" << K << " | NDCG@" << K
     << " | events/s | update p50 µs | update p99 µs |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& [name, v] : r["variants"].items())
    md << fmt::format("| {} | {} | {} | {} | {} | {:.0f} | {:.1f} | {:.1f} |\n", name, v.value("scorer", ""),
                      pm(v, "hr@" + K, seeds), pm(v, "recall@" + K, seeds), pm(v, "ndcg@" + K, seeds),
                      num(v, "events_per_s"), num(v["update_latency_us"], "p50"), num(v["update_latency_us"], "p99"));
  if (r.contains("paired_test")) {
    const auto& p = r["paired_test"];
    const auto& w = p["over_windows"];
    md << fmt::format(
        "\nPaired test, {} − {} on {} over {} time windows (seed means): mean difference {:+.4f}, t = {}, "
        "p = {:.3g}; sign test {} wins / {} losses, p = {:.3g}.\n",
        p.value("treatment", ""), p.value("baseline", ""), p.value("metric", ""), w.value("n", 0),
        num(w, "mean_diff"), w["t"].is_number() ? fmt::format("{:.2f}", w["t"].get<double>()) : w["t"].dump(),
        num(w, "t_p"), w.value("wins", 0), w.value("losses", 0), num(w, "sign_p"));
  }
  for (const auto& [name, s] : r["sweeps"].items()) {
    md << "\n## Sweep " << name << ": " << s.value("key", "") << " of " << s.value("variant", "") << "\n\n";
    md << "| value | HR@" << K << " | NDCG@" << K << " | events/s |\n|---|---|---|---|\n";
    for (const auto& p : s["points"])
      md << fmt::format("| {} | {} | {} | {:.0f} |\n", p["value"].dump(), pm(p, "hr@" + K, seeds),
                        pm(p, "ndcg@" + K, seeds), num(p, "events_per_s"));
  }
  if (r.contains("timing"))
    md << fmt::format("\nWall time: {:.1f} s (load {:.1f} s, training {:.1f} s for {} models, replays {:.1f} s on {} threads).\n",
                      num(r["timing"], "total_s"), num(r["timing"], "load_s"), num(r["timing"], "train_s"),
                      r["timing"].value("models_trained", 0), num(r["timing"], "replay_s"),
                      r["timing"].value("replay_threads", 0));
  return md.str();
}

void write_experiment_reports(const nlohmann::json& results, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create " + dir + ": " + ec.message());
  const std::filesystem::path root(dir);
  write_text(root / "results.json", results.dump(2) + "\n");
  const std::string K = std::to_string(results.value("k", 10));
  std::string csv = "variant,scorer,seed,hr@" + K + ",recall@" + K + ",ndcg@" + K +
                    ",events_per_s,update_p50_us,update_p99_us,scored_events\n";
  for (const auto& [name, v] : results["variants"].items()) csv += csv_rows(name, v, K);
  for (const auto& [name, s] : results["sweeps"].items())
    for (const auto& p : s["points"]) csv += csv_rows("sweep:" + p.value("name", name), p, K);
  write_text(root / "results.csv", csv);
  write_text(root / "summary.md", experiment_summary_markdown(results));
}

}  // namespace freshrec
