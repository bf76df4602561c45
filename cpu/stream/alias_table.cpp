#include "cpu/stream/alias_table.hpp"

#include <utility>

#include "cpu/util/error.hpp"

namespace freshrec::stream {

void AliasTable::build(const std::vector<double>& weights) {
  begin_build(weights);
  while (!build_step(static_cast<std::size_t>(-1))) {
  }
}

void AliasTable::begin_build(const std::vector<double>& weights) {
  weights_ = &weights;
  phase_ = 0;
  pos_ = 0;
  total_ = 0.0;
  const std::size_t n = weights.size();
  // Sized only: every entry is written by the passes (O(n) work belongs in the steps).
  prob_.resize(n);
  alias_.resize(n);
  scaled_.resize(n);
  small_.clear();
  large_.clear();
  small_.reserve(n);
  large_.reserve(n);
}

bool AliasTable::build_step(std::size_t budget) {
  if (!weights_) return true;
  const std::vector<double>& w = *weights_;
  const std::size_t n = w.size();
  while (budget > 0) {
    if (phase_ == 0) {  // total, in index order
      const std::size_t end = pos_ + std::min(budget, n - pos_);
      budget -= end - pos_;
      for (; pos_ < end; ++pos_) total_ += w[pos_];
      if (pos_ == n) {
        if (n == 0) break;
        FRESHREC_ASSERT(total_ > 0.0);
        phase_ = 1;
        pos_ = 0;
      }
    } else if (phase_ == 1) {  // scale to mean 1 and split into small / large
      const std::size_t end = pos_ + std::min(budget, n - pos_);
      budget -= end - pos_;
      for (; pos_ < end; ++pos_) {
        scaled_[pos_] = w[pos_] * static_cast<double>(n) / total_;
        prob_[pos_] = 1.0;
        alias_[pos_] = static_cast<std::uint32_t>(pos_);
        (scaled_[pos_] < 1.0 ? small_ : large_).push_back(static_cast<std::uint32_t>(pos_));
      }
      if (pos_ == n) phase_ = 2;
    } else if (phase_ == 2) {  // pair each small entry with a large one
      for (; budget > 0 && !small_.empty() && !large_.empty(); --budget) {
        const std::uint32_t s = small_.back();
        small_.pop_back();
        const std::uint32_t l = large_.back();
        prob_[s] = scaled_[s];
        alias_[s] = l;
        scaled_[l] = (scaled_[l] + scaled_[s]) - 1.0;
        if (scaled_[l] < 1.0) {
          large_.pop_back();
          small_.push_back(l);
        }
      }
      if (small_.empty() || large_.empty()) phase_ = 3;
    } else {  // whatever is left is 1 up to rounding: it keeps itself
      for (; budget > 0 && !small_.empty(); --budget) {
        prob_[small_.back()] = 1.0;
        small_.pop_back();
      }
      for (; budget > 0 && !large_.empty(); --budget) {
        prob_[large_.back()] = 1.0;
        large_.pop_back();
      }
      if (small_.empty() && large_.empty()) break;
    }
  }
  const bool done = n == 0 || (phase_ == 3 && small_.empty() && large_.empty());
  if (done) weights_ = nullptr;
  return done;
}

void AliasTable::swap(AliasTable& other) noexcept {
  prob_.swap(other.prob_);
  alias_.swap(other.alias_);
  scaled_.swap(other.scaled_);
  small_.swap(other.small_);
  large_.swap(other.large_);
  std::swap(weights_, other.weights_);
  std::swap(phase_, other.phase_);
  std::swap(pos_, other.pos_);
  std::swap(total_, other.total_);
}

}  // namespace freshrec::stream
