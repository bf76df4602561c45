#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace freshrec {

/// Reads a text file line by line through one reusable chunk buffer (host memory,
/// `chunk_bytes` plus the line that straddles a chunk boundary), so a multi-gigabyte log
/// costs a few megabytes and no allocation per line. Every line handed out is followed
/// by at least `padding` readable bytes inside the buffer, which lets simdjson parse it
/// in place. Move-only; closes the file on destruction.
class LineReader {
 public:
  /// Opens `path`; throws InputError naming the path when it is missing, not a regular
  /// file or unreadable.
  explicit LineReader(const std::string& path, std::size_t chunk_bytes = std::size_t{8} << 20,
                      std::size_t padding = 64);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  LineReader(LineReader&& other) noexcept;
  LineReader& operator=(LineReader&& other) noexcept;

  /// The next line without its '\n', a trailing '\r' and (first line) a UTF-8 byte order
  /// mark. The view stays valid until the next call. Returns false at the end of the file;
  /// throws IoError on a read failure.
  bool next(std::string_view& line);
  /// 1-based number of the line `next` returned last.
  std::size_t line_number() const noexcept { return line_number_; }
  /// Bytes that may be read starting at `p`, a pointer into the last line
  /// (>= the rest of the line plus `padding`).
  std::size_t readable_from(const char* p) const noexcept {
    return static_cast<std::size_t>(buffer_.get() + capacity_ + padding_ - p);
  }
  /// Size of the file in bytes when opened.
  std::uint64_t file_size() const noexcept { return file_size_; }
  /// Rough count of lines in the file, from the density of newlines in the first chunk
  /// (for reserving output arrays); 0 before the first `next`.
  std::size_t estimated_lines() const noexcept { return estimated_lines_; }

 private:
  bool refill();
  void close_file() noexcept;

  std::string path_;
  int fd_ = -1;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;  // usable bytes; `padding_` more are allocated behind them
  std::size_t padding_ = 0;
  std::size_t begin_ = 0;     // first unread byte
  std::size_t end_ = 0;       // one past the last valid byte
  bool eof_ = false;
  std::size_t line_number_ = 0;
  std::uint64_t file_size_ = 0;
  std::size_t estimated_lines_ = 0;
};

}  // namespace freshrec
