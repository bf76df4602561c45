// The file, followed-file and stdin sources.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/stream/source.hpp"
#include "cpu/stream/source_line_buffer.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/sha256.hpp"

namespace freshrec {
namespace {

std::string errno_text() { return std::strerror(errno); }

// sha256 of the first `bytes` bytes of `fd` (pread: the read position is untouched);
// "" when the file is shorter than that.
std::string fingerprint_of(int fd, std::uint64_t bytes) {
  std::string head(bytes, '\0');
  std::uint64_t got = 0;
  while (got < bytes) {
    const ssize_t n = ::pread(fd, head.data() + got, bytes - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("source fingerprint: pread: " + errno_text());
    if (n == 0) return "";
    got += static_cast<std::uint64_t>(n);
  }
  return sha256_hex(head);
}

// Records in `o` the hash of the file's first bytes (up to what was consumed). Those bytes
// never change while we read the file, so a full-length hash is computed once into `cache`.
void fill_fingerprint(int fd, SourceOffset& o, std::string& cache) {
  o.fingerprint_bytes = std::min<std::uint64_t>(o.byte_offset, kFingerprintBytes);
  if (o.fingerprint_bytes == kFingerprintBytes && !cache.empty()) {
    o.fingerprint = cache;
  } else {
    o.fingerprint = fingerprint_of(fd, o.fingerprint_bytes);
    if (o.fingerprint_bytes == kFingerprintBytes) cache = o.fingerprint;
  }
}

// Whether `fd` (fstat'ed as `st`) holds the stream `offset` was taken on. When the
// checkpoint recorded the file's first bytes they decide, even for the same inode: a file
// truncated and rewritten in place (copytruncate while we were down) keeps its inode, and
// resuming it at the old offset would start in the middle of a line. A fingerprint length
// offset() never writes is not trusted (nor used as an allocation size).
bool same_stream(int fd, const struct stat& st, const SourceOffset& offset) {
  const bool same_inode = static_cast<std::uint64_t>(st.st_ino) == offset.inode &&
                          static_cast<std::uint64_t>(st.st_dev) == offset.device;
  if (offset.fingerprint_bytes == 0 || offset.fingerprint.empty()) return same_inode;
  if (offset.fingerprint_bytes > kFingerprintBytes || offset.fingerprint_bytes > offset.byte_offset) return false;
  return fingerprint_of(fd, offset.fingerprint_bytes) == offset.fingerprint;
}

class FileSource final : public EventSource {
 public:
  FileSource(std::string path, bool follow, std::size_t max_line_bytes)
      : path_(std::move(path)), follow_(follow), buffer_(std::size_t{1} << 20, max_line_bytes) {
    if (!try_open()) {
      if (!follow_) throw InputError(path_ + ": cannot open event source: " + errno_text());
    }
  }
  ~FileSource() override {
    if (fd_ >= 0) ::close(fd_);
  }

  SourceStatus next(SourceLine& out) override {
    if (fd_ < 0 && !try_open()) return SourceStatus::kIdle;
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool eof = false;
      if (buffer_.next(fd_, !follow_, out, &eof) == SourceStatus::kLine) return SourceStatus::kLine;
      if (!eof) return SourceStatus::kIdle;  // interrupted: let the caller look at its stop flag
      if (!follow_) return SourceStatus::kEnd;
      struct stat st {};
      if (::stat(path_.c_str(), &st) != 0) return SourceStatus::kIdle;  // mid-rotation: keep the old file
      if (static_cast<std::uint64_t>(st.st_ino) != inode_ || static_cast<std::uint64_t>(st.st_dev) != device_) {
        // Rotated. A writer may still have appended to the old file between our EOF and
        // the rename, so read it to EOF once more before leaving it.
        if (attempt == 0) continue;
        const bool flushed = buffer_.flush_partial(out);
        switch_to_new_file();
        if (flushed) return SourceStatus::kLine;
        bool eof2 = false;
        return buffer_.next(fd_, false, out, &eof2) == SourceStatus::kLine ? SourceStatus::kLine
                                                                           : SourceStatus::kIdle;
      }
      if (static_cast<std::uint64_t>(st.st_size) < buffer_.read_position()) {
        // Truncated in place (copytruncate rotation): everything in it is new.
        if (::lseek(fd_, 0, SEEK_SET) < 0) throw IoError(path_ + ": lseek: " + errno_text());
        buffer_.reset(0, 0);
        fingerprint_.clear();
      }
      return SourceStatus::kIdle;
    }
    return SourceStatus::kIdle;
  }

  SourceOffset offset() const override {
    SourceOffset o;
    o.byte_offset = buffer_.consumed();
    o.line = buffer_.line();
    o.device = device_;
    o.inode = inode_;
    if (fd_ >= 0) fill_fingerprint(fd_, o, fingerprint_);
    return o;
  }

  std::string seek(const SourceOffset& offset) override {
    if (offset.byte_offset == 0 && offset.line == 0) return "";
    if (fd_ < 0) {
      return path_ + ": does not exist yet; the checkpoint was " + std::to_string(offset.byte_offset) +
             " bytes into an earlier file, which is gone: reading the new file from byte 0";
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw IoError(path_ + ": fstat: " + errno_text());
    const bool same = same_stream(fd_, st, offset);
    const bool long_enough = static_cast<std::uint64_t>(st.st_size) >= offset.byte_offset;
    if (same && long_enough) {
      if (::lseek(fd_, static_cast<off_t>(offset.byte_offset), SEEK_SET) < 0)
        throw IoError(path_ + ": lseek: " + errno_text());
      buffer_.reset(offset.byte_offset, offset.line);
      return "";
    }
    const std::string what = path_ + ": not the file the checkpoint was reading (checkpoint: inode " +
                             std::to_string(offset.inode) + ", " + std::to_string(offset.byte_offset) +
                             " bytes consumed; now: inode " + std::to_string(st.st_ino) + ", " +
                             std::to_string(st.st_size) + " bytes" + (same ? ", same first bytes" : "") + ")";
    if (!follow_) throw InputError(what + "; refusing to guess where to resume");
    return what + "; rotated while we were down: reading it from byte 0";
  }

  std::string describe() const override { return (follow_ ? "followed file " : "file ") + path_; }

 private:
  bool try_open() {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      const int saved = errno;
      ::close(fd);
      if (!follow_) throw InputError(path_ + ": event source is not a regular file");
      errno = saved;
      return false;
    }
    fd_ = fd;
    device_ = static_cast<std::uint64_t>(st.st_dev);
    inode_ = static_cast<std::uint64_t>(st.st_ino);
    fingerprint_.clear();
    return true;
  }

  void switch_to_new_file() {
    ::close(fd_);
    fd_ = -1;
    device_ = inode_ = 0;
    buffer_.reset(0, 0);
    try_open();
  }

  std::string path_;
  bool follow_;
  int fd_ = -1;
  std::uint64_t device_ = 0;
  std::uint64_t inode_ = 0;
  LineBuffer buffer_;
  mutable std::string fingerprint_;
};

class StdinSource final : public EventSource {
 public:
  explicit StdinSource(std::size_t max_line_bytes) : buffer_(std::size_t{1} << 16, max_line_bytes) {
    struct stat st {};
    if (::fstat(0, &st) == 0 && S_ISREG(st.st_mode)) {
      regular_ = true;
      device_ = static_cast<std::uint64_t>(st.st_dev);
      inode_ = static_cast<std::uint64_t>(st.st_ino);
    }
  }

