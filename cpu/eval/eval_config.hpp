#pragma once
#include <cstdint>

namespace freshrec {

enum class SplitProtocol { kStratifiedItem, kTimeGlobal, kLeaveLastOut };

/// Offline evaluation settings.
struct EvalConfig {
  SplitProtocol protocol = SplitProtocol::kStratifiedItem;
  int k = 10;
  double train_fraction = 0.75;   ///< stratified-item: share of each item's pairs kept for training;
                                  ///< time-global: share of the log (by time) kept for training
  std::uint64_t seed = 42;
  bool enabled = true;
  int threads = 0;                ///< 0: all hardware threads
};

}  // namespace freshrec
