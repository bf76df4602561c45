#include "cpu/nightly/nightly_job.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <thread>

#include <fmt/core.h>

#include "cpu/data/log_reader.hpp"
#include "cpu/nightly/evaluation.hpp"
#include "cpu/eval/split.hpp"
#include "cpu/model/snapshot.hpp"
#include "cpu/train/trainer.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/trace.hpp"

namespace freshrec {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

template <typename... Args>
void say(std::FILE* out, fmt::format_string<Args...> f, Args&&... args) {
  if (!out) return;
  fmt::print(out, f, std::forward<Args>(args)...);
  std::fflush(out);
}

std::string format_name(DataFormat f) {
  switch (f) {
    case DataFormat::kMovielensTsv: return "movielens-tsv";
    case DataFormat::kMovielensCsv: return "movielens-csv";
    case DataFormat::kNdjson: return "ndjson";
    case DataFormat::kGenerated: return "generated";
  }
  return "?";
}

nlohmann::json config_json(const NightlyConfig& c) {
  const TrainConfig& t = c.train;
  nlohmann::json j;
  j["source"] = c.source;
  j["data"] = {{"format", format_name(c.data.format)}, {"path", c.data.path},
               {"max_bad_fraction", c.data.max_bad_fraction}};
  if (c.data.format == DataFormat::kGenerated) {
    const GeneratorConfig& g = c.data.generator;
    j["data"]["generator"] = {{"events", g.events}, {"users", g.users}, {"items", g.items},
                              {"categories", g.categories}, {"seed", g.seed}};
  }
  j["train"] = {{"algorithm", t.algorithm == Algorithm::kAls ? "als" : "sgd"},
                {"factors", t.factors},
                {"iterations", t.iterations},
                {"regularization", t.regularization},
                {"solver", t.solver == AlsSolver::kCholesky ? "cholesky" : "cg"},
                {"cg_steps", t.cg_steps},
                {"alpha", t.confidence.alpha},
                {"lambda_long", t.confidence.lambda_long},
                {"learning_rate", t.learning_rate},
                {"seed", t.seed}};
  j["eval"] = {{"enabled", c.eval.enabled}, {"protocol", std::string(split_protocol_name(c.eval.protocol))},
               {"k", c.eval.k}, {"train_fraction", c.eval.train_fraction}, {"seed", c.eval.seed},
               {"refit_on_full_log", c.refit_on_full_log}};
  j["output"] = {{"dir", c.output.dir}, {"warm_start", c.output.warm_start}};
  return j;
}

/// The previous model to warm-start from, if the config asks for one and it exists.
std::optional<FactorModel> load_warm_start(const NightlyConfig& c, std::FILE* progress) {
  const std::string& w = c.output.warm_start;
  if (w.empty()) return std::nullopt;
  if (w == "latest") {
    if (!std::filesystem::exists(std::filesystem::path(c.output.dir) / "LATEST")) {
      say(progress, "[warm] no {}/LATEST yet: cold start\n", c.output.dir);
      return std::nullopt;
    }
    SnapshotInfo info;
    FactorModel m = load_latest(c.output.dir, &info);
    say(progress, "[warm] starting from {} ({} users, {} items)\n", info.path, m.n_users(), m.n_items());
    return m;
  }
  FactorModel m = load_snapshot(w);
  say(progress, "[warm] starting from {} ({} users, {} items)\n", w, m.n_users(), m.n_items());
  return m;
}

TrainingSet build_set(const InteractionLog& log, const std::vector<std::uint8_t>& mask, const TrainConfig& t) {
  if (t.algorithm == Algorithm::kSgd) return build_explicit_training_set(log, mask);
  double cutoff = 0.0;
  for (std::size_t e = 0; e < log.size(); ++e)
    if (mask.empty() || mask[e]) cutoff = std::max(cutoff, log.timestamp[e]);
  return build_implicit_training_set(log, mask, t.confidence, cutoff);
}

/// Trains `model` in place on `data` with progress lines; returns per-iteration reports.
nlohmann::json train(Trainer& trainer, const TrainingSet& data, FactorModel& model, int iterations,
                     const char* phase, std::FILE* progress) {
  nlohmann::json per_iteration = nlohmann::json::array();
  const auto t0 = Clock::now();
  trainer.fit(data, model, [&](const IterationReport& r) {
    const double elapsed = seconds_since(t0);
    const double eta = r.iteration > 0 ? elapsed / r.iteration * (iterations - r.iteration) : 0.0;
    if (std::isnan(r.loss))
      say(progress, "[{}] iter {:>3}/{} {:.3f}s  elapsed {:.1f}s  eta {:.1f}s\n", phase, r.iteration, iterations,
          r.seconds, elapsed, eta);
    else
      say(progress, "[{}] iter {:>3}/{} loss {:.6g}  {:.3f}s  elapsed {:.1f}s  eta {:.1f}s\n", phase, r.iteration,
          iterations, r.loss, r.seconds, elapsed, eta);
    per_iteration.push_back({{"iteration", r.iteration},
                             {"seconds", r.seconds},
                             {"loss", std::isnan(r.loss) ? nlohmann::json(nullptr) : nlohmann::json(r.loss)}});
  });
  return per_iteration;
}

}  // namespace

