#pragma once
/// The dead-letter file: one JSON line per bad input line,
///   {"line": N, "offset": B, "reason": "…", "raw": "…"}
/// appended, buffered in host memory and made durable at every checkpoint, so that the
/// file and the checkpoint agree: a restart truncates it back to the size the
/// checkpoint recorded, and no dead letter is lost or written twice.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace freshrec {

class DeadLetterWriter {
 public:
  /// Opens (creating) `path` for appending; an empty path only counts. `max_raw_bytes`
  /// bounds the copy of the bad line (cut at a UTF-8 character boundary, "truncated":
  /// true added). Throws IoError naming the path when it cannot be opened.
  DeadLetterWriter(std::string path, std::size_t max_raw_bytes);
  ~DeadLetterWriter();  ///< flushes what it can; never throws
  DeadLetterWriter(const DeadLetterWriter&) = delete;
  DeadLetterWriter& operator=(const DeadLetterWriter&) = delete;

  /// Records one bad line: `line` is its 1-based number, `offset` its byte offset in the
  /// source, `reason` why it was refused, `raw` its text (any bytes).
  void write(std::uint64_t line, std::uint64_t offset, std::string_view reason, std::string_view raw);
  /// Writes the buffered lines to the file (no fsync).
  void flush();
  /// flush() + fdatasync: everything written so far survives a crash. Returns the file size.
  std::uint64_t sync();
  /// Cuts the file back to `size` bytes (restart from a checkpoint that recorded it).
  /// Returns false when the file is shorter than that (someone removed lines).
  bool truncate_to(std::uint64_t size);
  /// Bytes in the file including what is still buffered.
  std::uint64_t size() const noexcept { return file_size_ + pending_.size(); }
  /// Dead letters written through this object.
  std::uint64_t count() const noexcept { return count_; }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  std::size_t max_raw_;
  int fd_ = -1;
  std::uint64_t file_size_ = 0;
  std::uint64_t count_ = 0;
  std::string pending_;
};

/// The JSON line (with '\n') that DeadLetterWriter writes for one bad line; invalid
/// UTF-8 in `raw` is replaced by U+FFFD so the dead-letter file is always valid JSON.
std::string format_dead_letter(std::uint64_t line, std::uint64_t offset, std::string_view reason,
                               std::string_view raw, std::size_t max_raw_bytes);

}  // namespace freshrec
