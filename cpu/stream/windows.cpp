#include "cpu/stream/windows.hpp"

#include <algorithm>
#include <cmath>

#include "cpu/util/error.hpp"

namespace freshrec::stream {

WindowTable::WindowTable(std::vector<double> lengths) : lengths_(std::move(lengths)) {
  for (double len : lengths_) {
    FRESHREC_ASSERT(len > 0.0);
    width_.push_back(len / kBuckets);
  }
}

void WindowTable::resize(std::size_t rows) {
  const std::size_t w = width_.size();
  buckets_.resize(rows * w * kBuckets, 0u);
  heads_.resize(rows * w, kEmpty);
  rows_ = rows;
}

void WindowTable::clear_row(std::size_t row) {
  const std::size_t w = width_.size();
  std::fill_n(buckets_.begin() + row * w * kBuckets, w * kBuckets, 0u);
  std::fill_n(heads_.begin() + row * w, w, kEmpty);
}

namespace {
inline std::int64_t bucket_index(double t, double width) {
  // Event times are range-checked, but a request time (score, recommend's trending term) may
  // be any double: beyond +-2^62 buckets (or NaN) it is clamped, far from every event's bucket,
  // so a count there is 0 and the int64 arithmetic around it cannot overflow.
  constexpr double kLimit = 0x1p62;
  const double x = std::floor(t / width);
  if (!(x > -kLimit)) return -static_cast<std::int64_t>(kLimit);
  if (!(x < kLimit)) return static_cast<std::int64_t>(kLimit);
  return static_cast<std::int64_t>(x);
}
inline std::size_t slot_of(std::int64_t idx) {
  // Non-negative modulo, so negative epoch times work too.
  const std::int64_t m = idx % WindowTable::kBuckets;
  return static_cast<std::size_t>(m < 0 ? m + WindowTable::kBuckets : m);
}
}  // namespace

void WindowTable::add(std::size_t row, double t) {
  const std::size_t nw = width_.size();
  for (std::size_t w = 0; w < nw; ++w) {
    std::uint32_t* b = &buckets_[(row * nw + w) * kBuckets];
    std::int64_t& head = heads_[row * nw + w];
    const std::int64_t idx = bucket_index(t, width_[w]);
    if (head == kEmpty || idx - head >= kBuckets) {
      std::fill_n(b, kBuckets, 0u);
      head = idx;
    } else if (idx > head) {
      for (std::int64_t j = head + 1; j <= idx; ++j) b[slot_of(j)] = 0u;
      head = idx;
    } else if (idx <= head - kBuckets) {
      continue;  // older than the ring: outside every window still answerable
    }
    ++b[slot_of(idx)];
  }
}

std::uint32_t WindowTable::count(std::size_t row, int w, double t) const {
  const std::size_t nw = width_.size();
  const std::int64_t head = heads_[row * nw + w];
  if (head == kEmpty) return 0;
  const std::uint32_t* b = &buckets_[(row * nw + w) * kBuckets];
  const std::int64_t q = bucket_index(t, width_[w]);
  const std::int64_t hi = std::min(q, head);
  const std::int64_t lo = std::max(q - kBuckets + 1, head - kBuckets + 1);
  std::uint32_t total = 0;
  for (std::int64_t j = lo; j <= hi; ++j) total += b[slot_of(j)];
  return total;
}

}  // namespace freshrec::stream
