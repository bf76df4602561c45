#pragma once
#include <cstdint>
#include <vector>

#include "cpu/stream/rng.hpp"

namespace freshrec::stream {

/// Walker/Vose alias table: O(n) build, O(1) draw proportional to the build weights.
/// Host memory, 12 bytes per entry (+ build scratch). Built deterministically (double
/// arithmetic, fixed order). The build can also run in bounded steps (begin_build /
/// build_step), so a large table is rebuilt a slice at a time between events instead of in
/// one stall; the stepped build gives exactly the table build() gives.
class AliasTable {
 public:
  /// Rebuilds from non-negative `weights` (at least one positive); empty weights = empty table.
  void build(const std::vector<double>& weights);
  /// Starts a stepped build from `weights`, which must stay alive and unchanged until
  /// build_step() returns true. The table is not drawable meanwhile.
  void begin_build(const std::vector<double>& weights);
  /// Does at most `budget` units of the build (one unit ~ one entry of one pass; a whole
  /// build is at most 4 n units). Returns true once the table is complete.
  bool build_step(std::size_t budget);
  /// A stepped build is in progress.
  bool building() const noexcept { return weights_ != nullptr; }
  /// Abandons a stepped build.
  void cancel_build() noexcept { weights_ = nullptr; }
  /// Index drawn with probability weight[i] / sum(weights). Table must not be empty.
  std::uint32_t draw(Xoshiro256& rng) const noexcept {
    const std::uint32_t i = rng.below(static_cast<std::uint32_t>(prob_.size()));
    const double coin = rng.uniform();
    return coin < prob_[i] ? i : alias_[i];
  }
  std::size_t size() const noexcept { return prob_.size(); }
  bool empty() const noexcept { return prob_.empty(); }
  /// Raw arrays, for checkpoints.
  const std::vector<double>& prob() const noexcept { return prob_; }
  const std::vector<std::uint32_t>& alias() const noexcept { return alias_; }
  void assign(std::vector<double> prob, std::vector<std::uint32_t> alias) {
    weights_ = nullptr;
    prob_ = std::move(prob);
    alias_ = std::move(alias);
  }
  void swap(AliasTable& other) noexcept;

 private:
  std::vector<double> prob_;
  std::vector<std::uint32_t> alias_;
  // Build scratch, kept between builds so a rebuild every cycle allocates nothing.
  std::vector<double> scaled_;
  std::vector<std::uint32_t> small_, large_;
  // Stepped build position.
  const std::vector<double>* weights_ = nullptr;
  int phase_ = 0;        ///< 0 sum, 1 scale and partition, 2 pair, 3 leftovers
  std::size_t pos_ = 0;  ///< next index of the phase's pass
  double total_ = 0.0;
};

}  // namespace freshrec::stream
