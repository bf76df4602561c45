#include "cpu/stream/source_line_buffer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "cpu/util/error.hpp"

namespace freshrec {

LineBuffer::LineBuffer(std::size_t chunk_bytes, std::size_t max_line_bytes)
    : chunk_(chunk_bytes < 4096 ? 4096 : chunk_bytes), max_line_(max_line_bytes < 16 ? 16 : max_line_bytes) {
  buffer_.assign(chunk_ + kSourcePadding, '\0');
}

void LineBuffer::reset(std::uint64_t byte_offset, std::uint64_t line) {
  begin_ = end_ = scanned_ = 0;
  consumed_ = byte_offset;
  line_ = line;
  skipping_ = false;
  skipped_ = 0;
  head_.clear();
}

bool LineBuffer::take_line(std::size_t newline, SourceLine& out) {
  std::size_t len = newline - begin_;
  const char* p = buffer_.data() + begin_;
  if (len > 0 && p[len - 1] == '\r') --len;
  // Same rule whether the long line arrived in one read or across many.
  out.truncated = len > max_line_;
  out.text = std::string_view(p, out.truncated ? max_line_ : len);
  out.line = ++line_;
  out.byte_offset = consumed_;
  consumed_ += newline - begin_ + 1;
  begin_ = scanned_ = newline + 1;
  return true;
}

// The over-long line ends: hand out its head (padded like any other line) as truncated.
bool LineBuffer::emit_skipped_tail(SourceLine& out) {
  out.text = std::string_view(head_.data(), head_.size() - kSourcePadding);
  out.line = ++line_;
  out.byte_offset = head_offset_;
  out.truncated = true;
  skipping_ = false;
  skipped_ = 0;
  return true;
}

SourceStatus LineBuffer::next(int fd, bool at_eof_flush, SourceLine& out, bool* hit_eof) {
  *hit_eof = false;
  for (;;) {
    if (skipping_) {
      if (const void* nl = std::memchr(buffer_.data() + begin_, '\n', end_ - begin_)) {
        const std::size_t at = static_cast<const char*>(nl) - buffer_.data();
        skipped_ += at - begin_;
        consumed_ += skipped_ + 1;
        begin_ = scanned_ = at + 1;
        emit_skipped_tail(out);
        return SourceStatus::kLine;
      }
      skipped_ += end_ - begin_;
      begin_ = end_ = scanned_ = 0;
    } else {
      if (const void* nl = std::memchr(buffer_.data() + scanned_, '\n', end_ - scanned_)) {
        take_line(static_cast<const char*>(nl) - buffer_.data(), out);
        return SourceStatus::kLine;
      }
      scanned_ = end_;
      if (end_ - begin_ > max_line_) {
        // Keep the head for the dead letter; never buffer an unbounded line.
        head_.assign(buffer_.data() + begin_, max_line_);
        head_.append(kSourcePadding, '\0');
        head_offset_ = consumed_;
        skipping_ = true;
        skipped_ = end_ - begin_;
        begin_ = end_ = scanned_ = 0;
      }
    }
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      scanned_ -= begin_;
      begin_ = 0;
    }
    std::size_t capacity = buffer_.size() - kSourcePadding;
    if (end_ == capacity) {
      capacity = std::max(capacity * 2, max_line_ + 1);
      buffer_.resize(capacity + kSourcePadding, '\0');
    }
    const ssize_t n = ::read(fd, buffer_.data() + end_, capacity - end_);
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return SourceStatus::kIdle;
      throw IoError(std::string("read from event source: ") + std::strerror(errno));
    }
    *hit_eof = true;
    if (at_eof_flush && flush_partial(out)) return SourceStatus::kLine;
    return SourceStatus::kIdle;
  }
}

bool LineBuffer::flush_partial(SourceLine& out) {
  if (skipping_) {
    consumed_ += skipped_ + (end_ - begin_);
    begin_ = end_ = scanned_ = 0;
    return emit_skipped_tail(out);
  }
  if (end_ == begin_) return false;
  // A last line without '\n': the buffer always has kSourcePadding bytes behind end_.
  std::size_t len = end_ - begin_;
  const char* p = buffer_.data() + begin_;
  if (p[len - 1] == '\r') --len;
  std::memset(buffer_.data() + end_, 0, kSourcePadding);
  out.truncated = len > max_line_;
  out.text = std::string_view(p, out.truncated ? max_line_ : len);
  out.line = ++line_;
  out.byte_offset = consumed_;
  consumed_ += end_ - begin_;
  begin_ = end_ = scanned_ = 0;
  return true;
}

}  // namespace freshrec
