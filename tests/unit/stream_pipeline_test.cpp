// The streaming updater process: sources and their offsets, the followed file across
// rotation, dead letters, checkpoints and their corruption, the model watcher, and the
// recovery story (SIGKILL at several points of a replay, restart, same final digest).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cpu/config/nightly_config.hpp"
#include "cpu/data/generator.hpp"
#include "cpu/model/snapshot.hpp"
#include "cpu/nightly/nightly_job.hpp"
#include "cpu/stream/checkpoint.hpp"
#include "cpu/stream/dead_letter.hpp"
#include "cpu/stream/model_watcher.hpp"
#include "cpu/stream/source.hpp"
#include "cpu/stream/updater.hpp"
#include "cpu/stream/updater_latency.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"
#include "cpu/util/sha256.hpp"

namespace freshrec {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/freshrec_spipe_XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text, bool append = false) {
  std::ofstream out(path, append ? std::ios::app | std::ios::binary : std::ios::trunc | std::ios::binary);
  out << text;
}

std::vector<std::string> read_all(EventSource& s) {
  std::vector<std::string> lines;
  SourceLine line;
  while (s.next(line) == SourceStatus::kLine) lines.emplace_back(line.text);
  return lines;
}

// ---------------------------------------------------------------- sources

TEST(FileSource, LinesOffsetsAndPadding) {
  TempDir dir;
  write_text(dir.file("e"), "alpha\r\n\nbeta\ngamma");  // CRLF, blank line, no final '\n'
  auto src = open_file_source(dir.file("e"));
  SourceLine line;
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "alpha");
  EXPECT_EQ(line.line, 1u);
  EXPECT_EQ(line.byte_offset, 0u);
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "");
  EXPECT_EQ(line.byte_offset, 7u);
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "beta");
  EXPECT_EQ(src->offset().byte_offset, 13u);
  EXPECT_EQ(src->offset().line, 3u);
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "gamma");
  EXPECT_EQ(line.line, 4u);
  // The padding promise: kSourcePadding bytes behind the text may be read.
  volatile char sink = line.text.data()[line.text.size() + kSourcePadding - 1];
  (void)sink;
  EXPECT_EQ(src->next(line), SourceStatus::kEnd);
  EXPECT_EQ(src->offset().byte_offset, 18u);
}

TEST(FileSource, ResumesExactlyFromAnOffsetAndAcrossChunkBoundaries) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 30000; ++i) text += "line-" + std::to_string(i) + std::string(i % 50, 'x') + "\n";
  write_text(dir.file("e"), text);  // ~1.1 MB: crosses the 1 MiB chunk
  auto all = read_all(*open_file_source(dir.file("e")));
  ASSERT_EQ(all.size(), 30000u);
  for (const std::size_t stop : {std::size_t{1}, std::size_t{12345}, std::size_t{29999}}) {
    auto first = open_file_source(dir.file("e"));
    SourceLine line;
    for (std::size_t i = 0; i < stop; ++i) ASSERT_EQ(first->next(line), SourceStatus::kLine);
    const SourceOffset at = first->offset();
    auto second = open_file_source(dir.file("e"));
    EXPECT_EQ(second->seek(at), "");
    auto rest = read_all(*second);
    ASSERT_EQ(rest.size(), all.size() - stop);
    EXPECT_EQ(rest.front(), all[stop]);
    EXPECT_EQ(rest.back(), all.back());
    EXPECT_EQ(second->offset().line, 30000u);
  }
}

TEST(FileSource, IdentityIsCheckedOnResume) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "{\"n\":" + std::to_string(i) + "}\n";
  write_text(dir.file("e"), text);
  auto first = open_file_source(dir.file("e"));
  SourceLine line;
  for (int i = 0; i < 150; ++i) first->next(line);
  const SourceOffset at = first->offset();
  EXPECT_EQ(at.fingerprint_bytes, kFingerprintBytes);
  // A byte-identical copy (new inode) is the same stream: resumed by fingerprint.
  std::system(("cp '" + dir.file("e") + "' '" + dir.file("copy") + "'").c_str());
  auto copy = open_file_source(dir.file("copy"));
  EXPECT_EQ(copy->seek(at), "");
  ASSERT_EQ(copy->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "{\"n\":150}");
  // A different file is refused rather than resumed at a guessed position.
  write_text(dir.file("other"), "{\"other\":1}\n" + text);
  auto other = open_file_source(dir.file("other"));
  try {
    other->seek(at);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not the file the checkpoint was reading"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_file_source(dir.file("missing")), InputError);
}

TEST(FileSource, OverlongLineIsCutNotBuffered) {
  TempDir dir;
  write_text(dir.file("e"), "short\n" + std::string(10000, 'z') + "\nnext\n");
  auto src = open_file_source(dir.file("e"), 256);
  SourceLine line;
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_TRUE(line.truncated);
  EXPECT_EQ(line.text.size(), 256u);
  EXPECT_EQ(line.byte_offset, 6u);
  EXPECT_EQ(line.line, 2u);
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_FALSE(line.truncated);
  EXPECT_EQ(line.text, "next");
  EXPECT_EQ(line.byte_offset, 10007u);
}

