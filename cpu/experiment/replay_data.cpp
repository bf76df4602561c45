#include "cpu/experiment/replay_data.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cpu/data/log_reader.hpp"
#include "cpu/train/trainer.hpp"
#include "cpu/train/training_set.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {

void sort_log_by_time(InteractionLog& log) {
  const std::size_t n = log.size();
  if (std::is_sorted(log.timestamp.begin(), log.timestamp.end())) return;
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&log](std::size_t a, std::size_t b) { return log.timestamp[a] < log.timestamp[b]; });
  InteractionLog sorted;
  sorted.users = std::move(log.users);
  sorted.items = std::move(log.items);
  sorted.reserve(n);
  for (std::size_t e : order) sorted.add(log.user[e], log.item[e], log.timestamp[e], log.value[e], log.type[e]);
  log = std::move(sorted);
}

ReplayData load_replay_data(const DatasetConfig& config, double train_fraction) {
  ReplayData out;
  ParseReport report;
  out.log = load_interaction_log(config.data, &report);
  out.lines_bad = report.bad;
  if (config.as_event_type) {
    std::fill(out.log.type.begin(), out.log.type.end(), *config.as_event_type);
    std::fill(out.log.value.begin(), out.log.value.end(), 1.0f);
  }
  sort_log_by_time(out.log);
  const std::size_t n = out.log.size();
  out.train_events = static_cast<std::size_t>(std::floor(train_fraction * static_cast<double>(n)));
  if (out.train_events == 0 || out.train_events >= n)
    throw InputError("dataset: " + std::to_string(n) + " events leave an empty side at protocol.train_fraction " +
                     std::to_string(train_fraction) + " (" + config.data.path + ")");
  out.cutoff_time = out.log.timestamp[out.train_events - 1];
  return out;
}

InteractionLog prefix_log(const InteractionLog& sorted, std::size_t n) {
  n = std::min(n, sorted.size());
  InteractionLog out;
  out.reserve(n);
  for (std::size_t e = 0; e < n; ++e) {
    const std::uint32_t u = out.users.intern(sorted.users.id(sorted.user[e]));
    const std::uint32_t i = out.items.intern(sorted.items.id(sorted.item[e]));
    out.add(u, i, sorted.timestamp[e], sorted.value[e], sorted.type[e]);
  }
  return out;
}

std::shared_ptr<const FactorModel> train_prefix_model(const InteractionLog& sorted, std::size_t n,
                                                      const TrainConfig& config, std::string* backend) {
  const InteractionLog log = prefix_log(sorted, n);
  if (log.empty()) throw InputError("train_prefix_model: no events before the cut");
  const double cutoff = log.timestamp.back();
  const std::vector<std::uint8_t> all;
  const bool explicit_model = config.algorithm == Algorithm::kSgd;
  const TrainingSet data = explicit_model ? build_explicit_training_set(log, all)
                                          : build_implicit_training_set(log, all, config.confidence, cutoff);
  auto model = std::make_shared<FactorModel>();
  initialize_factors(log, data, config, explicit_model ? ModelKind::kExplicit : ModelKind::kImplicit, nullptr, *model);
  std::unique_ptr<Trainer> trainer = make_trainer(config, backend);
  trainer->fit(data, *model, [](const IterationReport&) {});
  model->data_cutoff = cutoff;
  model->hyperparameters["trainer"] = trainer->name();
  return model;
}

}  // namespace freshrec
