#include "cpu/stream/alias_table.hpp"

#include "cpu/util/error.hpp"

namespace freshrec::stream {

void AliasTable::build(const std::vector<double>& weights) {
  const std::size_t n = weights.size();
  prob_.assign(n, 1.0);
  alias_.resize(n);
  if (n == 0) return;
  double total = 0.0;
  for (double w : weights) total += w;
  FRESHREC_ASSERT(total > 0.0);
  std::vector<double> scaled(n);
  std::vector<std::uint32_t> small, large;
  small.reserve(n);
  large.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * static_cast<double>(n) / total;
    alias_[i] = static_cast<std::uint32_t>(i);
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const std::uint32_t s = small.back();
    small.pop_back();
    const std::uint32_t l = large.back();
    prob_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Whatever is left is 1 up to rounding: it keeps itself.
  for (std::uint32_t i : small) prob_[i] = 1.0;
  for (std::uint32_t i : large) prob_[i] = 1.0;
}

}  // namespace freshrec::stream