TEST(FollowSource, GrowsRotatesAndTruncates) {
  TempDir dir;
  const std::string path = dir.file("live.ndjson");
  auto src = open_follow_source(path);
  SourceLine line;
  EXPECT_EQ(src->next(line), SourceStatus::kIdle);  // waits for the file to appear
  write_text(path, "a1\na2\n");
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "a1");
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_EQ(src->next(line), SourceStatus::kIdle);
  write_text(path, "a3-par", true);  // a partial line waits for its '\n'
  EXPECT_EQ(src->next(line), SourceStatus::kIdle);
  write_text(path, "tial\n", true);
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "a3-partial");
  EXPECT_EQ(line.line, 3u);

  // Rotation: the writer appends a last line to the old file, renames it away and
  // starts a new one. Every line of both files arrives, in order, once.
  write_text(path, "a4\n", true);
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  write_text(path, "b1\nb2\n");
  std::vector<std::string> got;
  for (int i = 0; i < 10 && got.size() < 3; ++i)
    if (src->next(line) == SourceStatus::kLine) got.emplace_back(line.text);
  EXPECT_EQ(got, (std::vector<std::string>{"a4", "b1", "b2"}));
  EXPECT_EQ(line.line, 2u);  // line numbers restart with the new file
  EXPECT_EQ(src->offset().byte_offset, 6u);
  struct stat st {};
  ::stat(path.c_str(), &st);
  EXPECT_EQ(src->offset().inode, static_cast<std::uint64_t>(st.st_ino));

  // copytruncate: the file shrinks under us; what follows is new data from byte 0.
  ASSERT_EQ(::truncate(path.c_str(), 0), 0);
  EXPECT_EQ(src->next(line), SourceStatus::kIdle);
  write_text(path, "c1\n", true);
  ASSERT_EQ(src->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "c1");
  EXPECT_EQ(line.byte_offset, 0u);

  // A followed file replaced while the process was down restarts at byte 0 with a warning.
  const SourceOffset at = src->offset();
  std::remove(path.c_str());
  write_text(path, "d1-longer-than-before\n");
  auto resumed = open_follow_source(path);
  EXPECT_NE(resumed->seek(at), "");
  ASSERT_EQ(resumed->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "d1-longer-than-before");
}

TEST(StdinSource, ReadsAndResumesWhenStdinIsAFile) {
  TempDir dir;
  write_text(dir.file("in"), "s1\ns2\ns3\n");
  const int saved = ::dup(0);
  const int fd = ::open(dir.file("in").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::dup2(fd, 0);
  {
    auto src = open_stdin_source();
    SourceLine line;
    ASSERT_EQ(src->next(line), SourceStatus::kLine);
    const SourceOffset at = src->offset();
    EXPECT_EQ(at.byte_offset, 3u);
    auto again = open_stdin_source();
    EXPECT_EQ(again->seek(at), "");
    EXPECT_EQ(read_all(*again), (std::vector<std::string>{"s2", "s3"}));
    EXPECT_EQ(again->next(line), SourceStatus::kEnd);
  }
  ::dup2(saved, 0);
  ::close(saved);
  ::close(fd);
}

// Audit: a checkpoint taken on one file on stdin, resumed with another (shorter) file
// there, was "resumed exactly" by a blind lseek past its end (nothing read, no warning) or
// into the middle of a line. Refused like the file source; a byte-identical copy resumes.
TEST(StdinSource, ResumeChecksTheFileLikeTheFileSource) {
  TempDir dir;
  write_text(dir.file("in"), "s1\ns2\ns3\n");
  write_text(dir.file("short"), "x\n");
  write_text(dir.file("other"), "other-longer-line\nmore\n");
  std::system(("cp '" + dir.file("in") + "' '" + dir.file("copy") + "'").c_str());
  const int saved = ::dup(0);
  auto use_as_stdin = [](const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::dup2(fd, 0);
    ::close(fd);
  };
  use_as_stdin(dir.file("in"));
  SourceOffset at;
  {
    auto src = open_stdin_source();
    SourceLine line;
    ASSERT_EQ(src->next(line), SourceStatus::kLine);
    ASSERT_EQ(src->next(line), SourceStatus::kLine);
    at = src->offset();
    EXPECT_EQ(at.byte_offset, 6u);
  }
  use_as_stdin(dir.file("short"));
  EXPECT_THROW(open_stdin_source()->seek(at), InputError);  // shrank below the offset
  use_as_stdin(dir.file("other"));
  EXPECT_THROW(open_stdin_source()->seek(at), InputError);  // another file: would resume mid-line
  use_as_stdin(dir.file("copy"));
  {
    auto src = open_stdin_source();
    EXPECT_EQ(src->seek(at), "");
    EXPECT_EQ(read_all(*src), (std::vector<std::string>{"s3"}));
  }
  ::dup2(saved, 0);
  ::close(saved);
}

// Audit: a file truncated in place and rewritten past the checkpoint's offset while the
// updater was down (copytruncate) keeps its inode: it was resumed in the middle of a line
// of the new data. The first bytes no longer match: the follower restarts at 0 with a
// warning, the one-shot file source refuses.
TEST(FileSource, SameInodeRewrittenWhileDownIsNotResumedMidLine) {
  TempDir dir;
  const std::string path = dir.file("e");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "{\"n\":" + std::to_string(i) + "}\n";
  write_text(path, text);
  SourceOffset at;
  {
    auto first = open_follow_source(path);
    SourceLine line;
    for (int i = 0; i < 150; ++i) ASSERT_EQ(first->next(line), SourceStatus::kLine);
    at = first->offset();
  }
  std::string fresh;
  for (int i = 0; i < 300; ++i) fresh += "{\"fresh\":" + std::to_string(i) + "}\n";
  write_text(path, fresh);  // O_TRUNC: same inode, longer than the offset
  auto follow = open_follow_source(path);
  EXPECT_NE(follow->seek(at), "");
  SourceLine line;
  ASSERT_EQ(follow->next(line), SourceStatus::kLine);
  EXPECT_EQ(line.text, "{\"fresh\":0}");
  EXPECT_THROW(open_file_source(path)->seek(at), InputError);
}

// Audit: a hostile or damaged checkpoint's fingerprint_bytes (beyond kFingerprintBytes)
// was used as an allocation size on resume (std::string of 2^50 bytes: a crash).
TEST(FileSource, HostileFingerprintLengthIsRefusedNotAllocated) {
  TempDir dir;
  const std::string path = dir.file("e");
  write_text(path, "{\"n\":1}\n{\"n\":2}\n");
  SourceOffset at;
  at.byte_offset = 8;
  at.line = 1;
  at.inode = 1;  // not this file's: the fingerprint decides
  at.device = 1;
  at.fingerprint = std::string(64, 'a');
  at.fingerprint_bytes = std::uint64_t{1} << 50;
  EXPECT_NE(open_follow_source(path)->seek(at), "");
  EXPECT_THROW(open_file_source(path)->seek(at), InputError);
}

// ---------------------------------------------------------------- dead letters

TEST(DeadLetter, OneJsonLinePerBadLineBoundedAndValid) {
  TempDir dir;
  const std::string path = dir.file("dl.ndjson");
  {
    DeadLetterWriter dl(path, 32);
    dl.write(7, 1234, "invalid JSON", "{\"user_id\": \"u\"");
    dl.write(9, 2000, "too long", std::string(20, 'a') + "\xC3\xA9" + std::string(40, 'b'));  // é straddles byte 32
    dl.write(11, 3000, "bad bytes", "\xFF\xFE ok");
    EXPECT_EQ(dl.count(), 3u);
    dl.sync();
  }
  std::ifstream in(path);
  std::vector<nlohmann::json> rows;
  for (std::string l; std::getline(in, l);) rows.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["line"], 7);
  EXPECT_EQ(rows[0]["offset"], 1234);
  EXPECT_EQ(rows[0]["reason"], "invalid JSON");
  EXPECT_EQ(rows[0]["raw"], "{\"user_id\": \"u\"");
  EXPECT_FALSE(rows[0].contains("truncated"));
  EXPECT_EQ(rows[1]["truncated"], true);
  EXPECT_EQ(rows[1]["raw_bytes"], 62);
  EXPECT_LE(rows[1]["raw"].get<std::string>().size(), 32u);
  EXPECT_EQ(rows[1]["raw"].get<std::string>().substr(20), "\xC3\xA9" + std::string(10, 'b'));
  EXPECT_NE(rows[2]["raw"].get<std::string>().find(" ok"), std::string::npos);
}

