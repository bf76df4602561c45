#include "cpu/data/line_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "cpu/util/error.hpp"

namespace freshrec {

LineReader::LineReader(const std::string& path, std::size_t chunk_bytes, std::size_t padding)
    : path_(path), capacity_(std::max<std::size_t>(chunk_bytes, 4096)), padding_(padding) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw InputError("cannot open data file '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    close_file();
    throw InputError("data file '" + path + "' is not a regular file");
  }
  file_size_ = static_cast<std::uint64_t>(st.st_size);
  // A small file needs no 8 MiB buffer.
  capacity_ = std::min<std::size_t>(capacity_, std::max<std::size_t>(file_size_ + 1, 4096));
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  buffer_.reset(new char[capacity_ + padding_]);
  std::memset(buffer_.get() + capacity_, 0, padding_);
}

LineReader::~LineReader() { close_file(); }

LineReader::LineReader(LineReader&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      buffer_(std::move(other.buffer_)),
      capacity_(other.capacity_),
      padding_(other.padding_),
      begin_(other.begin_),
      end_(other.end_),
      eof_(other.eof_),
      line_number_(other.line_number_),
      file_size_(other.file_size_),
      estimated_lines_(other.estimated_lines_) {}

LineReader& LineReader::operator=(LineReader&& other) noexcept {
  if (this != &other) {
    close_file();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    buffer_ = std::move(other.buffer_);
    capacity_ = other.capacity_;
    padding_ = other.padding_;
    begin_ = other.begin_;
    end_ = other.end_;
    eof_ = other.eof_;
    line_number_ = other.line_number_;
    file_size_ = other.file_size_;
    estimated_lines_ = other.estimated_lines_;
  }
  return *this;
}

void LineReader::close_file() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool LineReader::refill() {
  if (eof_) return false;
  const std::size_t pending = end_ - begin_;
  if (begin_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + begin_, pending);
    begin_ = 0;
    end_ = pending;
  }
  if (end_ == capacity_) {
    // One line longer than the buffer: grow instead of splitting it.
    const std::size_t grown = capacity_ * 2;
    std::unique_ptr<char[]> bigger(new char[grown + padding_]);
    std::memcpy(bigger.get(), buffer_.get(), end_);
    std::memset(bigger.get() + grown, 0, padding_);
    buffer_ = std::move(bigger);
    capacity_ = grown;
  }
  const bool first = file_size_ > 0 && estimated_lines_ == 0 && line_number_ == 0 && end_ == 0;
  std::size_t got = 0;
  while (end_ < capacity_) {
    const ssize_t n = ::read(fd_, buffer_.get() + end_, capacity_ - end_);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError("reading data file '" + path_ + "': " + std::strerror(errno));
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    end_ += static_cast<std::size_t>(n);
    got += static_cast<std::size_t>(n);
  }
  if (first && end_ > 0) {
    const auto newlines = static_cast<std::size_t>(std::count(buffer_.get(), buffer_.get() + end_, '\n'));
    const double per_byte = double(newlines + 1) / double(end_);
    estimated_lines_ = static_cast<std::size_t>(per_byte * double(file_size_)) + 1;
  }
  return got > 0;
}

bool LineReader::next(std::string_view& line) {
  for (;;) {
    const char* start = buffer_.get() + begin_;
    const auto* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
    if (nl == nullptr && !eof_) {
      refill();
      continue;
    }
    if (nl == nullptr && begin_ == end_) return false;  // end of file, nothing pending
    // Without a newline this is the last, unterminated line.
    const char* stop = nl ? nl : buffer_.get() + end_;
    std::size_t len = static_cast<std::size_t>(stop - start);
    begin_ = nl ? begin_ + len + 1 : end_;
    if (len > 0 && start[len - 1] == '\r') --len;
    line = std::string_view(start, len);
    // A UTF-8 byte order mark (spreadsheet exports write one) is not part of the data.
    if (line_number_ == 0 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    ++line_number_;
    return true;
  }
}

}  // namespace freshrec
