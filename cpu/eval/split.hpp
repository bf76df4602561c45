#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "cpu/data/interaction_log.hpp"
#include "cpu/eval/eval_config.hpp"

namespace freshrec {

/// A train/test cut of an interaction log, one flag per event (host memory).
struct Split {
  std::vector<std::uint8_t> train_mask;  ///< per event of the log: 1 train, 0 test

  std::size_t train_events() const noexcept;
  std::size_t test_events() const noexcept { return train_mask.size() - train_events(); }
};

/// Cuts `log` by config.protocol with config.train_fraction and config.seed.
///
/// - stratified-item / stratified-user: Microsoft Recommenders' python_stratified_split
///   with filter_by="item" / "user", on the log's distinct (user, item) pairs: each
///   item's (user's) pairs are shuffled with a stream derived from (seed, item) and the
///   pair at 1-based rank r of n goes to train when r / n <= train_fraction (their rule,
///   so an item with a single pair lands in test, and 4 pairs split 3/1).
/// - time-global: events sorted by time (ties by log order); ranks r / n <= train_fraction
///   train, the rest test, so no training event is later than a test event.
/// - leave-last-out: per user, the pair holding the user's latest event (ties: the event
///   later in the log) is test; a user with a single pair keeps it in train.
///
/// Except for time-global, all events of a pair follow the pair. Deterministic for a
/// log and seed on every platform. Throws InputError naming eval.train_fraction when it
/// is outside (0, 1), or naming the event when a timestamp is not finite.
Split split_log(const InteractionLog& log, const EvalConfig& config);

/// "stratified-item" -> kStratifiedItem, ... ; nullopt for an unknown name.
std::optional<SplitProtocol> parse_split_protocol(std::string_view name) noexcept;
/// The config name of `protocol` ("stratified-item", "stratified-user", "time-global",
/// "leave-last-out").
std::string_view split_protocol_name(SplitProtocol protocol) noexcept;

}  // namespace freshrec
