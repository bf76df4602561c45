#include "cpu/io/http_journal.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/util/error.hpp"

namespace freshrec {

HttpJournal::HttpJournal(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path_ + ": cannot open the HTTP event journal: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) == 0) end_bytes_.store(static_cast<std::uint64_t>(st.st_size));
}

HttpJournal::~HttpJournal() {
  if (fd_ >= 0) ::close(fd_);
}

void HttpJournal::append(std::string_view lines) {
  if (lines.empty()) return;
  std::unique_lock<std::mutex> lock(mutex_);
  // One writer at a time keeps each request's lines contiguous and makes the sync cover
  // exactly what is answered.
  const char* p = lines.data();
  std::size_t left = lines.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path_ + ": journal write failed: " + std::strerror(errno));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
    end_bytes_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_release);
  }
  if (::fdatasync(fd_) != 0) throw IoError(path_ + ": journal fdatasync failed: " + std::strerror(errno));
  appends_.fetch_add(1, std::memory_order_release);
  lock.unlock();
  appended_.notify_all();
}

std::uint64_t HttpJournal::wait_for_append(std::uint64_t seen, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  appended_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return appends_.load() != seen; });
  return appends_.load();
}

namespace {

class JournalSource final : public EventSource {
 public:
  JournalSource(std::shared_ptr<HttpJournal> journal, std::size_t max_line_bytes)
      : journal_(std::move(journal)), file_(open_follow_source(journal_->path(), max_line_bytes)) {}

  SourceStatus next(SourceLine& out) override {
    // Read the count first: an append after this point wakes the next wait().
    seen_ = journal_->appends();
    const SourceStatus status = file_->next(out);
    // Through the line's '\n' (a cut line's tail is counted once the next line is read).
    if (status == SourceStatus::kLine) journal_->note_read(out.byte_offset + out.text.size() + 1);
    return status;
  }
  SourceOffset offset() const override { return file_->offset(); }
  std::string seek(const SourceOffset& offset) override {
    std::string warning = file_->seek(offset);
    journal_->note_read(file_->offset().byte_offset);  // where it resumed, exact or not
    return warning;
  }
  std::string describe() const override { return "http journal " + journal_->path(); }
  bool wait(int timeout_ms) override { return journal_->wait_for_append(seen_, timeout_ms) != seen_; }
  bool backlog_acknowledged() const override { return true; }

 private:
  std::shared_ptr<HttpJournal> journal_;
  std::unique_ptr<EventSource> file_;
  std::uint64_t seen_ = 0;
};

}  // namespace

std::unique_ptr<EventSource> open_journal_source(std::shared_ptr<HttpJournal> journal, std::size_t max_line_bytes) {
  return std::make_unique<JournalSource>(std::move(journal), max_line_bytes);
}

}  // namespace freshrec