TEST(DeadLetter, TruncateToForgetsLinesAfterACheckpoint) {
  TempDir dir;
  const std::string path = dir.file("dl.ndjson");
  DeadLetterWriter dl(path, 100);
  dl.write(1, 0, "r", "x");
  const std::uint64_t at = dl.sync();
  dl.write(2, 5, "r", "y");
  dl.flush();
  EXPECT_GT(dl.size(), at);
  EXPECT_TRUE(dl.truncate_to(at));
  EXPECT_EQ(read_file(path), format_dead_letter(1, 0, "r", "x", 100));
  EXPECT_FALSE(dl.truncate_to(at + 1000));
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// An unopenable path (its directory missing) is reported, not thrown; the lines stay
// buffered, retries are spaced, and once the directory exists everything is appended.
TEST(DeadLetter, AnUnopenablePathIsReportedNotThrownAndRecovers) {
  TempDir dir;
  const std::string parent = dir.file("later");
  const std::string path = parent + "/dl.ndjson";
  DeadLetterWriter dl(path, 100);
  EXPECT_TRUE(dl.failing());
  EXPECT_EQ(dl.failures(), 1u);
  EXPECT_TRUE(contains(dl.last_error(), path)) << dl.last_error();
  EXPECT_TRUE(contains(dl.last_error(), std::strerror(ENOENT))) << dl.last_error();
  dl.write(1, 0, "r", "a");
  dl.write(2, 10, "r", "b");
  EXPECT_EQ(dl.sync(), 0u);  // nothing is on disk, so a checkpoint records nothing
  EXPECT_EQ(dl.failures(), 2u);  // sync() always retries
  // Within the retry interval, writes and flushes do not retry (no syscall per event).
  for (int i = 0; i < 100; ++i) {
    dl.write(3 + static_cast<std::uint64_t>(i), 20, "r", "c");
    dl.flush();
  }
  EXPECT_EQ(dl.failures(), 2u);
  EXPECT_EQ(dl.count(), 102u);
  EXPECT_EQ(dl.unwritten(), 102u);
  ASSERT_EQ(::mkdir(parent.c_str(), 0755), 0);  // the file system takes writes again
  const std::uint64_t size = dl.sync();
  EXPECT_FALSE(dl.failing());
  EXPECT_EQ(dl.unwritten(), 0u);
  const std::string text = read_file(path);
  EXPECT_EQ(size, text.size());
  EXPECT_EQ(count_lines(text), 102u);
  EXPECT_EQ(text.substr(0, text.find('\n') + 1), format_dead_letter(1, 0, "r", "a", 100));
}

// /dev/full answers every write with ENOSPC: counted and reported, never thrown.
TEST(DeadLetter, DevFullIsReportedAsNoSpace) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  DeadLetterWriter dl("/dev/full", 100);
  EXPECT_FALSE(dl.failing());
  dl.write(1, 0, "r", "x");
  EXPECT_EQ(dl.sync(), 0u);
  EXPECT_TRUE(dl.failing());
  EXPECT_EQ(dl.failures(), 1u);
  EXPECT_TRUE(contains(dl.last_error(), "/dev/full")) << dl.last_error();
  EXPECT_TRUE(contains(dl.last_error(), std::strerror(ENOSPC))) << dl.last_error();
  EXPECT_EQ(dl.count(), 1u);
  EXPECT_EQ(dl.unwritten(), 1u);
  EXPECT_TRUE(dl.truncate_to(0));  // a device has nothing to cut (no throw on restore)
}

