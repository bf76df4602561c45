#pragma once
/// Event sources of the streaming updater: an interface handing out NDJSON lines with a
/// resumable offset, and its file / followed-file / stdin implementations. The
/// integration issue adds Kafka and HTTP behind the same interface.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace freshrec {

/// Where a source stands: enough to reopen it and continue right after the last line
/// handed out. Stored in every checkpoint, in the same file as the engine state.
struct SourceOffset {
  std::uint64_t byte_offset = 0;        ///< bytes of the current file consumed, through the last line's '\n'
  std::uint64_t line = 0;               ///< 1-based number (in the current file) of the last line handed out
  std::uint64_t device = 0;             ///< st_dev of the current file (0: not a file)
  std::uint64_t inode = 0;              ///< st_ino of the current file (0: not a file)
  std::string fingerprint;              ///< sha256 hex of the file's first fingerprint_bytes bytes
  std::uint64_t fingerprint_bytes = 0;  ///< min(byte_offset, kFingerprintBytes)
  /// Partitioned sources (Kafka): "topic/partition" -> the next offset to read, for the
  /// partitions this process owns. Empty for files.
  std::map<std::string, std::int64_t> partitions;
};

/// Bytes hashed into SourceOffset::fingerprint: identifies a file copied or restored
/// under a new inode, as log shippers do.
inline constexpr std::uint64_t kFingerprintBytes = 1024;

/// One line handed out by a source. `text` excludes the '\n' (and a trailing '\r') and
/// is followed by at least kSourcePadding readable bytes (simdjson parses it in place);
/// it stays valid until the next call to next().
struct SourceLine {
  std::string_view text;
  std::uint64_t line = 0;         ///< 1-based line number in the current file
  std::uint64_t byte_offset = 0;  ///< where the line starts in the current file
  bool truncated = false;         ///< longer than the source's max line bytes: `text` is its head
};

/// Readable bytes guaranteed behind every SourceLine::text (= kNdjsonPadding).
inline constexpr std::size_t kSourcePadding = 64;

/// What next() found.
enum class SourceStatus : std::uint8_t {
  kLine = 0,  ///< `out` holds a line
  kIdle = 1,  ///< nothing now (followed file not grown, read interrupted); poll again later
  kEnd = 2,   ///< the source is exhausted (file/stdin at EOF); nothing will come again
};

/// A stream of NDJSON lines with a resumable position. Single consumer.
class EventSource {
 public:
  virtual ~EventSource() = default;
  /// The next complete line, or why there is none. Throws IoError on a read failure.
  virtual SourceStatus next(SourceLine& out) = 0;
  /// The position just after the last line handed out (what a checkpoint stores).
  virtual SourceOffset offset() const = 0;
  /// Moves to `offset` (call before the first next()). Returns "" when resumed exactly,
  /// otherwise a warning saying what was done instead (e.g. a rotated file restarted at
  /// 0). Throws InputError when resuming is impossible and guessing would be wrong.
  virtual std::string seek(const SourceOffset& offset) = 0;
  /// Human-readable name ("file events.ndjson", "stdin").
  virtual std::string describe() const = 0;

  /// Blocks up to `timeout_ms` for new data after next() returned kIdle. The default
  /// sleeps and returns false; sources that can be woken (HTTP journal, Kafka) return
  /// true as soon as data may be there, which keeps event → visible latency low.
  virtual bool wait(int timeout_ms);
  /// Called after a checkpoint holding `written` is durable (Kafka commits its offsets
  /// here, never earlier). Default: nothing.
  virtual void on_checkpoint(const SourceOffset& written) {}
  /// Gives the source a way to ask for a checkpoint right now, from inside next() or
  /// wait() (Kafka: before partitions are given up in a rebalance). Default: unused.
  virtual void set_checkpoint_request(std::function<void()> request) {}
  /// Every line already in the source was acknowledged to whoever sent it (the HTTP
  /// journal: a 200 went out after the fsync), so a stopping updater applies what is there
  /// before its final checkpoint. Other sources keep their backlog for the next run (a
  /// file or Kafka backlog can be long). Default: false.
  virtual bool backlog_acknowledged() const { return false; }
};

/// An NDJSON file read once, start to end (replays, --until-eof). Throws InputError
/// naming the path when it cannot be opened.
std::unique_ptr<EventSource> open_file_source(const std::string& path, std::size_t max_line_bytes = std::size_t{1} << 20);

/// An NDJSON file followed as it grows, like `tail -F`: waits for it to appear; when the
/// path names a new inode (rotation) it finishes the old file and continues with the
/// new one from byte 0; when the file shrinks below what was read (truncation) it starts
/// again at 0. next() never sleeps: it returns kIdle and the caller polls.
std::unique_ptr<EventSource> open_follow_source(const std::string& path, std::size_t max_line_bytes = std::size_t{1} << 20);

/// Standard input (fd 0) to its EOF. Resumes by lseek when stdin is a regular file;
/// a pipe cannot be rewound, so seek() then warns and continues where the pipe stands.
std::unique_ptr<EventSource> open_stdin_source(std::size_t max_line_bytes = std::size_t{1} << 20);

}  // namespace freshrec