  SourceStatus next(SourceLine& out) override {
    bool eof = false;
    if (buffer_.next(0, true, out, &eof) == SourceStatus::kLine) return SourceStatus::kLine;
    return eof ? SourceStatus::kEnd : SourceStatus::kIdle;
  }

  SourceOffset offset() const override {
    SourceOffset o;
    o.byte_offset = buffer_.consumed();
    o.line = buffer_.line();
    o.device = device_;
    o.inode = inode_;
    if (regular_) fill_fingerprint(0, o, fingerprint_);  // identifies the file on resume
    return o;
  }

  std::string seek(const SourceOffset& offset) override {
    if (offset.byte_offset == 0 && offset.line == 0) return "";
    if (regular_) {
      // A blind lseek would "resume" past the end of a shorter file (reading nothing) or in
      // the middle of a line of another one: refused, as the file source does.
      struct stat st {};
      if (::fstat(0, &st) != 0) throw IoError("stdin: fstat: " + errno_text());
      const bool same = offset.inode == 0 || same_stream(0, st, offset);  // 0: taken on a pipe
      if (!same || static_cast<std::uint64_t>(st.st_size) < offset.byte_offset)
        throw InputError("stdin: not the file the checkpoint was reading (checkpoint: inode " +
                         std::to_string(offset.inode) + ", " + std::to_string(offset.byte_offset) +
                         " bytes consumed; now: inode " + std::to_string(st.st_ino) + ", " +
                         std::to_string(st.st_size) + " bytes); refusing to guess where to resume");
    }
    if (regular_ && ::lseek(0, static_cast<off_t>(offset.byte_offset), SEEK_SET) >= 0) {
      buffer_.reset(offset.byte_offset, offset.line);
      return "";
    }
    return "stdin is a pipe and cannot be rewound to byte " + std::to_string(offset.byte_offset) +
           " of the checkpoint: continuing with whatever it delivers next";
  }

  std::string describe() const override { return "stdin"; }

 private:
  LineBuffer buffer_;
  bool regular_ = false;
  std::uint64_t device_ = 0;
  std::uint64_t inode_ = 0;
  mutable std::string fingerprint_;
};

}  // namespace

std::unique_ptr<EventSource> open_file_source(const std::string& path, std::size_t max_line_bytes) {
  return std::make_unique<FileSource>(path, false, max_line_bytes);
}

std::unique_ptr<EventSource> open_follow_source(const std::string& path, std::size_t max_line_bytes) {
  return std::make_unique<FileSource>(path, true, max_line_bytes);
}

std::unique_ptr<EventSource> open_stdin_source(std::size_t max_line_bytes) {
  return std::make_unique<StdinSource>(max_line_bytes);
}

}  // namespace freshrec