// A disk that fills in the middle of a write: the whole lines that fit stay, the cut line
// is removed, sync() reports only those bytes; when space is back the rest is appended.
// RLIMIT_FSIZE is a full disk for this process alone (writes past it fail with EFBIG).
TEST(DeadLetter, AFullDiskKeepsWholeLinesAndResumesWhenSpaceIsBack) {
  TempDir dir;
  const std::string path = dir.file("dl.ndjson");
  const std::string l1 = format_dead_letter(1, 0, "r", "first", 100);
  const std::string l2 = format_dead_letter(2, 10, "r", "second line", 100);
  const std::string l3 = format_dead_letter(3, 20, "r", "third line!", 100);
  DeadLetterWriter dl(path, 100);
  dl.write(1, 0, "r", "first");
  ASSERT_EQ(dl.sync(), l1.size());
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  void (*old_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = l1.size() + l2.size() + l3.size() / 2;  // room for line 2 and half of line 3
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  dl.write(2, 10, "r", "second line");
  dl.write(3, 20, "r", "third line!");
  const std::uint64_t full_size = dl.sync();
  const bool full_failing = dl.failing();
  const std::string full_error = dl.last_error();
  const std::uint64_t full_unwritten = dl.unwritten();
  ::setrlimit(RLIMIT_FSIZE, &saved);  // space is back (assert only now: gtest may write files)
  const std::string on_full_disk = read_file(path);
  EXPECT_TRUE(full_failing);
  EXPECT_TRUE(contains(full_error, path) && contains(full_error, std::strerror(EFBIG))) << full_error;
  EXPECT_EQ(on_full_disk, l1 + l2) << "a partial line was left in the file";
  EXPECT_EQ(full_size, (l1 + l2).size());
  EXPECT_EQ(full_unwritten, 1u);
  const std::uint64_t size = dl.sync();
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(dl.failing());
  EXPECT_EQ(read_file(path), l1 + l2 + l3);
  EXPECT_EQ(size, (l1 + l2 + l3).size());
  EXPECT_EQ(dl.failures(), 1u);
}

// A restart's cut that cannot be done yet (directory gone) is done before the next append:
// lines of the crashed run past the checkpoint never stay in the file.
TEST(DeadLetter, ACutThatCannotBeDoneYetIsDoneBeforeTheNextAppend) {
  TempDir dir;
  const std::string parent = dir.file("gone");
  const std::string path = parent + "/dl.ndjson";
  DeadLetterWriter dl(path, 100);
  ASSERT_TRUE(dl.failing());
  EXPECT_TRUE(dl.truncate_to(0));  // the checkpoint recorded an empty file
  dl.write(7, 70, "r", "after the checkpoint");
  ASSERT_EQ(::mkdir(parent.c_str(), 0755), 0);
  write_text(path, format_dead_letter(5, 50, "r", "stale, past the checkpoint", 100));
  const std::uint64_t size = dl.sync();
  EXPECT_FALSE(dl.failing());
  EXPECT_EQ(read_file(path), format_dead_letter(7, 70, "r", "after the checkpoint", 100));
  EXPECT_EQ(size, read_file(path).size());
}

// ---------------------------------------------------------------- checkpoints

CheckpointRecord sample_record(const std::string& payload) {
  CheckpointRecord r;
  r.baseline_version = "v1";
  r.source.byte_offset = 4096;
  r.source.line = 31;
  r.source.inode = 77;
  r.source.device = 5;
  r.source.fingerprint = std::string(64, 'a');
  r.source.fingerprint_bytes = 1024;
  r.dead_letter_bytes = 99;
  r.counters = {{"lines", 31}, {"parse_errors", 2}};
  r.engine_state = payload;
  return r;
}

TEST(Checkpoint, RoundTripAndKeepsTheNewest) {
  TempDir dir;
  CheckpointStore store(dir.file("ck"), 2);
  std::string payload(100000, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 % 251);
  for (int i = 0; i < 4; ++i) {
    CheckpointRecord r = sample_record(payload + std::to_string(i));
    store.write(r);
    EXPECT_EQ(r.seq, static_cast<std::uint64_t>(i + 1));
  }
  const auto files = store.list();
  ASSERT_EQ(files.size(), 2u);
  const CheckpointRecord back = read_checkpoint(files[0]);
  EXPECT_EQ(back.seq, 4u);
  EXPECT_EQ(back.engine_state, payload + "3");
  EXPECT_EQ(back.baseline_version, "v1");
  EXPECT_EQ(back.source.byte_offset, 4096u);
  EXPECT_EQ(back.source.line, 31u);
  EXPECT_EQ(back.source.inode, 77u);
  EXPECT_EQ(back.source.fingerprint, std::string(64, 'a'));
  EXPECT_EQ(back.dead_letter_bytes, 99u);
  EXPECT_EQ(back.counters.at("parse_errors"), 2u);
  // A writer killed mid-write leaves a temporary file; it is swept and never read.
  write_text(dir.file("ck/.tmp-checkpoint-000000000009.ckpt"), "half");
  CheckpointStore reopened(dir.file("ck"), 2);
  EXPECT_EQ(reopened.list().size(), 2u);
  EXPECT_FALSE(std::ifstream(dir.file("ck/.tmp-checkpoint-000000000009.ckpt")).good());
}

TEST(Checkpoint, CorruptionIsRefusedAndThePreviousOneUsed) {
  TempDir dir;
  CheckpointStore store(dir.file("ck"), 2);
  CheckpointRecord a = sample_record("state-A");
  store.write(a);
  CheckpointRecord b = sample_record(std::string(5000, 'B'));
  store.write(b);
  {
    std::fstream f(b.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-10, std::ios::end);
    f.put('X');
  }
  try {
    read_checkpoint(b.path);
    FAIL() << "expected IntegrityError";
  } catch (const IntegrityError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(b.path), std::string::npos) << what;
    EXPECT_NE(what.find("payload sha256 mismatch (expected"), std::string::npos) << what;
  }
  std::vector<std::string> refused;
  const auto loaded = store.load_newest_valid(&refused);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->engine_state, "state-A");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_NE(refused[0].find("sha256 mismatch"), std::string::npos);

  // A tampered header (here the source offset) fails its own checksum.
  std::string bytes = read_file(a.path);
  const std::size_t p = bytes.find("\"byte_offset\":4096");
  ASSERT_NE(p, std::string::npos);
  bytes.replace(p, 18, "\"byte_offset\":4097");
  write_text(a.path, bytes);
  EXPECT_THROW(read_checkpoint(a.path), IntegrityError);
  // Truncation is caught before any checksum.
  write_text(b.path, read_file(b.path).substr(0, 200));
  EXPECT_THROW(read_checkpoint(b.path), IntegrityError);
  EXPECT_FALSE(store.load_newest_valid(nullptr).has_value());
}

// ---------------------------------------------------------------- latency histogram

