#pragma once
/// The data side of a prequential replay: the whole log in event-time order, the split
/// point, and the nightly models trained on prefixes of it.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "cpu/data/data_config.hpp"
#include "cpu/data/event_type.hpp"
#include "cpu/data/interaction_log.hpp"
#include "cpu/model/factor_model.hpp"
#include "cpu/train/train_config.hpp"

namespace freshrec {

/// Where the replayed events come from ("dataset:" of an experiment YAML).
struct DatasetConfig {
  DataConfig data;  ///< the same keys as the nightly trainer's "data:" section
  /// When set, every event (nightly training and stream alike) is treated as this type,
  /// value 1: MovieLens ratings become clicks, so a rated movie is an implicit positive and
  /// enters the session embedding (which only clicks and views feed).
  std::optional<EventType> as_event_type;
};

/// The log sorted by event time (stable: equal times keep file order) and its split.
/// Host memory, 21 bytes an event plus the id tables.
struct ReplayData {
  InteractionLog log;             ///< every event with an item, time order; ids of the whole log
  std::size_t train_events = 0;   ///< events [0, train_events) train the first nightly model
  double cutoff_time = 0.0;       ///< time of the last training event (epoch s)
  std::size_t lines_bad = 0;      ///< input lines the reader rejected
};

/// Loads (or generates) the data, applies `as_event_type`, sorts by time and splits at
/// floor(train_fraction * events). Throws InputError when either side would be empty.
ReplayData load_replay_data(const DatasetConfig& config, double train_fraction);

/// Sorts `log` by event time in place (stable) — exposed for tests building logs by hand.
void sort_log_by_time(InteractionLog& log);

/// The first `n` events of `sorted` as a log of their own: ids re-interned in first-seen
/// order, so a model trained on it knows exactly the users and items seen before the cut
/// (a user whose first event is later is new to it, as in production).
InteractionLog prefix_log(const InteractionLog& sorted, std::size_t n);

/// Trains a nightly model on events [0, n) of `sorted` with `config` (backend picked by
/// the factory; `backend` receives "cpu" or "cuda"). data_cutoff = time of event n-1.
std::shared_ptr<const FactorModel> train_prefix_model(const InteractionLog& sorted, std::size_t n,
                                                      const TrainConfig& config, std::string* backend = nullptr);

}  // namespace freshrec
