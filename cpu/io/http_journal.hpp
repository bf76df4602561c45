#pragma once
/// The durable hand-off between POST /v1/events and the updater (source.type: http).
///
/// An HTTP request's accepted lines are appended to one journal file and fdatasync'ed
/// before the request is answered 200, so an acknowledged event is on disk. The updater
/// reads the journal as a followed file (open_follow_source): its checkpoints store the
/// journal's byte offset, inode and fingerprint like for any file, so after a crash the
/// restart resumes right after the last checkpointed line and re-applies everything the
/// journal holds beyond it — an acknowledged event is applied exactly once. The journal is
/// never rewritten; rotate it only while the updater is stopped (or accept the follow
/// source's rotation rules: the old file is finished first).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "cpu/stream/source.hpp"

namespace freshrec {

/// Appends NDJSON lines durably and wakes the reader. Thread-safe (many HTTP workers).
class HttpJournal {
 public:
  /// Opens (creating) `path` for appending. Throws IoError naming the path.
  explicit HttpJournal(std::string path);
  ~HttpJournal();
  HttpJournal(const HttpJournal&) = delete;
  HttpJournal& operator=(const HttpJournal&) = delete;

  /// Appends `lines` (complete lines, each ending in '\n') in one write and fdatasyncs;
  /// returns once they are durable. Concurrent appends never interleave within a call.
  /// Throws IoError on a write or sync failure (the caller answers 5xx).
  void append(std::string_view lines);
  /// Blocks up to `timeout_ms` until an append newer than `seen` happened; returns the
  /// current append count (compare with `seen` to know whether anything came).
  std::uint64_t wait_for_append(std::uint64_t seen, int timeout_ms);
  /// Appends so far (monotonic). Lock-free: the updater reads it before every line, and
  /// must not queue behind an append's fdatasync (milliseconds) to do so.
  std::uint64_t appends() const noexcept { return appends_.load(std::memory_order_acquire); }
  /// Bytes of the journal file the reader has not consumed yet (the file's size at open plus
  /// this process's appends, minus the reader's position; 0 when it is at the end).
  std::uint64_t backlog_bytes() const noexcept {
    const std::uint64_t end = end_bytes_.load(std::memory_order_acquire);
    const std::uint64_t read = read_bytes_.load(std::memory_order_acquire);
    return end > read ? end - read : 0;
  }
  /// The reader's position in the file (bytes consumed), for backlog_bytes().
  void note_read(std::uint64_t byte_offset) noexcept { read_bytes_.store(byte_offset, std::memory_order_release); }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  mutable std::mutex mutex_;
  std::condition_variable appended_;
  /// Written under mutex_ (so wait_for_append's predicate cannot miss a wake-up), read without.
  std::atomic<std::uint64_t> appends_{0};
  std::atomic<std::uint64_t> end_bytes_{0};   ///< file size: at open, then + each append
  std::atomic<std::uint64_t> read_bytes_{0};  ///< the reader's byte offset
};

/// The updater's side: a followed-file source on the journal whose wait() wakes on an
/// append instead of sleeping through the poll interval.
std::unique_ptr<EventSource> open_journal_source(std::shared_ptr<HttpJournal> journal, std::size_t max_line_bytes);

}  // namespace freshrec