// Audit: the header's checksum only proves the header was written as it is. A header whose
// integer fields are doubles (1e300) or negative was converted with a float-to-integer
// cast out of range (undefined behaviour) or wrapped; refused with the field's name.
TEST(Checkpoint, NonIntegerHeaderNumbersAreRefusedByName) {
  TempDir dir;
  CheckpointStore store(dir.file("ck"), 2);
  CheckpointRecord r = sample_record("state");
  store.write(r);
  const std::string bytes = read_file(r.path);
  const std::size_t magic_end = bytes.find('\n');
  const std::size_t header_end = bytes.find('\n', magic_end + 1);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(magic_end + 1, header_end - magic_end - 1));
  auto rewrite = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json h = header;
    h.erase("header_sha256");
    edit(h);
    h["header_sha256"] = sha256_hex(h.dump());
    write_text(r.path, bytes.substr(0, magic_end + 1) + h.dump() + bytes.substr(header_end));
  };
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> cases = {
      {"byte_offset", [](nlohmann::json& h) { h["source"]["byte_offset"] = 1e300; }},
      {"dead_letter_bytes", [](nlohmann::json& h) { h["dead_letter_bytes"] = -1; }},
      {"lines", [](nlohmann::json& h) { h["counters"]["lines"] = 1e30; }},
      {"format", [](nlohmann::json& h) { h["format"] = 1e300; }},
  };
  for (const auto& [field, edit] : cases) {
    rewrite(edit);
    try {
      read_checkpoint(r.path);
      ADD_FAILURE() << field << ": expected IntegrityError";
    } catch (const IntegrityError& e) {
      EXPECT_TRUE(contains(e.what(), field)) << e.what();
      EXPECT_TRUE(contains(e.what(), r.path)) << e.what();
    }
  }
}

// Audit: a stray file whose name is a checkpoint's with a sequence number that does not fit
// (or is the largest one) threw std::out_of_range from the store, or wrapped the next
// sequence number to 0 so that the checkpoint just written was pruned at once.
TEST(Checkpoint, OutOfRangeSequenceNumbersInFileNamesAreIgnored) {
  TempDir dir;
  ::mkdir(dir.file("ck").c_str(), 0755);
  write_text(dir.file("ck/checkpoint-99999999999999999999999.ckpt"), "stray");
  write_text(dir.file("ck/checkpoint-18446744073709551615.ckpt"), "stray");
  std::unique_ptr<CheckpointStore> store;
  ASSERT_NO_THROW(store = std::make_unique<CheckpointStore>(dir.file("ck"), 1));
  CheckpointRecord r = sample_record("state");
  ASSERT_NO_THROW(store->write(r));
  EXPECT_TRUE(std::ifstream(r.path).good()) << r.path << " pruned right after it was written";
  const auto files = store->list();
  ASSERT_FALSE(files.empty());
  EXPECT_EQ(files.front(), r.path);
}

TEST(LatencyHistogram, QuantilesWithinBucketResolution) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v);
  EXPECT_NEAR(h.quantile_ns(0.5), 50000.0, 50000.0 * 0.02);
  EXPECT_NEAR(h.quantile_ns(0.99), 99000.0, 99000.0 * 0.02);
  EXPECT_EQ(h.max_ns(), 100000u);
  for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 1000ull, 123456789ull, ~0ull}) {
    std::uint64_t lo = 0, hi = 0;
    LatencyHistogram::bounds(LatencyHistogram::index_of(v), lo, hi);
    EXPECT_LE(lo, v);
    if (hi > lo) {
      EXPECT_LT(v - lo, hi - lo);
    }
  }
  LatencyHistogram small;
  small.record(40);
  small.record(60);
  EXPECT_EQ(small.quantile_ns(0.5), 40.0);
  EXPECT_EQ(small.quantile_ns(0.99), 60.0);
}

// ---------------------------------------------------------------- model watcher

FactorModel random_model(int users, int items, int k, unsigned seed) {
  FactorModel m;
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 0.1f);
  m.user_factors.resize(users, k);
  m.item_factors.resize(items, k);
  for (int r = 0; r < users; ++r)
    for (int c = 0; c < k; ++c) m.user_factors(r, c) = n(rng);
  for (int r = 0; r < items; ++r)
    for (int c = 0; c < k; ++c) m.item_factors(r, c) = n(rng);
  m.user_bias = Eigen::VectorXf::Zero(users);
  m.item_bias = Eigen::VectorXf::Zero(items);
  for (int u = 0; u < users; ++u) m.user_ids.intern(generated_user_id(static_cast<std::uint32_t>(u)));
  for (int i = 0; i < items; ++i) m.item_ids.intern(generated_item_id(static_cast<std::uint32_t>(i)));
  m.data_cutoff = 1700000000.0;
  return m;
}

void corrupt_byte(const std::string& path, long from_end) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-from_end, std::ios::end);
  const char c = static_cast<char>(f.get());
  f.seekp(-from_end, std::ios::end);
  f.put(static_cast<char>(c ^ 0x5A));
}

TEST(ModelWatcher, LoadsANewVersionAndRefusesACorruptOne) {
  TempDir dir;
  const std::string models = dir.file("models");
  write_snapshot(random_model(20, 30, 4, 1), models, "v1");
  ModelWatcher watcher(models, "v1", 3'600'000, nullptr);  // the test polls by hand
  watcher.poll_now();
  EXPECT_FALSE(watcher.has_pending());
  write_snapshot(random_model(25, 30, 4, 2), models, "v2");
  watcher.poll_now();
  ASSERT_TRUE(watcher.has_pending());
  LoadedSnapshot got = watcher.take_pending();
  ASSERT_TRUE(got.model);
  EXPECT_EQ(got.info.version, "v2");
  EXPECT_EQ(got.model->n_users(), 25);
  EXPECT_FALSE(watcher.has_pending());

  write_snapshot(random_model(25, 30, 4, 3), models, "v3");
  corrupt_byte(models + "/v3/item_factors.npy", 3);
  watcher.poll_now();
  EXPECT_FALSE(watcher.has_pending());
  EXPECT_EQ(watcher.refused(), 1u);
  watcher.poll_now();  // not retried while LATEST still names it
  EXPECT_EQ(watcher.refused(), 1u);
  EXPECT_EQ(watcher.loaded(), 1u);
}

// ---------------------------------------------------------------- the updater

