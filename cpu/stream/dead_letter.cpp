#include "cpu/stream/dead_letter.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace freshrec {
namespace {

// Largest prefix of `raw` of at most `max` bytes that does not split a UTF-8 sequence.
std::size_t utf8_cut(std::string_view raw, std::size_t max) {
  if (raw.size() <= max) return raw.size();
  std::size_t cut = max;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut character.
  while (cut > 0 && (static_cast<unsigned char>(raw[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

constexpr std::size_t kFlushBytes = 64 * 1024;

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string format_dead_letter(std::uint64_t line, std::uint64_t offset, std::string_view reason,
                               std::string_view raw, std::size_t max_raw_bytes) {
  const std::size_t keep = utf8_cut(raw, max_raw_bytes);
  nlohmann::json j;
  j["line"] = line;
  j["offset"] = offset;
  j["reason"] = std::string(reason);
  j["raw"] = std::string(raw.substr(0, keep));
  if (keep < raw.size()) {
    j["truncated"] = true;
    j["raw_bytes"] = raw.size();
  }
  std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

DeadLetterWriter::DeadLetterWriter(std::string path, std::size_t max_raw_bytes)
    : path_(std::move(path)), max_raw_(max_raw_bytes) {
  if (path_.empty()) return;
  open_file();  // a failure is recorded (failing()) and retried; it never stops the caller
}

DeadLetterWriter::~DeadLetterWriter() {
  attempt(/*force=*/true);  // the lines since the last checkpoint are re-derived on restart anyway
  if (fd_ >= 0) ::close(fd_);
}

void DeadLetterWriter::fail(const char* operation, int err) {
  ++failures_;
  failing_ = true;
  last_error_ = path_ + ": " + operation + ": " + std::strerror(err);
  next_retry_ = steady_seconds() + kRetrySeconds;
}

bool DeadLetterWriter::open_file() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    // What a checkpoint records meanwhile: the file as it is (a read-only file system
    // keeps it), or nothing when there is none.
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      file_size_ = durable_size_ = static_cast<std::uint64_t>(st.st_size);
    fail("cannot open dead-letter file", err);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("fstat", err);
    return false;
  }
  fd_ = fd;
  // /dev/full, a FIFO…: appended to, but there is no size to record, cut or sync.
  regular_ = S_ISREG(st.st_mode);
  file_size_ = durable_size_ = regular_ ? static_cast<std::uint64_t>(st.st_size) : 0;
  return true;
}

bool DeadLetterWriter::apply_truncate() {
  if (!truncate_pending_) return true;
  const std::uint64_t size = *truncate_pending_;
  if (regular_) {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      fail("fstat", errno);
      return false;
    }
    const auto actual = static_cast<std::uint64_t>(st.st_size);
    if (actual > size && ::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      fail("ftruncate", errno);
      return false;
    }
    file_size_ = std::min(actual, size);
    durable_size_ = std::min(durable_size_, file_size_);
  }
  truncate_pending_.reset();
  return true;
}

bool DeadLetterWriter::attempt(bool force) {
  if (path_.empty()) return true;
  if (failing_ && !force && steady_seconds() < next_retry_) return false;
  // Only an operation that really ran may end a failure episode.
  bool did = truncate_pending_.has_value() || !pending_.empty();
  if (fd_ < 0) {
    if (!open_file()) return false;
    did = true;
  }
  if (!apply_truncate()) return false;
  std::size_t done = 0;
  int err = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0) {
    if (regular_) file_size_ += done;
    pending_.clear();
    pending_lines_ = 0;
    if (did) failing_ = false;
    return true;
  }
  // Cut short (full disk): keep the whole lines that made it and cut the partial one
  // back, so the file only ever holds complete lines; the rest stays buffered.
  std::size_t keep = done;
  if (regular_) {
    const std::size_t nl = done == 0 ? std::string::npos : pending_.rfind('\n', done - 1);
    keep = nl == std::string::npos ? 0 : nl + 1;
    if (keep < done && ::ftruncate(fd_, static_cast<off_t>(file_size_ + keep)) != 0)
      truncate_pending_ = file_size_ + keep;  // cut before the next append
    file_size_ += keep;
  }
  const auto kept_end = pending_.begin() + static_cast<std::ptrdiff_t>(keep);
  pending_lines_ -= static_cast<std::uint64_t>(std::count(pending_.begin(), kept_end, '\n'));
  pending_.erase(0, keep);
  fail("write dead letters", err);
  return false;
}

void DeadLetterWriter::write(std::uint64_t line, std::uint64_t offset, std::string_view reason, std::string_view raw) {
  ++count_;
  if (path_.empty()) return;
  if (pending_.size() < kMaxPendingBytes) {
    pending_ += format_dead_letter(line, offset, reason, raw, max_raw_);
    ++pending_lines_;
  } else {
    ++dropped_;  // the file has been failing for a while: bounded memory wins
  }
  // While failing, every call may retry (attempt() keeps to kRetrySeconds).
  if (pending_.size() >= kFlushBytes || failing_) attempt(/*force=*/false);
}

void DeadLetterWriter::flush() { attempt(/*force=*/false); }

std::uint64_t DeadLetterWriter::sync() {
  if (path_.empty()) return 0;
  const bool written = attempt(/*force=*/true);
  // Even when the last lines could not be written, what was written is made durable.
  if (fd_ >= 0 && regular_ && !truncate_pending_) {
    if (::fdatasync(fd_) != 0) {
      fail("fdatasync", errno);
    } else {
      durable_size_ = file_size_;
      if (written) failing_ = false;
    }
  }
  return durable_size_;
}

bool DeadLetterWriter::truncate_to(std::uint64_t size) {
  if (path_.empty()) return true;
  if (fd_ < 0 && !open_file()) {
    // Cut once the file can be opened; nothing is appended before that.
    if (file_size_ < size) return false;
    truncate_pending_ = size;
    file_size_ = size;
    durable_size_ = std::min(durable_size_, size);
    return true;
  }
  attempt(/*force=*/true);  // the cut sees file and buffer as one
  if (!pending_.empty()) {
    if (size >= file_size_) {
      if (size > file_size_ + pending_.size()) return false;
      pending_.resize(static_cast<std::size_t>(size - file_size_));
      pending_lines_ = static_cast<std::uint64_t>(std::count(pending_.begin(), pending_.end(), '\n'));
      return true;
    }
    pending_.clear();
    pending_lines_ = 0;
  }
  if (!regular_) return size == 0;
  if (file_size_ < size) return false;
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    fail("ftruncate", errno);
    truncate_pending_ = size;
  }
  file_size_ = size;
  durable_size_ = std::min(durable_size_, size);
  return true;
}

}  // namespace freshrec
