#pragma once
#include <cstdint>
#include <vector>

#include "cpu/stream/rng.hpp"

namespace freshrec::stream {

/// Walker/Vose alias table: O(n) build, O(1) draw proportional to the build weights.
/// Host memory, 8 bytes per entry. Built deterministically (double arithmetic, fixed order).
class AliasTable {
 public:
  /// Rebuilds from non-negative `weights` (at least one positive); empty weights = empty table.
  void build(const std::vector<double>& weights);
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
    prob_ = std::move(prob);
    alias_ = std::move(alias);
  }

 private:
  std::vector<double> prob_;
  std::vector<std::uint32_t> alias_;
};

}  // namespace freshrec::stream
