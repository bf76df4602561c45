#pragma once
/// Checkpoints of the streaming updater: the engine's state bytes, the source offset and
/// the process counters in ONE file, so that state and offset are a single atomic unit.
///
///   <dir>/checkpoint-<seq, 12 digits>.ckpt
///     line 1  "FRESHREC-CHECKPOINT 1"
///     line 2  header JSON: seq, created_at, baseline_version, source offset, counters,
///             dead_letter_bytes, payload_bytes, payload_sha256, header_sha256
///     rest    payload: StreamEngine::save() bytes
///
/// header_sha256 is the sha256 of the header JSON re-serialised compactly without that
/// key; payload_sha256 covers the payload. A file is written as <dir>/.tmp-<name>,
/// fsynced, renamed into place and the directory fsynced; the newest `keep` are kept.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cpu/stream/source.hpp"

namespace freshrec {

/// The checkpoint file format this build writes and reads.
inline constexpr int kCheckpointFormatVersion = 1;

/// Everything one checkpoint holds (host memory).
struct CheckpointRecord {
  std::uint64_t seq = 0;                 ///< increasing number; the newest wins
  std::string created_at;                ///< ISO-8601 UTC wall-clock time (informational)
  std::string baseline_version;          ///< models/<version> the engine state was built on
  SourceOffset source;                   ///< where to resume reading
  std::uint64_t dead_letter_bytes = 0;   ///< the dead-letter file's size at this point
  std::map<std::string, std::uint64_t> counters;  ///< updater counters (lines, parse errors, …)
  std::string engine_state;              ///< StreamEngine::save() bytes
  std::string path;                      ///< the file it was read from / written to
};

/// A directory of checkpoints.
class CheckpointStore {
 public:
  /// Creates `dir` when missing and removes leftover temporary files of interrupted
  /// writers. `keep` >= 1. Throws IoError when the directory cannot be created.
  CheckpointStore(std::string dir, int keep);

  /// Writes `record` (its seq is assigned: one more than the newest file) atomically and
  /// durably, then deletes all but the newest `keep`. Returns the path written.
  std::string write(CheckpointRecord& record);

  /// The checkpoint files, newest first.
  std::vector<std::string> list() const;

  /// The newest checkpoint that verifies. Each newer one that fails is reported through
  /// `refused` ("<file>: payload sha256 mismatch (expected …, got …)"). nullopt when
  /// none is valid (or there is none).
  std::optional<CheckpointRecord> load_newest_valid(std::vector<std::string>* refused) const;

  const std::string& dir() const noexcept { return dir_; }

 private:
  std::string dir_;
  int keep_;
};

/// Reads and fully verifies one checkpoint file. Throws IntegrityError naming the file
/// and what is wrong (bad magic, header checksum, payload sha256 mismatch, truncation),
/// IoError when it cannot be read.
CheckpointRecord read_checkpoint(const std::string& path);

}  // namespace freshrec
