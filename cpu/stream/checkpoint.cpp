#include "cpu/stream/checkpoint.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"
#include "cpu/util/sha256.hpp"
#include "cpu/util/time_format.hpp"

namespace freshrec {
namespace {

constexpr const char* kMagic = "FRESHREC-CHECKPOINT 1";
constexpr const char* kPrefix = "checkpoint-";
constexpr const char* kSuffix = ".ckpt";

bool parse_seq(const std::string& name, std::uint64_t& seq) {
  const std::size_t p = std::strlen(kPrefix), s = std::strlen(kSuffix);
  if (name.size() <= p + s || name.compare(0, p, kPrefix) != 0 || name.compare(name.size() - s, s, kSuffix) != 0)
    return false;
  const std::string digits = name.substr(p, name.size() - p - s);
  // At most 18 digits: std::stoull cannot overflow and seq + 1 never wraps to 0 (a stray
  // "checkpoint-18446744073709551615.ckpt" made the next checkpoint 0, pruned at once).
  if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  seq = std::stoull(digits);
  return true;
}

std::string file_name(std::uint64_t seq) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%012llu%s", kPrefix, static_cast<unsigned long long>(seq), kSuffix);
  return buf;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (const dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  return names;
}

nlohmann::json offset_to_json(const SourceOffset& o) {
  nlohmann::json j = {{"byte_offset", o.byte_offset}, {"line", o.line},
                      {"device", o.device},           {"inode", o.inode},
                      {"fingerprint", o.fingerprint}, {"fingerprint_bytes", o.fingerprint_bytes}};
  // Only partitioned sources write the key, so file checkpoints stay byte-identical.
  if (!o.partitions.empty()) j["partitions"] = o.partitions;
  return j;
}

// nlohmann converts a double to an integer type with a plain cast (undefined beyond the
// type's range) and wraps a negative number into an unsigned one: every integer field of
// the header is checked to be an integer of the right sign first, and named when not.
void check_integer(const nlohmann::json& v, const std::string& key, bool is_unsigned, const std::string& path) {
  if (is_unsigned ? !v.is_number_unsigned() : !v.is_number_integer())
    throw IntegrityError(path + ": checkpoint header field \"" + key + "\" is not " +
                         (is_unsigned ? "a non-negative integer" : "an integer") + ": " + v.dump());
}

std::uint64_t get_u64(const nlohmann::json& j, const char* key, const std::string& path) {
  const nlohmann::json& v = j.at(key);
  check_integer(v, key, true, path);
  return v.get<std::uint64_t>();
}

SourceOffset offset_from_json(const nlohmann::json& j, const std::string& path) {
  SourceOffset o;
  o.byte_offset = get_u64(j, "byte_offset", path);
  o.line = get_u64(j, "line", path);
  o.device = get_u64(j, "device", path);
  o.inode = get_u64(j, "inode", path);
  o.fingerprint = j.at("fingerprint").get<std::string>();
  o.fingerprint_bytes = get_u64(j, "fingerprint_bytes", path);
  if (j.contains("partitions")) {
    for (const auto& [key, v] : j.at("partitions").items()) check_integer(v, "partitions." + key, false, path);
    o.partitions = j.at("partitions").get<std::map<std::string, std::int64_t>>();
  }
  return o;
}

}  // namespace

CheckpointStore::CheckpointStore(std::string dir, int keep) : dir_(std::move(dir)), keep_(std::max(1, keep)) {
  if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST)
    throw IoError(dir_ + ": cannot create checkpoint directory: " + std::strerror(errno));
  struct stat st {};
  if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw IoError(dir_ + ": checkpoint path is not a directory");
  // A writer killed mid-write leaves .tmp-*; it was never a checkpoint.
  for (const std::string& name : entries(dir_))
    if (name.rfind(".tmp-", 0) == 0) ::unlink(join_path(dir_, name).c_str());
}

