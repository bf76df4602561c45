#pragma once
/// Durable file-system helpers: files that are fsynced before they count, directory
/// fsyncs, and renames that either replace atomically or refuse to replace.
/// All failures throw IoError carrying the path and the OS error text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace freshrec {

/// An output file written with plain write(2) and made durable by commit().
/// Until commit() returns, the file's content must be considered garbage: the
/// destructor of an uncommitted file closes it (never throws) but does not fsync.
class DurableFile {
 public:
  /// Opens `path` for writing, mode 0644. `exclusive`: fail if it already exists
  /// (O_EXCL); otherwise truncate an existing file.
  explicit DurableFile(const std::string& path, bool exclusive = true);
  ~DurableFile();
  DurableFile(const DurableFile&) = delete;
  DurableFile& operator=(const DurableFile&) = delete;
  DurableFile(DurableFile&& other) noexcept;
  DurableFile& operator=(DurableFile&& other) noexcept;

  /// Appends `size` bytes (retries short writes and EINTR).
  void write(const void* data, std::size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  /// fsync(2) then close(2); the data is on stable storage when this returns.
  void commit();

  /// Bytes appended so far.
  std::uint64_t bytes_written() const noexcept { return bytes_; }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t bytes_ = 0;
};

/// fsync(2) on a directory, so that entries created, renamed or removed in it survive
/// a crash.
void fsync_directory(const std::string& dir);

/// Writes `contents` to a new file at `path` (must not exist) and fsyncs it.
/// The containing directory is not fsynced.
void write_file_durable(const std::string& path, std::string_view contents);

/// Replaces `path` atomically with `contents`: a reader sees the old file or the new
/// one, never a mix. Writes `<dir>/.<name>.tmp-<pid>`, fsyncs it, renames it over `path`,
/// fsyncs the directory.
void replace_file_atomic(const std::string& path, std::string_view contents);

/// Renames `from` to `to` unless `to` exists (checked atomically where the file
/// system supports renameat2 RENAME_NOREPLACE). Returns false, changing nothing, when
/// `to` exists. Does not fsync.
bool rename_no_replace(const std::string& from, const std::string& to);

/// Swaps the two existing paths atomically (renameat2 RENAME_EXCHANGE); where the file
/// system cannot, falls back to moving `b` aside, which leaves a short window in which
/// `b` does not exist. Does not fsync.
void exchange_paths(const std::string& a, const std::string& b);

/// Whole file contents (host memory). Throws IoError when it cannot be read.
std::string read_file(const std::string& path);

/// Directory part of `path` ("." when it has none; "/" for "/x").
std::string parent_directory(const std::string& path);

/// `dir` + "/" + `name`, without doubling a trailing slash.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace freshrec
