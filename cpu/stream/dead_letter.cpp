#include "cpu/stream/dead_letter.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cpu/util/error.hpp"

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
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path_ + ": cannot open dead-letter file: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw IoError(path_ + ": fstat: " + std::strerror(errno));
  file_size_ = static_cast<std::uint64_t>(st.st_size);
}

DeadLetterWriter::~DeadLetterWriter() {
  try {
    flush();
  } catch (...) {
    // A destructor must not throw; the lines since the last checkpoint are re-derived on restart.
  }
  if (fd_ >= 0) ::close(fd_);
}

void DeadLetterWriter::write(std::uint64_t line, std::uint64_t offset, std::string_view reason, std::string_view raw) {
  ++count_;
  if (fd_ < 0) return;
  pending_ += format_dead_letter(line, offset, reason, raw, max_raw_);
  if (pending_.size() >= kFlushBytes) flush();
}

void DeadLetterWriter::flush() {
  std::size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(path_ + ": write dead letters: " + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  file_size_ += done;
  pending_.clear();
}

std::uint64_t DeadLetterWriter::sync() {
  if (fd_ < 0) return 0;
  flush();
  if (::fdatasync(fd_) != 0) throw IoError(path_ + ": fdatasync: " + std::strerror(errno));
  return file_size_;
}

bool DeadLetterWriter::truncate_to(std::uint64_t size) {
  if (fd_ < 0) return true;
  flush();
  if (file_size_ < size) return false;
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    throw IoError(path_ + ": ftruncate: " + std::strerror(errno));
  file_size_ = size;
  return true;
}

}  // namespace freshrec
