#pragma once
/// The dead-letter file: one JSON line per bad input line,
///   {"line": N, "offset": B, "reason": "…", "raw": "…"}
/// appended, buffered in host memory and made durable at every checkpoint, so that the
/// file and the checkpoint agree: a restart truncates it back to the size the
/// checkpoint recorded, and no dead letter is lost or written twice.
///
/// A failing file (full disk, read-only or missing directory, EIO) never stops the
/// caller: nothing here throws. A failed open / write / fdatasync / ftruncate starts a
/// failure episode (failing(), last_error(), failures()); the lines stay buffered (up to
/// kMaxPendingBytes, then new ones are dropped and counted) and the write is retried at
/// most once every kRetrySeconds by write()/flush(), and at every sync() and truncate_to().
/// The first attempt that succeeds ends the episode and appends what was buffered. The
/// file only ever holds whole lines: a write cut short by a full disk is truncated back to
/// its last complete line.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace freshrec {

class DeadLetterWriter {
 public:
  /// Bytes of dead letters held in memory while the file cannot be written; beyond that,
  /// new dead letters are dropped (counted in unwritten()).
  static constexpr std::size_t kMaxPendingBytes = std::size_t{4} << 20;
  /// While failing, write()/flush() retry at most this often (sync() always tries).
  static constexpr double kRetrySeconds = 1.0;

  /// Opens (creating) `path` for appending; an empty path only counts. `max_raw_bytes`
  /// bounds the copy of the bad line (cut at a UTF-8 character boundary, "truncated":
  /// true added). When `path` cannot be opened the writer starts failing (see failing())
  /// and retries the open later; it does not throw.
  DeadLetterWriter(std::string path, std::size_t max_raw_bytes);
  ~DeadLetterWriter();  ///< writes what it can; never throws
  DeadLetterWriter(const DeadLetterWriter&) = delete;
  DeadLetterWriter& operator=(const DeadLetterWriter&) = delete;

  /// Records one bad line: `line` is its 1-based number, `offset` its byte offset in the
  /// source, `reason` why it was refused, `raw` its text (any bytes). Counted even when
  /// the file cannot take it.
  void write(std::uint64_t line, std::uint64_t offset, std::string_view reason, std::string_view raw);
  /// Writes the buffered lines to the file (no fsync). While failing, at most one attempt
  /// every kRetrySeconds.
  void flush();
  /// Writes the buffered lines (always attempted, even while failing) and fdatasyncs.
  /// Returns the bytes of the file known to be durable: whole lines only, never what is
  /// still buffered nor what was written but could not be synced. This is what a
  /// checkpoint may record.
  std::uint64_t sync();
  /// Cuts the file back to `size` bytes (restart from a checkpoint that recorded it).
  /// Returns false when the file is shorter than that (someone removed lines). Call it
  /// before any write(). When the file cannot be opened or cut now, the cut is done before
  /// the next successful append (so lines past the checkpoint are never kept twice).
  bool truncate_to(std::uint64_t size);
  /// Bytes in the file including what is still buffered.
  std::uint64_t size() const noexcept { return file_size_ + pending_.size(); }
  /// Dead letters written through this object (including those the file could not take).
  std::uint64_t count() const noexcept { return count_; }
  const std::string& path() const noexcept { return path_; }

  /// True while the latest open/write/sync attempt failed.
  bool failing() const noexcept { return failing_; }
  /// Failed open / write / fdatasync / ftruncate attempts so far.
  std::uint64_t failures() const noexcept { return failures_; }
  /// "<path>: <operation>: <strerror>" of the latest failure ("" before any).
  const std::string& last_error() const noexcept { return last_error_; }
  /// Dead letters counted but not in the file: still buffered, or dropped because the
  /// buffer was full while the file could not be written.
  std::uint64_t unwritten() const noexcept { return dropped_ + pending_lines_; }

 private:
  /// One attempt to (re)open, apply a deferred cut and write pending_; `force` ignores the
  /// retry interval. Returns true when nothing is left pending.
  bool attempt(bool force);
  bool open_file();
  bool apply_truncate();
  void fail(const char* operation, int err);
  void succeed() noexcept { failing_ = false; }

  std::string path_;
  std::size_t max_raw_;
  int fd_ = -1;
  bool regular_ = true;            // a regular file (fdatasync and ftruncate apply); not /dev/full
  std::uint64_t file_size_ = 0;    // bytes of whole lines in the file
  std::uint64_t durable_size_ = 0; // of those, fdatasync'ed (or there at open)
  std::optional<std::uint64_t> truncate_pending_;  // a cut to apply before the next append
  std::uint64_t count_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t pending_lines_ = 0;
  std::string pending_;
  bool failing_ = false;
  std::uint64_t failures_ = 0;
  std::string last_error_;
  double next_retry_ = 0.0;  // steady seconds
};

/// The JSON line (with '\n') that DeadLetterWriter writes for one bad line; invalid
/// UTF-8 in `raw` is replaced by U+FFFD so the dead-letter file is always valid JSON.
std::string format_dead_letter(std::uint64_t line, std::uint64_t offset, std::string_view reason,
                               std::string_view raw, std::size_t max_raw_bytes);

}  // namespace freshrec