StreamProcessConfig updater_config(const TempDir& dir, const std::string& models, const std::string& events,
                                   const std::string& tag) {
  StreamProcessConfig c;
  c.model.dir = models;
  c.model.poll_ms = 0;
  c.source.type = SourceType::kFile;
  c.source.path = events;
  c.checkpoint.dir = dir.file("ck-" + tag);
  c.checkpoint.every_events = 2500;
  c.checkpoint.every_seconds = 0;
  c.dead_letter.path = dir.file("dl-" + tag + ".ndjson");
  c.stats.interval_seconds = 0;
  c.stream.guard.cycle_events = 1000;
  c.stream.guard.holdout_probability = 0.05;
  c.stream.guard.holdout_size = 200;
  return c;
}

UpdaterOptions quiet_options() {
  UpdaterOptions o;
  o.log = nullptr;
  o.warn = nullptr;
  return o;
}

// Runs `body` in a child process and returns its wait status. Every updater run of the
// recovery test happens in a child: a crash is a real SIGKILL, and no thread or OpenMP
// pool of one run leaks into the next.
int in_child(const std::function<void()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      code = 3;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

nlohmann::json run_updater(const StreamProcessConfig& c, const std::string& stats_path, std::uint64_t crash_after = 0) {
  const int status = in_child([&] {
    UpdaterOptions o = quiet_options();
    o.stop_after_lines = crash_after;
    o.crash = crash_after > 0;
    StreamUpdater updater(c, o);
    std::atomic<bool> stop{false};
    const nlohmann::json stats = updater.run(stop);
    write_text(stats_path, stats.dump());
  });
  if (crash_after > 0) {
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    return {};
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  return nlohmann::json::parse(read_file(stats_path));
}

// Audit: a reload asked for through the admin API (reload_now) did not tell the model
// watcher, which still took the old version for the current one: it loaded the same
// snapshot again and the loop swapped it in a second time, so the state depended on when
// the watcher happened to poll. Also checks the stats of a run with no event at all.
TEST(Updater, ReloadNowAndTheWatcherSwapOnlyOnce) {
  TempDir dir;
  const std::string models = dir.file("models");
  write_snapshot(random_model(20, 30, 4, 1), models, "v1");
  write_text(dir.file("events"), "");
  StreamProcessConfig c;
  c.model.dir = models;
  c.model.poll_ms = 20;
  c.source.type = SourceType::kFile;
  c.source.path = dir.file("events");
  c.dead_letter.path = dir.file("dl");
  c.stats.interval_seconds = 0;
  StreamUpdater updater(c, quiet_options());
  write_snapshot(random_model(20, 30, 4, 2), models, "v2");
  EXPECT_EQ(updater.reload_now()["swapped"], true);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the watcher polls meanwhile
  std::atomic<bool> stop{false};
  const nlohmann::json s = updater.run(stop);
  EXPECT_EQ(s["counters"]["swaps"], 1) << s.dump();
  EXPECT_EQ(s["baseline_version"], "v2");
  EXPECT_EQ(s["events"], 0);
  for (const char* key : {"events_per_s", "apply_p50_us", "apply_p99_us", "apply_max_us", "elapsed_s", "watermark"})
    EXPECT_TRUE(s[key].is_number()) << key << ": " << s.dump();
}

class Recovery : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    models_ = dir_->file("models");
    events_ = dir_->file("events.ndjson");
    GeneratorConfig g;
    g.events = 24000;
    g.users = 400;
    g.items = 300;
    g.categories = 10;
    g.days = 3;
    g.seed = 11;
    // The nightly model is trained by the nightly job library on the first 2/3 of the log.
    const int status = in_child([&] {
      NightlyConfig n = parse_nightly_config("{}", "test");
      n.data.format = DataFormat::kGenerated;
      n.data.generator = g;
      n.data.generator.events = 16000;
      n.train.factors = 8;
      n.train.iterations = 3;
      n.train.threads = 1;
      n.train.backend = Backend::kCpu;
      n.eval.enabled = false;
      n.output.dir = models_;
      n.output.version = "v1";
      run_nightly_job(n, nullptr);
    });
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    // The stream replays the whole log, with bad lines mixed in for the dead-letter file.
    write_ndjson(g, dir_->file("clean.ndjson"));
    std::ifstream in(dir_->file("clean.ndjson"));
    std::ofstream out(events_);
    int n = 0;
    for (std::string line; std::getline(in, line); ++n) {
      out << line << '\n';
      if (n % 3001 == 17) out << "{\"user_id\":\"u1\",\"event_type\":\"teleport\",\"timestamp\":1}\n";
      if (n % 5003 == 99) out << "not json at all\n";
      if (n % 7919 == 5) out << "\n";
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static TempDir* dir_;
  static std::string models_;
  static std::string events_;
};
TempDir* Recovery::dir_ = nullptr;
std::string Recovery::models_;
std::string Recovery::events_;

// Events reach the engine in batches of source.apply_batch (one lock hold each, or several
// when a batch outlasts apply_hold_ms) whether or not checkpoints are written (without a
// checkpoint store the periodic checkpoint once flushed every line on its own), and the
// batching never changes the state.
TEST_F(Recovery, BatchingIsIndependentOfCheckpointsAndNeverChangesTheState) {
  std::string digest;
  auto run = [&](const std::string& tag, std::size_t batch, double hold_ms) {
    StreamProcessConfig c = updater_config(*dir_, models_, events_, tag);
    c.checkpoint.dir = "";  // no store: nothing to write, every_events still set
    c.checkpoint.every_events = 2500;
    c.source.apply_batch = batch;
    c.source.apply_hold_ms = hold_ms;
    const nlohmann::json s = run_updater(c, dir_->file("stats-" + tag + ".json"));
    if (digest.empty()) digest = s["state_digest"];
    EXPECT_EQ(s["state_digest"], digest) << tag;
    return std::make_pair(s["apply_holds"].get<std::uint64_t>(), s["counters"]["lines"].get<std::uint64_t>());
  };
  const auto [one_holds, lines] = run("batch1", 1, 0.0);
  EXPECT_GE(one_holds, lines * 9 / 10);  // every parsed line its own hold
  const auto [batched_holds, lines2] = run("batch64", 64, 0.0);
  EXPECT_EQ(lines2, lines);
  EXPECT_LE(batched_holds, lines / 64 + 64);  // full batches (a few flushed early: swaps, end)
  // A hold bound far below one event's apply time: each event its own hold, same state.
  const auto [short_holds, lines3] = run("hold", 64, 1e-6);
  EXPECT_GE(short_holds, lines3 * 9 / 10);
}

TEST_F(Recovery, KilledAtSeveralPointsRestartsToTheSameState) {
  const nlohmann::json clean = run_updater(updater_config(*dir_, models_, events_, "clean"), dir_->file("s-clean.json"));
  ASSERT_FALSE(clean.empty());
  EXPECT_GT(clean["events"].get<std::uint64_t>(), 23000u);
  EXPECT_GT(clean["dead_letters"].get<std::uint64_t>(), 8u);
  EXPECT_EQ(clean["state_digest"].get<std::string>().size(), 64u);
  EXPECT_TRUE(clean["restored_from"].is_null());
  const std::string clean_dead = read_file(dir_->file("dl-clean.ndjson"));
  EXPECT_NE(clean_dead.find("\"raw\":\"not json at all\""), std::string::npos);

  // Two uninterrupted runs agree (determinism).
  const nlohmann::json again = run_updater(updater_config(*dir_, models_, events_, "again"), dir_->file("s-again.json"));
  EXPECT_EQ(again["state_digest"], clean["state_digest"]);

  // Killed once at three different points (before the first checkpoint, between two,
  // right on one), restarted to EOF.
  for (const std::uint64_t kill_at : {1234ull, 10000ull, 17777ull}) {
    const std::string tag = "k" + std::to_string(kill_at);
    const StreamProcessConfig c = updater_config(*dir_, models_, events_, tag);
    run_updater(c, dir_->file("s-" + tag + ".json"), kill_at);
    const nlohmann::json resumed = run_updater(c, dir_->file("s-" + tag + ".json"));
    EXPECT_EQ(resumed["state_digest"], clean["state_digest"]) << "killed after " << kill_at << " lines";
    EXPECT_EQ(resumed["events"], clean["events"]) << kill_at;
    EXPECT_EQ(resumed["dead_letters"], clean["dead_letters"]) << kill_at;
    EXPECT_EQ(resumed["counters"]["lines"], clean["counters"]["lines"]) << kill_at;
    EXPECT_EQ(read_file(c.dead_letter.path), clean_dead) << "dead letters lost or doubled, kill at " << kill_at;
    if (kill_at >= 2500) {
      EXPECT_FALSE(resumed["restored_from"].is_null());
    }
  }

  // Killed three times in a row in one checkpoint directory, the newest checkpoint
  // corrupted before the last restart: falls back to the previous one and still agrees.
  const StreamProcessConfig c = updater_config(*dir_, models_, events_, "multi");
  run_updater(c, dir_->file("s-multi.json"), 6000);
  run_updater(c, dir_->file("s-multi.json"), 7001);
  run_updater(c, dir_->file("s-multi.json"), 3333);
  CheckpointStore store(c.checkpoint.dir, 2);
  const auto files = store.list();
  ASSERT_EQ(files.size(), 2u);
  corrupt_byte(files[0], 100);
  const nlohmann::json resumed = run_updater(c, dir_->file("s-multi.json"));
  EXPECT_EQ(resumed["restored_from"], files[1]);
  EXPECT_EQ(resumed["state_digest"], clean["state_digest"]);
  EXPECT_EQ(read_file(c.dead_letter.path), clean_dead);
}

// The dead-letter file on a full device (/dev/full: ENOSPC) or under a path that cannot
// be a directory (ENOTDIR, which stops root too): every event is still applied, every bad
// line counted, the failure logged once (however many attempts fail), counted, and the
// checkpoints record no dead-letter bytes, since none are on disk.
TEST_F(Recovery, AnUnwritableDeadLetterFileDoesNotStopIngestion) {
  const nlohmann::json clean = run_updater(updater_config(*dir_, models_, events_, "dl-ok"), dir_->file("s-dl-ok.json"));
  ASSERT_FALSE(clean.empty());
  ASSERT_GT(clean["dead_letters"].get<std::uint64_t>(), 8u);
  EXPECT_EQ(clean["counters"]["dead_letter_write_failures"], 0);
  EXPECT_EQ(clean["counters"]["dead_letters_unwritten"], 0);
  EXPECT_TRUE(clean["degraded"].empty());
  write_text(dir_->file("plain-file"), "a regular file where a directory is expected\n");
  struct Case {
    std::string tag, path;
    int err;
  };
  std::vector<Case> cases = {{"dl-notdir", dir_->file("plain-file") + "/dead.ndjson", ENOTDIR}};
  if (::access("/dev/full", W_OK) == 0) cases.push_back({"dl-full", "/dev/full", ENOSPC});
  for (const Case& k : cases) {
    StreamProcessConfig c = updater_config(*dir_, models_, events_, k.tag);
    c.dead_letter.path = k.path;
    const std::string warn_path = dir_->file("warn-" + k.tag + ".txt");
    const std::string log_path = dir_->file("log-" + k.tag + ".txt");
    const std::string stats_path = dir_->file("s-" + k.tag + ".json");
    const int status = in_child([&] {
      UpdaterOptions o = quiet_options();
      o.warn = std::fopen(warn_path.c_str(), "w");
      o.log = std::fopen(log_path.c_str(), "w");
      {
        StreamUpdater updater(c, o);
        std::atomic<bool> stop{false};
        write_text(stats_path, updater.run(stop).dump());
      }
      std::fclose(o.warn);
      std::fclose(o.log);
    });
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << k.tag << " status " << status;
    const nlohmann::json s = nlohmann::json::parse(read_file(stats_path));
    EXPECT_EQ(s["events"], clean["events"]) << k.tag;
    EXPECT_EQ(s["counters"]["lines"], clean["counters"]["lines"]) << k.tag;
    EXPECT_EQ(s["state_digest"], clean["state_digest"]) << k.tag;
    EXPECT_EQ(s["dead_letters"], clean["dead_letters"]) << k.tag;
    EXPECT_EQ(s["counters"]["dead_letters_unwritten"], clean["dead_letters"]) << k.tag;
    EXPECT_GE(s["counters"]["dead_letter_write_failures"].get<std::uint64_t>(), 2u) << k.tag;  // one per checkpoint at least
    EXPECT_EQ(s["counters"]["checkpoint_failures"], 0) << k.tag;
    ASSERT_EQ(s["degraded"].size(), 1u) << s["degraded"].dump();
    const std::string degraded = s["degraded"][0];
    EXPECT_EQ(degraded.rfind("dead-letter writes failing: " + k.path + ": ", 0), 0u) << degraded;
    EXPECT_TRUE(contains(degraded, std::strerror(k.err))) << degraded;
    // Logged once with the path and the reason, not once per bad line or per attempt.
    const std::string warn = read_file(warn_path);
    std::size_t mentions = 0;
    for (std::size_t at = warn.find(k.path); at != std::string::npos; at = warn.find(k.path, at + 1)) ++mentions;
    EXPECT_EQ(mentions, 1u) << warn;
    EXPECT_TRUE(contains(warn, "dead-letter write failed (ingestion goes on") && contains(warn, std::strerror(k.err))) << warn;
    // The final stats line shows the failures.
    const std::string log = read_file(log_path);
    const std::uint64_t failures = s["counters"]["dead_letter_write_failures"].get<std::uint64_t>();
    EXPECT_TRUE(contains(log, "dead_letter_write_failures " + std::to_string(failures) + " DEGRADED")) << log;
    // Every checkpoint records only bytes on disk: none.
    CheckpointStore store(c.checkpoint.dir, 2);
    ASSERT_FALSE(store.list().empty());
    for (const std::string& f : store.list()) EXPECT_EQ(read_checkpoint(f).dead_letter_bytes, 0u) << f;
  }
}

// Killed while the dead-letter path was unusable, restarted once it works: the file then
// holds exactly the dead letters of the lines after the restored checkpoint (those before
// it were never on disk, none is doubled), and the state is the uninterrupted run's.
TEST_F(Recovery, DeadLettersResumeConsistentlyWhenThePathWorksAgain) {
  const nlohmann::json clean = run_updater(updater_config(*dir_, models_, events_, "dl-ref"), dir_->file("s-dl-ref.json"));
  ASSERT_FALSE(clean.empty());
  const std::string parent = dir_->file("dl-later");
  write_text(parent, "not a directory yet\n");
  StreamProcessConfig c = updater_config(*dir_, models_, events_, "dl-later");
  c.dead_letter.path = parent + "/dead.ndjson";
  run_updater(c, dir_->file("s-dl-later.json"), 10000);
  // The newest checkpoint (the resumed run prunes it later): no dead-letter bytes recorded.
  const std::vector<std::string> written = CheckpointStore(c.checkpoint.dir, 2).list();
  ASSERT_FALSE(written.empty());
  const CheckpointRecord restored = read_checkpoint(written.front());
  EXPECT_EQ(restored.dead_letter_bytes, 0u);
  ASSERT_EQ(std::remove(parent.c_str()), 0);
  ASSERT_EQ(::mkdir(parent.c_str(), 0755), 0);
  const nlohmann::json resumed = run_updater(c, dir_->file("s-dl-later.json"));
  EXPECT_EQ(resumed["restored_from"], written.front());
  EXPECT_EQ(resumed["state_digest"], clean["state_digest"]);
  EXPECT_EQ(resumed["dead_letters"], clean["dead_letters"]);
  EXPECT_EQ(resumed["counters"]["dead_letter_write_failures"], 0);
  EXPECT_TRUE(resumed["degraded"].empty());
  std::istringstream all(read_file(dir_->file("dl-dl-ref.ndjson")));
  std::string expected;
  std::size_t before = 0;
  for (std::string l; std::getline(all, l);) {
    if (nlohmann::json::parse(l)["line"].get<std::uint64_t>() > restored.source.line)
      expected += l + "\n";
    else
      ++before;
  }
  EXPECT_GT(before, 0u);
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(read_file(c.dead_letter.path), expected);
}

TEST_F(Recovery, CheckpointOfAnOlderBaselineIsRestoredThenSwapped) {
  StreamProcessConfig c = updater_config(*dir_, models_ + "-swap", events_, "swap");
  std::system(("cp -r '" + models_ + "' '" + c.model.dir + "'").c_str());
  run_updater(c, dir_->file("s-swap.json"), 9000);
  // A new nightly model is published while the updater is down.
  const int status = in_child([&] {
    FactorModel next = load_latest(c.model.dir);
    next.user_factors *= 0.5f;
    write_snapshot(next, c.model.dir, "v2");
  });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const nlohmann::json resumed = run_updater(c, dir_->file("s-swap.json"));
  EXPECT_FALSE(resumed["restored_from"].is_null());
  EXPECT_EQ(resumed["baseline_version"], "v2");
  EXPECT_EQ(resumed["counters"]["swaps"], 1);
  EXPECT_GT(resumed["events"].get<std::uint64_t>(), 23000u);
}

TEST_F(Recovery, ACorruptSnapshotIsRefusedAtStart) {
  const std::string models = models_ + "-bad";
  std::system(("cp -r '" + models_ + "' '" + models + "'").c_str());
  corrupt_byte(models + "/v1/user_factors.npy", 7);
  StreamProcessConfig c = updater_config(*dir_, models, events_, "bad");
  try {
    StreamUpdater updater(c, quiet_options());
    FAIL() << "expected IntegrityError";
  } catch (const IntegrityError& e) {
    EXPECT_NE(std::string(e.what()).find("user_factors.npy"), std::string::npos) << e.what();
  }
}

TEST_F(Recovery, StopFlagFinishesTheEventAndCheckpoints) {
  StreamProcessConfig c = updater_config(*dir_, models_, events_, "stop");
  c.checkpoint.every_events = 0;
  const int status = in_child([&] {
    UpdaterOptions o = quiet_options();
    StreamUpdater updater(c, o);
    std::atomic<bool> stop{true};  // as if SIGTERM arrived at once
    const nlohmann::json stats = updater.run(stop);
    if (stats["stopped_by"] != "signal") std::_Exit(4);
  });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  CheckpointStore store(c.checkpoint.dir, 2);
  EXPECT_EQ(store.list().size(), 1u);
}

}  // namespace
}  // namespace freshrec