std::vector<std::string> CheckpointStore::list() const {
  std::vector<std::pair<std::uint64_t, std::string>> found;
  for (const std::string& name : entries(dir_)) {
    std::uint64_t seq = 0;
    if (parse_seq(name, seq)) found.emplace_back(seq, join_path(dir_, name));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> paths;
  for (auto& f : found) paths.push_back(std::move(f.second));
  return paths;
}

std::string CheckpointStore::write(CheckpointRecord& record) {
  std::uint64_t newest = 0;
  for (const std::string& name : entries(dir_)) {
    std::uint64_t seq = 0;
    if (parse_seq(name, seq)) newest = std::max(newest, seq);
  }
  record.seq = newest + 1;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  record.created_at = format_iso8601_utc(now);

  nlohmann::json header = {{"format", kCheckpointFormatVersion},
                           {"seq", record.seq},
                           {"created_at", record.created_at},
                           {"baseline_version", record.baseline_version},
                           {"source", offset_to_json(record.source)},
                           {"dead_letter_bytes", record.dead_letter_bytes},
                           {"counters", record.counters},
                           {"payload_bytes", record.engine_state.size()},
                           {"payload_sha256", sha256_hex(record.engine_state)}};
  header["header_sha256"] = sha256_hex(header.dump());

  const std::string name = file_name(record.seq);
  const std::string tmp = join_path(dir_, ".tmp-" + name);
  const std::string path = join_path(dir_, name);
  {
    DurableFile out(tmp, /*exclusive=*/false);
    out.write(std::string(kMagic) + "\n" + header.dump() + "\n");
    out.write(record.engine_state);
    out.commit();
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw IoError(path + ": cannot rename checkpoint into place: " + std::strerror(errno));
  fsync_directory(dir_);
  record.path = path;

  // Prune only after the new one is durable: a crash here leaves one too many, never too few.
  const std::vector<std::string> all = list();
  for (std::size_t i = static_cast<std::size_t>(keep_); i < all.size(); ++i) ::unlink(all[i].c_str());
  if (all.size() > static_cast<std::size_t>(keep_)) fsync_directory(dir_);
  return path;
}

CheckpointRecord read_checkpoint(const std::string& path) {
  const std::string bytes = read_file(path);
  const std::size_t magic_end = bytes.find('\n');
  if (magic_end == std::string::npos || bytes.compare(0, magic_end, kMagic) != 0)
    throw IntegrityError(path + ": not a freshrec checkpoint (bad magic line)");
  const std::size_t header_end = bytes.find('\n', magic_end + 1);
  if (header_end == std::string::npos) throw IntegrityError(path + ": truncated checkpoint (no header line)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + static_cast<std::ptrdiff_t>(magic_end + 1),
                                   bytes.begin() + static_cast<std::ptrdiff_t>(header_end));
  } catch (const nlohmann::json::exception& e) {
    throw IntegrityError(path + ": checkpoint header is not valid JSON: " + e.what());
  }
  if (!header.is_object() || !header.contains("header_sha256") || !header["header_sha256"].is_string())
    throw IntegrityError(path + ": checkpoint header has no header_sha256");
  const std::string expected_header = header["header_sha256"].get<std::string>();
  nlohmann::json bare = header;
  bare.erase("header_sha256");
  const std::string got_header = sha256_hex(bare.dump());
  if (got_header != expected_header)
    throw IntegrityError(path + ": header sha256 mismatch (expected " + expected_header + ", got " + got_header + ")");

  CheckpointRecord record;
  try {
    if (header.at("format") != kCheckpointFormatVersion)
      throw IntegrityError(path + ": checkpoint format " + header.at("format").dump() + " is not " +
                           std::to_string(kCheckpointFormatVersion));
    record.seq = get_u64(header, "seq", path);
    record.created_at = header.at("created_at").get<std::string>();
    record.baseline_version = header.at("baseline_version").get<std::string>();
    record.source = offset_from_json(header.at("source"), path);
    record.dead_letter_bytes = get_u64(header, "dead_letter_bytes", path);
    for (const auto& [key, v] : header.at("counters").items()) check_integer(v, "counters." + key, true, path);
    record.counters = header.at("counters").get<std::map<std::string, std::uint64_t>>();
    const auto payload_bytes = get_u64(header, "payload_bytes", path);
    const std::string expected = header.at("payload_sha256").get<std::string>();
    const std::size_t start = header_end + 1;
    if (bytes.size() - start != payload_bytes)
      throw IntegrityError(path + ": payload is " + std::to_string(bytes.size() - start) + " bytes, header says " +
                           std::to_string(payload_bytes) + " (truncated or extended)");
    record.engine_state = bytes.substr(start);
    const std::string got = sha256_hex(record.engine_state);
    if (got != expected)
      throw IntegrityError(path + ": payload sha256 mismatch (expected " + expected + ", got " + got + ")");
  } catch (const nlohmann::json::exception& e) {
    throw IntegrityError(path + ": checkpoint header field missing or of the wrong type: " + e.what());
  }
  record.path = path;
  return record;
}

std::optional<CheckpointRecord> CheckpointStore::load_newest_valid(std::vector<std::string>* refused) const {
  for (const std::string& path : list()) {
    try {
      return read_checkpoint(path);
    } catch (const IntegrityError& e) {
      if (refused) refused->push_back(e.what());
    } catch (const IoError& e) {
      if (refused) refused->push_back(e.what());
    }
  }
  return std::nullopt;
}

}  // namespace freshrec
