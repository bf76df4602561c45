#pragma once
#include <cstdint>
#include <vector>

namespace freshrec::stream {

/// Sliding-window event counters for many rows (users or items) at once, in flat host
/// arrays: per row and window, kBuckets counters of width length/kBuckets plus the index
/// of the newest bucket. A count at time T covers the buckets whose index lies in
/// (floor(T/width) - kBuckets, floor(T/width)]: exact at bucket granularity, i.e. events
/// in (T - length, T] with both ends rounded down to a bucket boundary. Out-of-order
/// events land in their own bucket while it is still in the ring; older ones are dropped
/// (they are outside every window that can still be asked for at the watermark).
/// Memory: windows * (kBuckets * 4 + 8) bytes per row (3 windows: 216 bytes).
class WindowTable {
 public:
  static constexpr int kBuckets = 16;

  /// `lengths` in seconds, each > 0.
  explicit WindowTable(std::vector<double> lengths = {});
  int windows() const noexcept { return static_cast<int>(width_.size()); }
  std::size_t rows() const noexcept { return rows_; }
  /// Grows (new rows empty) or shrinks to `rows`.
  void resize(std::size_t rows);
  /// Reserves room for `rows` rows (no change in content).
  void reserve(std::size_t rows) {
    buckets_.reserve(rows * width_.size() * kBuckets);
    heads_.reserve(rows * width_.size());
  }
  /// Forgets everything in `row`.
  void clear_row(std::size_t row);
  /// Counts one event at time `t` (epoch seconds) in every window of `row`.
  void add(std::size_t row, double t);
  /// Starts loading `row`'s counters (a cache hint; changes nothing).
  void prefetch(std::size_t row) const noexcept {
    const std::size_t nw = width_.size();
    if (nw == 0) return;
    const char* b = reinterpret_cast<const char*>(&buckets_[row * nw * kBuckets]);
    for (std::size_t off = 0; off < nw * kBuckets * sizeof(std::uint32_t); off += 64) __builtin_prefetch(b + off);
    __builtin_prefetch(&heads_[row * nw]);
  }
  /// Events of `row` in window `w` as seen at time `t`.
  std::uint32_t count(std::size_t row, int w, double t) const;

  /// Raw arrays, for checkpoints (row-major: row, window, bucket).
  std::vector<std::uint32_t>& buckets() noexcept { return buckets_; }
  std::vector<std::int64_t>& heads() noexcept { return heads_; }
  const std::vector<std::uint32_t>& buckets() const noexcept { return buckets_; }
  const std::vector<std::int64_t>& heads() const noexcept { return heads_; }
  const std::vector<double>& lengths() const noexcept { return lengths_; }

 private:
  static constexpr std::int64_t kEmpty = INT64_MIN;
  std::vector<double> lengths_;
  std::vector<double> width_;
  std::size_t rows_ = 0;
  std::vector<std::uint32_t> buckets_;
  std::vector<std::int64_t> heads_;
};

}  // namespace freshrec::stream
