#pragma once
/// The line splitter shared by the file, followed-file and stdin sources.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/stream/source.hpp"

namespace freshrec {

/// Reads lines from a file descriptor through one growable buffer (host memory: the
/// chunk plus the longest line seen, capped by max_line_bytes). The common machinery of
/// the file, followed-file and stdin sources; not part of the public surface otherwise.
class LineBuffer {
 public:
  explicit LineBuffer(std::size_t chunk_bytes = std::size_t{1} << 20, std::size_t max_line_bytes = std::size_t{1} << 20);
  /// Forgets buffered bytes and positions the logical offset at `byte_offset`/`line`.
  void reset(std::uint64_t byte_offset, std::uint64_t line);
  /// Next complete line from `fd`. `at_eof_flush`: at EOF hand out a final line that has
  /// no '\n' (file/stdin); a followed file keeps it pending until its '\n' arrives.
  /// Returns kIdle on EOF without a line or on EINTR (the caller decides if EOF is the end).
  SourceStatus next(int fd, bool at_eof_flush, SourceLine& out, bool* hit_eof);
  /// Hands out whatever partial line is pending (rotation: the old file ends without '\n').
  bool flush_partial(SourceLine& out);
  /// Logical bytes consumed (through the last handed-out line) and its line number.
  std::uint64_t consumed() const noexcept { return consumed_; }
  std::uint64_t line() const noexcept { return line_; }
  /// Bytes read from the fd so far (consumed + buffered), i.e. the fd's file position.
  std::uint64_t read_position() const noexcept { return consumed_ + pending_bytes(); }

 private:
  std::uint64_t pending_bytes() const noexcept { return skipping_ ? skipped_ + (end_ - begin_) : end_ - begin_; }
  bool take_line(std::size_t newline, SourceLine& out);
  bool emit_skipped_tail(SourceLine& out);

  std::vector<char> buffer_;   // capacity_ usable bytes + kSourcePadding behind them
  std::size_t chunk_;
  std::size_t max_line_;
  std::size_t begin_ = 0, end_ = 0, scanned_ = 0;
  std::uint64_t consumed_ = 0;
  std::uint64_t line_ = 0;
  // A line over max_line_ bytes: its head is kept in head_, the rest is skipped to '\n'.
  bool skipping_ = false;
  std::uint64_t skipped_ = 0;
  std::string head_;
  std::uint64_t head_offset_ = 0;
};

}  // namespace freshrec
