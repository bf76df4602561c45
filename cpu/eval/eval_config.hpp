#pragma once
#include <cstdint>

namespace freshrec {

/// How the log is cut into training and test events (see cpu/eval/split.hpp).
/// kStratifiedItem is what issue 2 names "the Microsoft Recommenders protocol"
/// (python_stratified_split with filter_by="item"); the Recommenders benchmark notebooks
/// call python_stratified_split with its default filter_by="user", which is
/// kStratifiedUser, so both are offered.
enum class SplitProtocol { kStratifiedItem, kTimeGlobal, kLeaveLastOut, kStratifiedUser };

/// Offline evaluation settings.
struct EvalConfig {
  SplitProtocol protocol = SplitProtocol::kStratifiedItem;
  int k = 10;
  double train_fraction = 0.75;   ///< stratified-item/-user: share of each item's/user's pairs kept
                                  ///< for training; time-global: share of the log (by time) kept
                                  ///< for training
  std::uint64_t seed = 42;
  bool enabled = true;
  int threads = 0;                ///< 0: all hardware threads
};

}  // namespace freshrec