NightlyResult run_nightly_job(const NightlyConfig& config, std::FILE* progress) {
  const auto job_start = Clock::now();
  NightlyResult result;
  nlohmann::json& report = result.report;
  nlohmann::json timing;

  // --- load -------------------------------------------------------------------
  auto t = Clock::now();
  ParseReport parse;
  InteractionLog log;
  {
    FRESHREC_TRACE_RANGE("load");
    log = load_interaction_log(config.data, &parse);
  }
  timing["load_s"] = seconds_since(t);
  if (log.empty()) throw InputError(config.data.path + ": no usable events");
  say(progress, "[load] {} events, {} users, {} items ({} lines, {} bad, {} without item) in {:.2f}s\n", log.size(),
      log.users.size(), log.items.size(), parse.lines, parse.bad, parse.without_item, timing["load_s"].get<double>());
  for (const ParseError& e : parse.errors) say(progress, "[load] skipped {}\n", e.to_string());
  nlohmann::json bad_lines = nlohmann::json::array();
  for (const ParseError& e : parse.errors) bad_lines.push_back(e.to_string());
  report["data"] = {{"events", log.size()},        {"users", log.users.size()}, {"items", log.items.size()},
                    {"lines", parse.lines},        {"bad_lines", parse.bad},    {"without_item", parse.without_item},
                    {"first_errors", bad_lines}};

  const std::optional<FactorModel> warm = load_warm_start(config, progress);
  const ModelKind kind = config.train.algorithm == Algorithm::kSgd ? ModelKind::kExplicit : ModelKind::kImplicit;
  std::string backend;
  std::unique_ptr<Trainer> trainer = make_trainer(config.train, &backend);
  say(progress, "[train] trainer {} (backend {}), k={}, {} iterations\n", trainer->name(), backend,
      config.train.factors, config.train.iterations);

  // --- split, build, train, evaluate ---------------------------------------------
  FactorModel model;
  std::vector<std::uint8_t> all;  // empty mask = every event
  if (config.eval.enabled) {
    t = Clock::now();
    const Split split = split_log(log, config.eval);
    timing["split_s"] = seconds_since(t);
    t = Clock::now();
    TrainingSet data;
    {
      FRESHREC_TRACE_RANGE("build");
      data = build_set(log, split.train_mask, config.train);
    }
    timing["build_s"] = seconds_since(t);
    say(progress, "[split] {}: {} train events, {} test events; matrix {} x {}, {} nnz\n",
        split_protocol_name(config.eval.protocol), split.train_events(), split.test_events(), data.n_users(),
        data.n_items(), data.user_items.nnz());
    initialize_factors(log, data, config.train, kind, warm ? &*warm : nullptr, model);
    t = Clock::now();
    timing["iterations"] = train(*trainer, data, model, config.train.iterations, "train", progress);
    timing["train_s"] = seconds_since(t);

    t = Clock::now();
    EvaluationResult ev;
    {
      FRESHREC_TRACE_RANGE("evaluate");
      ev = evaluate_model_and_baseline(log, split, model, config.eval);
    }
    timing["eval_s"] = seconds_since(t);
    report["metrics"] = ev.model;
    report["baseline"] = ev.baseline;
    report["evaluated_users"] = ev.users;
    report["cold_users_skipped"] = ev.cold_users_skipped;
    say(progress, "[eval] {} users, K={}: model ndcg@{} {:.4f} precision@{} {:.4f} | popularity ndcg@{} {:.4f}\n",
        ev.users, config.eval.k, config.eval.k, ev.model.value("ndcg@" + std::to_string(config.eval.k), 0.0),
        config.eval.k, ev.model.value("precision@" + std::to_string(config.eval.k), 0.0), config.eval.k,
        ev.baseline.value("ndcg@" + std::to_string(config.eval.k), 0.0));
  }
  if (!config.eval.enabled || config.refit_on_full_log) {
    t = Clock::now();
    TrainingSet data;
    {
      FRESHREC_TRACE_RANGE("build");
      data = build_set(log, all, config.train);
    }
    timing["build_full_s"] = seconds_since(t);
    // The refit starts from the evaluated factors: a warm start that converges faster.
    const FactorModel* start = config.eval.enabled ? &model : (warm ? &*warm : nullptr);
    FactorModel full;
    initialize_factors(log, data, config.train, kind, start, full);
    t = Clock::now();
    timing["iterations_full"] = train(*trainer, data, full, config.train.iterations, "refit", progress);
    timing["train_full_s"] = seconds_since(t);
    model = std::move(full);
  }

  // --- publish ------------------------------------------------------------------
  model.hyperparameters["trainer"] = trainer->name();
  model.hyperparameters["backend"] = backend;
  model.hyperparameters["factors"] = std::to_string(config.train.factors);
  model.hyperparameters["iterations"] = std::to_string(config.train.iterations);
  model.hyperparameters["regularization"] = fmt::format("{}", config.train.regularization);
  model.hyperparameters["alpha"] = fmt::format("{}", config.train.confidence.alpha);
  model.hyperparameters["lambda_long"] = fmt::format("{}", config.train.confidence.lambda_long);
  model.hyperparameters["seed"] = std::to_string(config.train.seed);
  model.hyperparameters["config"] = config.source;
  t = Clock::now();
  SnapshotInfo info;
  {
    FRESHREC_TRACE_RANGE("snapshot");
    info = write_snapshot(model, config.output.dir, config.output.version, config.output.publish_latest);
  }
  timing["snapshot_s"] = seconds_since(t);
  result.snapshot_dir = info.path;
  result.version = info.version;
  say(progress, "[publish] {} ({}){}\n", info.path, info.version, config.output.publish_latest ? ", LATEST updated" : "");

  timing["total_s"] = seconds_since(job_start);
  report["timing"] = timing;
  report["model"] = {{"version", info.version}, {"path", info.path},       {"trainer", trainer->name()},
                     {"backend", backend},      {"users", model.n_users()}, {"items", model.n_items()},
                     {"factors", model.factors()}};
  report["config"] = config_json(config);
  say(progress, "[done] total {:.2f}s\n", timing["total_s"].get<double>());
  return result;
}

}  // namespace freshrec
