#include "cpu/util/fs.hpp"

#include <fcntl.h>
#include <stdio.h>  // renameat2 (glibc >= 2.28, _GNU_SOURCE)
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int err) {
  throw IoError(path + ": " + what + " failed: " + std::strerror(err));
}

bool exists_no_follow(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Not every file system implements renameat2 flags (EINVAL), and old kernels lack the
// call (ENOSYS); those fall back to the portable sequence.
bool flags_unsupported(int err) { return err == EINVAL || err == ENOSYS || err == ENOTSUP; }

}  // namespace

DurableFile::DurableFile(const std::string& path, bool exclusive) : path_(path) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
  fd_ = ::open(path.c_str(), flags, 0644);
  if (fd_ < 0) throw_errno("open for writing", path, errno);
}

DurableFile::~DurableFile() {
  if (fd_ >= 0) ::close(fd_);
}

DurableFile::DurableFile(DurableFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), bytes_(other.bytes_) {}

DurableFile& DurableFile::operator=(DurableFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    bytes_ = other.bytes_;
  }
  return *this;
}

void DurableFile::write(const void* data, std::size_t size) {
  if (fd_ < 0) throw IoError(path_ + ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    // Linux writes at most ~2 GiB per call; chunk so huge arrays go through.
    const std::size_t chunk = size < (std::size_t{1} << 30) ? size : (std::size_t{1} << 30);
    const ssize_t n = ::write(fd_, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write", path_, errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    bytes_ += static_cast<std::uint64_t>(n);
  }
}

void DurableFile::commit() {
  if (fd_ < 0) throw IoError(path_ + ": commit twice");
  if (::fsync(fd_) != 0) throw_errno("fsync", path_, errno);
  const int fd = std::exchange(fd_, -1);
  // close() can report a deferred write error (NFS); treat it as a failed write.
  if (::close(fd) != 0) throw_errno("close", path_, errno);
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open directory", dir, errno);
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    // Some file systems cannot fsync a directory at all; nothing more can be done there.
    if (err == EINVAL || err == ENOTSUP) return;
    throw_errno("fsync directory", dir, err);
  }
  ::close(fd);
}

void write_file_durable(const std::string& path, std::string_view contents) {
  DurableFile f(path, /*exclusive=*/true);
  f.write(contents);
  f.commit();
}

void replace_file_atomic(const std::string& path, std::string_view contents) {
  // Hidden, so that nobody listing the directory mistakes it for a real entry.
  const std::string tmp = join_path(parent_directory(path),
                                    "." + std::filesystem::path(path).filename().string() + ".tmp-" +
                                        std::to_string(::getpid()));
  // A leftover from a crashed process with the same pid would make O_EXCL fail.
  ::unlink(tmp.c_str());
  try {
    write_file_durable(tmp, contents);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename from " + tmp, path, errno);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_directory(parent_directory(path));
}

bool rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
    return true;
  const int err = errno;
  if (err == EEXIST) return false;
  if (!flags_unsupported(err)) throw_errno("rename from " + from, to, err);
  // Fallback: racy between the check and the rename, and rename(2) would silently
  // replace an empty directory, hence the explicit check.
  if (exists_no_follow(to)) return false;
  if (::rename(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) return false;
    throw_errno("rename from " + from, to, errno);
  }
  return true;
}

void exchange_paths(const std::string& a, const std::string& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) return;
  const int err = errno;
  if (!flags_unsupported(err)) throw_errno("exchange with " + a, b, err);
  const std::string aside = b + ".aside-" + std::to_string(::getpid());
  if (::rename(b.c_str(), aside.c_str()) != 0) throw_errno("rename to " + aside, b, errno);
  if (::rename(a.c_str(), b.c_str()) != 0) {
    const int e = errno;
    ::rename(aside.c_str(), b.c_str());  // best effort: put the original back
    throw_errno("rename from " + a, b, e);
  }
  if (::rename(aside.c_str(), a.c_str()) != 0) throw_errno("rename from " + aside, a, errno);
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open for reading", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno("stat", path, err);
  }
  std::string out;
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  // The size is a hint: keep reading to EOF in case the file changed under us.
  for (;;) {
    if (got == out.size()) out.resize(out.size() + 65536);
    const ssize_t n = ::read(fd, &out[got], out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw_errno("read", path, err);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

std::string parent_directory(const std::string& path) {
  std::filesystem::path p(path);
  while (p.has_relative_path() && p.filename().empty()) p = p.parent_path();  // "a/b/" -> "a/b"
  std::filesystem::path parent = p.parent_path();
  if (parent.empty()) return ".";
  return parent.string();
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace freshrec
