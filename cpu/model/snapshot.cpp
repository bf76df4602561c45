#include "cpu/model/snapshot.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/model/npy.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"
#include "cpu/util/sha256.hpp"
#include "cpu/util/time_format.hpp"
#include "cpu/util/trace.hpp"

namespace freshrec {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kFormatName = "freshrec-snapshot";
constexpr const char* kManifest = "manifest.json";
constexpr const char* kLatest = "LATEST";
constexpr const char* kUserFactors = "user_factors.npy";
constexpr const char* kItemFactors = "item_factors.npy";
constexpr const char* kUserBias = "user_bias.npy";
constexpr const char* kItemBias = "item_bias.npy";
constexpr const char* kUserIds = "user_ids.txt";
constexpr const char* kItemIds = "item_ids.txt";
constexpr const char* kDataFiles[] = {kUserFactors, kItemFactors, kUserBias,
                                      kItemBias,    kUserIds,     kItemIds};

const char* kind_name(ModelKind kind) {
  return kind == ModelKind::kExplicit ? "explicit" : "implicit";
}

bool path_exists(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  throw IoError(path + ": stat failed: " + std::strerror(errno));
}

// Ids in messages: control characters made visible, long ones shortened.
std::string printable_id(const std::string& id) {
  std::string out;
  for (char c : id) {
    if (out.size() > 80) {
      out += "...";
      break;
    }
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else out.push_back(c);
  }
  return "'" + out + "'";
}

// The canonical text the manifest's self-checksum covers: compact dump of every key but
// "manifest_sha256" (keys are sorted by nlohmann::json's std::map, so it is stable).
std::string manifest_body_sha256(json manifest) {
  manifest.erase("manifest_sha256");
  // Strings were checked to be valid UTF-8 when written; a corrupted manifest may hold
  // invalid bytes, which must give a checksum mismatch rather than a JSON exception.
  return sha256_hex(manifest.dump(-1, ' ', false, json::error_handler_t::replace));
}

// True when no value is NaN or +-Inf. Tests the exponent bits branch-free so the
// compiler vectorises it; Eigen's allFinite() goes element by element with early exit
// and was the single largest cost of loading a large snapshot.
bool all_finite(const float* p, std::size_t n) {
  constexpr std::size_t kBlock = 4096;
  for (std::size_t start = 0; start < n; start += kBlock) {
    const std::size_t end = std::min(n, start + kBlock);
    std::uint32_t bad = 0;
    for (std::size_t i = start; i < end; ++i) {
      std::uint32_t bits;
      std::memcpy(&bits, p + i, sizeof bits);
      bad |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (bad) return false;
  }
  return true;
}

// ---------------------------------------------------------------- writing

struct FileEntry {
  std::uint64_t bytes = 0;
  std::string sha256;
};

// A durable output file whose bytes are hashed on the way out, so nothing is read back.
class HashingFile {
 public:
  explicit HashingFile(const std::string& path) : file_(path, /*exclusive=*/true) {}
  void write(const void* data, std::size_t size) {
    file_.write(data, size);
    hash_.update(data, size);
  }
  FileEntry commit() {
    file_.commit();
    return {file_.bytes_written(), hash_.hex_digest()};
  }

 private:
  DurableFile file_;
  Sha256 hash_;
};

FileEntry write_array(const std::string& path, const float* data, std::vector<std::uint64_t> shape) {
  HashingFile f(path);
  const std::string header = npy_header(shape);
  f.write(header.data(), header.size());
  std::uint64_t n = 1;
  for (auto d : shape) n *= d;
  if (n > 0) f.write(data, static_cast<std::size_t>(n) * sizeof(float));
  return f.commit();
}

FileEntry write_bias(const std::string& path, const Eigen::VectorXf& bias, std::int64_t rows) {
  if (bias.size() == rows) return write_array(path, bias.data(), {static_cast<std::uint64_t>(rows)});
  const std::vector<float> zeros(static_cast<std::size_t>(rows), 0.0f);
  return write_array(path, zeros.data(), {static_cast<std::uint64_t>(rows)});
}

FileEntry write_ids(const std::string& path, const IdMap& ids) {
  HashingFile f(path);
  std::string buf;
  buf.reserve(1 << 20);
  for (std::size_t r = 0; r < ids.size(); ++r) {
    buf += ids.id(static_cast<std::uint32_t>(r));
    buf.push_back('\n');
    if (buf.size() >= (1 << 20)) {
      f.write(buf.data(), buf.size());
      buf.clear();
    }
  }
  f.write(buf.data(), buf.size());
  return f.commit();
}

void check_finite(const float* p, std::int64_t rows, std::int64_t cols, const char* what) {
  if (all_finite(p, static_cast<std::size_t>(rows * cols))) return;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      if (!std::isfinite(p[r * cols + c]))
        throw InputError(std::string("write_snapshot: ") + what + " row " + std::to_string(r) +
                         (cols > 1 ? " column " + std::to_string(c) : std::string()) +
                         " is not finite (" + std::to_string(p[r * cols + c]) + ")");
}

void check_ids(const IdMap& ids, std::int64_t rows, const char* what) {
  if (static_cast<std::int64_t>(ids.size()) != rows)
    throw InputError(std::string("write_snapshot: ") + what + " has " + std::to_string(ids.size()) +
                     " ids for " + std::to_string(rows) + " rows");
  for (std::size_t r = 0; r < ids.size(); ++r) {
    const std::string& id = ids.id(static_cast<std::uint32_t>(r));
    if (id.find_first_of("\n\r") != std::string::npos)
      throw InputError(std::string("write_snapshot: ") + what + " id " + printable_id(id) + " (row " +
                       std::to_string(r) + ") holds a line break and cannot be stored one id a line");
  }
}

void check_model(const FactorModel& m) {
  const std::int64_t k = m.item_factors.cols();
  if (k < 1) throw InputError("write_snapshot: model has no factors (item_factors has 0 columns)");
  // A 0-row matrix may be left 0x0 by code that never sized it; its width is moot.
  if (m.user_factors.cols() != k && m.user_factors.rows() > 0)
    throw InputError("write_snapshot: user_factors has " + std::to_string(m.user_factors.cols()) +
                     " columns, item_factors " + std::to_string(k));
  const std::int64_t nu = m.user_factors.rows(), ni = m.item_factors.rows();
  if (nu > std::numeric_limits<std::int32_t>::max() || ni > std::numeric_limits<std::int32_t>::max())
    throw InputError("write_snapshot: more than 2^31-1 users or items");
  if (m.user_bias.size() != 0 && m.user_bias.size() != nu)
    throw InputError("write_snapshot: user_bias has " + std::to_string(m.user_bias.size()) +
                     " entries for " + std::to_string(nu) + " users");
  if (m.item_bias.size() != 0 && m.item_bias.size() != ni)
    throw InputError("write_snapshot: item_bias has " + std::to_string(m.item_bias.size()) +
                     " entries for " + std::to_string(ni) + " items");
  check_ids(m.user_ids, nu, "user_ids");
  check_ids(m.item_ids, ni, "item_ids");
  check_finite(m.user_factors.data(), nu, k, "user_factors");
  check_finite(m.item_factors.data(), ni, k, "item_factors");
  check_finite(m.user_bias.data(), m.user_bias.size(), 1, "user_bias");
  check_finite(m.item_bias.data(), m.item_bias.size(), 1, "item_bias");
  if (!std::isfinite(m.global_bias)) throw InputError("write_snapshot: global_bias is not finite");
  if (!std::isfinite(m.data_cutoff)) throw InputError("write_snapshot: data_cutoff is not finite");
  for (const auto& [key, value] : m.hyperparameters) {
    try {
      (void)json(key).dump();
      (void)json(value).dump();
    } catch (const json::type_error&) {
      // JSON can only carry UTF-8; replacing bytes would silently change the value.
      throw InputError("write_snapshot: hyperparameter " + printable_id(key) + " is not valid UTF-8");
    }
  }
}

// Removes the temporary directory unless the snapshot made it into place.
class TempDirGuard {
 public:
  explicit TempDirGuard(std::string path) : path_(std::move(path)) {}
  ~TempDirGuard() {
    if (armed_) {
      std::error_code ec;  // best effort; a leftover .tmp-* is harmless to readers
      fs::remove_all(path_, ec);
    }
  }
  TempDirGuard(const TempDirGuard&) = delete;
  TempDirGuard& operator=(const TempDirGuard&) = delete;
  void disarm() noexcept { armed_ = false; }

 private:
  std::string path_;
  bool armed_ = true;
};

void make_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0)
    throw IoError(path + ": mkdir failed: " + std::strerror(errno));
}

// ---------------------------------------------------------------- reading

struct Manifest {
  SnapshotInfo info;
  float global_bias = 0.0f;
  std::map<std::string, std::string> hyperparameters;
  std::map<std::string, FileEntry> files;
};

class ManifestChecker {
 public:
  explicit ManifestChecker(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& what) const { throw IntegrityError(path_ + ": " + what); }

  const json& field(const json& obj, const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(std::string("missing key '") + key + "'");
    return *it;
  }
  std::string string_field(const json& obj, const char* key) const {
    const json& v = field(obj, key);
    if (!v.is_string()) fail(std::string("'") + key + "' is not a string");
    return v.get<std::string>();
  }
  double number_field(const json& obj, const char* key) const {
    const json& v = field(obj, key);
    // nlohmann writes NaN/Inf as null, so a non-finite value shows up as "not a number".
    if (!v.is_number()) fail(std::string("'") + key + "' is not a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(std::string("'") + key + "' is not finite");
    return d;
  }
  std::int64_t int_field(const json& obj, const char* key, std::int64_t lo, std::int64_t hi) const {
    const json& v = field(obj, key);
    if (!v.is_number_integer()) fail(std::string("'") + key + "' is not an integer");
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi))
      fail(std::string("'") + key + "' = " + v.dump() + " is out of range [" + std::to_string(lo) +
           ", " + std::to_string(hi) + "]");
    const auto x = v.get<std::int64_t>();
    if (x < lo || x > hi)
      fail(std::string("'") + key + "' = " + std::to_string(x) + " is out of range [" +
           std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }

 private:
  std::string path_;
};

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Manifest parse_manifest(const std::string& dir) {
  const std::string path = join_path(dir, kManifest);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw IntegrityError(dir + ": not a snapshot (no such directory)");
  if (!path_exists(path)) throw IntegrityError(dir + ": not a snapshot (no manifest.json)");
  const std::string text = read_file(path);
  ManifestChecker check(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1E999
    check.fail(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) check.fail("not a JSON object");
  if (check.string_field(j, "format") != kFormatName)
    check.fail("'format' is not \"" + std::string(kFormatName) + "\"");
  Manifest m;
  const auto format_version = check.int_field(j, "format_version", 0, std::numeric_limits<std::int32_t>::max());
  if (format_version != kSnapshotFormatVersion)
    check.fail("unsupported format_version " + std::to_string(format_version) + " (this build reads " +
               std::to_string(kSnapshotFormatVersion) + ")");
  const std::string recorded = check.string_field(j, "manifest_sha256");
  const std::string actual = manifest_body_sha256(j);
  if (recorded != actual)
    check.fail("manifest_sha256 mismatch (expected " + recorded + ", got " + actual + ")");

  m.info.format_version = static_cast<int>(format_version);
  m.info.created_at = check.string_field(j, "created_at");
  m.info.data_cutoff = check.number_field(j, "data_cutoff");
  const std::string kind = check.string_field(j, "model_kind");
  if (kind == "implicit") m.info.kind = ModelKind::kImplicit;
  else if (kind == "explicit") m.info.kind = ModelKind::kExplicit;
  else check.fail("unknown model_kind '" + kind + "'");
  constexpr std::int64_t kMaxRows = std::numeric_limits<std::int32_t>::max();
  m.info.factors = static_cast<int>(check.int_field(j, "factors", 1, 1 << 20));
  m.info.n_users = static_cast<std::int32_t>(check.int_field(j, "n_users", 0, kMaxRows));
  m.info.n_items = static_cast<std::int32_t>(check.int_field(j, "n_items", 0, kMaxRows));
  const double gb = check.number_field(j, "global_bias");
  m.global_bias = static_cast<float>(gb);
  if (!std::isfinite(m.global_bias)) check.fail("'global_bias' overflows float32");

  const json& hp = check.field(j, "hyperparameters");
  if (!hp.is_object()) check.fail("'hyperparameters' is not an object");
  for (auto it = hp.begin(); it != hp.end(); ++it) {
    if (!it.value().is_string()) check.fail("hyperparameter '" + it.key() + "' is not a string");
    m.hyperparameters.emplace(it.key(), it.value().get<std::string>());
  }

  const json& files = check.field(j, "files");
  if (!files.is_object()) check.fail("'files' is not an object");
  for (auto it = files.begin(); it != files.end(); ++it) {
    bool known = false;
    for (const char* name : kDataFiles) known = known || it.key() == name;
    // Only the format's own names: a manifest must not steer the reader to other paths.
    if (!known) check.fail("'files' lists unknown file '" + it.key() + "'");
    if (!it.value().is_object()) check.fail("'files." + it.key() + "' is not an object");
    FileEntry e;
    e.bytes = static_cast<std::uint64_t>(
        check.int_field(it.value(), "bytes", 0, std::numeric_limits<std::int64_t>::max()));
    e.sha256 = check.string_field(it.value(), "sha256");
    if (!is_sha256_hex(e.sha256)) check.fail("'files." + it.key() + ".sha256' is not 64 lowercase hex digits");
    m.files.emplace(it.key(), std::move(e));
  }
  for (const char* name : kDataFiles)
    if (m.files.find(name) == m.files.end()) check.fail(std::string("'files' lacks '") + name + "'");
  return m;
}

// Reads `name` from `dir` and checks it against the manifest's size and sha256.
std::string read_verified(const std::string& dir, const std::string& name, const FileEntry& expect) {
  const std::string path = join_path(dir, name);
  if (!path_exists(path))
    throw IntegrityError(path + ": missing (manifest says " + std::to_string(expect.bytes) + " bytes)");
  std::string bytes = read_file(path);
  if (bytes.size() < expect.bytes)
    throw IntegrityError(path + ": truncated: " + std::to_string(bytes.size()) + " bytes, manifest says " +
                         std::to_string(expect.bytes));
  if (bytes.size() > expect.bytes)
    throw IntegrityError(path + ": size mismatch: " + std::to_string(bytes.size()) +
                         " bytes, manifest says " + std::to_string(expect.bytes));
  const std::string got = sha256_hex(bytes);
  if (got != expect.sha256)
    throw IntegrityError(path + ": sha256 mismatch (expected " + expect.sha256 + ", got " + got + ")");
  return bytes;
}

// Reads a verified .npy into `Dense` (FactorMatrix or VectorXf), checking its shape
// against the manifest and every value for finiteness.
template <class Dense>
Dense load_array(const std::string& dir, const Manifest& m, const char* name, std::vector<std::uint64_t> shape) {
  const std::string path = join_path(dir, name);
  const std::string bytes = read_verified(dir, name, m.files.at(name));
  const NpyLayout layout = parse_npy_layout(bytes, path);
  if (layout.shape != shape) {
    auto text = [](const std::vector<std::uint64_t>& s) {
      std::string t = "(";
      for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
      return t + ")";
    };
    throw IntegrityError(path + ": shape " + text(layout.shape) + " does not match the manifest's " + text(shape));
  }
  Dense out;
  if constexpr (Dense::ColsAtCompileTime == 1) out.resize(static_cast<Eigen::Index>(shape[0]));
  else out.resize(static_cast<Eigen::Index>(shape[0]), static_cast<Eigen::Index>(shape[1]));
  const auto count = static_cast<std::size_t>(out.size());
  if (count > 0) std::memcpy(out.data(), bytes.data() + layout.data_offset, count * sizeof(float));
  if (!all_finite(out.data(), count)) {
    const std::uint64_t cols = shape.size() == 2 ? shape[1] : 1;
    for (std::size_t i = 0; i < count; ++i)
      if (!std::isfinite(out.data()[i]))
        throw IntegrityError(path + ": non-finite value " + std::to_string(out.data()[i]) + " at row " +
                             std::to_string(i / cols) +
                             (shape.size() == 2 ? " column " + std::to_string(i % cols) : std::string()));
  }
  return out;
}

IdMap load_ids(const std::string& dir, const Manifest& m, const char* name, std::int32_t rows) {
  const std::string path = join_path(dir, name);
  const std::string bytes = read_verified(dir, name, m.files.at(name));
  if (!bytes.empty() && bytes.back() != '\n')
    throw IntegrityError(path + ": last line lacks its '\\n'");
  IdMap ids;
  ids.reserve(static_cast<std::size_t>(rows));
  std::size_t pos = 0;
  std::int64_t line = 0;
  while (pos < bytes.size()) {
    const std::size_t end = bytes.find('\n', pos);
    const std::string_view id(bytes.data() + pos, end - pos);
    ++line;
    if (line > rows)
      throw IntegrityError(path + ": more than the manifest's " + std::to_string(rows) + " ids");
    if (id.find('\r') != std::string_view::npos)
      throw IntegrityError(path + ": line " + std::to_string(line) + " holds '\\r'");
    const std::uint32_t index = ids.intern(id);
    if (index + 1 != static_cast<std::uint64_t>(line))
      throw IntegrityError(path + ": duplicate id " + printable_id(std::string(id)) + " on lines " +
                           std::to_string(index + 1) + " and " + std::to_string(line));
    pos = end + 1;
  }
  if (line != rows)
    throw IntegrityError(path + ": " + std::to_string(line) + " ids, manifest says " + std::to_string(rows));
  return ids;
}

}  // namespace

void validate_snapshot_version(const std::string& version) {
  auto bad = [&](const std::string& why) {
    return InputError("snapshot version '" + version + "' " + why);
  };
  if (version.empty()) throw bad("is empty");
  if (version.size() > 128) throw bad("is longer than 128 characters");
  if (version.front() == '.') throw bad("starts with '.' (reserved for temporary directories)");
  if (version == kLatest) throw bad("is reserved (the LATEST pointer file)");
  for (char c : version)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      throw bad("holds a character outside [A-Za-z0-9._-]");
}

SnapshotInfo write_snapshot(const FactorModel& model, const std::string& models_dir,
                            const std::string& version, bool publish, bool overwrite) {
  FRESHREC_TRACE_RANGE("snapshot write");
  if (models_dir.empty()) throw InputError("write_snapshot: models_dir is empty");
  if (!version.empty()) validate_snapshot_version(version);
  check_model(model);

  const double now = wall_clock_epoch_seconds();
  SnapshotInfo info;
  info.created_at = format_iso8601_utc(std::floor(now));
  info.data_cutoff = model.data_cutoff;
  info.kind = model.kind;
  info.factors = model.factors();
  info.n_users = model.n_users();
  info.n_items = model.n_items();
  const std::string cutoff_utc = format_iso8601_utc(model.data_cutoff);

  if (!path_exists(models_dir)) {
    std::error_code ec;
    fs::create_directories(models_dir, ec);
    if (ec) throw IoError(models_dir + ": cannot create directory: " + ec.message());
    fsync_directory(parent_directory(models_dir));
  }

  const bool auto_version = version.empty();
  const std::string base = auto_version ? format_compact_utc(now) : version;
  int suffix = 1;
  auto candidate = [&] { return suffix == 1 ? base : base + "-" + std::to_string(suffix); };
  if (auto_version) {
    while (path_exists(join_path(models_dir, candidate()))) ++suffix;
  } else if (!overwrite && path_exists(join_path(models_dir, version))) {
    throw InputError(join_path(models_dir, version) +
                     ": snapshot version already exists (overwrite not requested)");
  }
  info.version = candidate();

  const std::string tmp = join_path(models_dir, ".tmp-" + info.version + "-" + std::to_string(::getpid()));
  {
    std::error_code ec;
    fs::remove_all(tmp, ec);  // a leftover of a crashed writer that had our pid
  }
  make_directory(tmp);
  TempDirGuard guard(tmp);

  const auto k = static_cast<std::uint64_t>(info.factors);
  const auto nu = static_cast<std::uint64_t>(info.n_users);
  const auto ni = static_cast<std::uint64_t>(info.n_items);
  std::map<std::string, FileEntry> files;
  files[kUserFactors] = write_array(join_path(tmp, kUserFactors), model.user_factors.data(), {nu, k});
  files[kItemFactors] = write_array(join_path(tmp, kItemFactors), model.item_factors.data(), {ni, k});
  files[kUserBias] = write_bias(join_path(tmp, kUserBias), model.user_bias, info.n_users);
  files[kItemBias] = write_bias(join_path(tmp, kItemBias), model.item_bias, info.n_items);
  files[kUserIds] = write_ids(join_path(tmp, kUserIds), model.user_ids);
  files[kItemIds] = write_ids(join_path(tmp, kItemIds), model.item_ids);

  json j;
  j["format"] = kFormatName;
  j["format_version"] = kSnapshotFormatVersion;
  j["created_at"] = info.created_at;
  j["data_cutoff"] = model.data_cutoff;
  j["data_cutoff_utc"] = cutoff_utc;
  j["model_kind"] = kind_name(model.kind);
  j["factors"] = info.factors;
  j["n_users"] = info.n_users;
  j["n_items"] = info.n_items;
  j["global_bias"] = static_cast<double>(model.global_bias);
  j["hyperparameters"] = json::object();
  for (const auto& [key, value] : model.hyperparameters) j["hyperparameters"][key] = value;
  j["files"] = json::object();
  for (const auto& [name, e] : files) j["files"][name] = {{"bytes", e.bytes}, {"sha256", e.sha256}};
  j["manifest_sha256"] = manifest_body_sha256(j);
  write_file_durable(join_path(tmp, kManifest), j.dump(2) + "\n");
  fsync_directory(tmp);

  for (;;) {
    const std::string final_dir = join_path(models_dir, info.version);
    if (rename_no_replace(tmp, final_dir)) break;
    if (auto_version) {  // another writer took the name since we looked
      ++suffix;
      info.version = candidate();
      continue;
    }
    if (!overwrite)
      throw InputError(final_dir + ": snapshot version already exists (overwrite not requested)");
    // Readers see the old directory or the new one, never neither; tmp then holds the old.
    exchange_paths(tmp, final_dir);
    fsync_directory(models_dir);
    break;  // the guard removes tmp, now the previous snapshot
  }
  if (!path_exists(tmp)) guard.disarm();
  fsync_directory(models_dir);
  info.path = join_path(models_dir, info.version);
  if (publish) publish_latest(models_dir, info.version);
  return info;
}

namespace {

SnapshotInfo info_for(const Manifest& m, const std::string& snapshot_dir) {
  SnapshotInfo info = m.info;
  info.path = snapshot_dir;
  fs::path p = fs::path(snapshot_dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "models/v1/"
  info.version = p.filename().string();
  return info;
}

}  // namespace

SnapshotInfo read_snapshot_info(const std::string& snapshot_dir) {
  return info_for(parse_manifest(snapshot_dir), snapshot_dir);
}

FactorModel load_snapshot(const std::string& snapshot_dir, SnapshotInfo* info) {
  FRESHREC_TRACE_RANGE("snapshot load");
  const Manifest m = parse_manifest(snapshot_dir);
  const auto k = static_cast<std::uint64_t>(m.info.factors);
  const auto nu = static_cast<std::uint64_t>(m.info.n_users);
  const auto ni = static_cast<std::uint64_t>(m.info.n_items);

  FactorModel model;
  model.kind = m.info.kind;
  model.global_bias = m.global_bias;
  model.data_cutoff = m.info.data_cutoff;
  model.hyperparameters = m.hyperparameters;
  model.user_factors = load_array<FactorMatrix>(snapshot_dir, m, kUserFactors, {nu, k});
  model.item_factors = load_array<FactorMatrix>(snapshot_dir, m, kItemFactors, {ni, k});
  model.user_bias = load_array<Eigen::VectorXf>(snapshot_dir, m, kUserBias, {nu});
  model.item_bias = load_array<Eigen::VectorXf>(snapshot_dir, m, kItemBias, {ni});
  model.user_ids = load_ids(snapshot_dir, m, kUserIds, m.info.n_users);
  model.item_ids = load_ids(snapshot_dir, m, kItemIds, m.info.n_items);
  if (info != nullptr) *info = info_for(m, snapshot_dir);
  return model;
}

std::string read_latest(const std::string& models_dir) {
  const std::string path = join_path(models_dir, kLatest);
  if (!path_exists(path)) throw InputError(path + ": no LATEST (nothing published yet)");
  std::string text = read_file(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  try {
    validate_snapshot_version(text);
  } catch (const InputError& e) {
    throw IntegrityError(path + ": does not name a valid version (" + e.what() + ")");
  }
  return text;
}

FactorModel load_latest(const std::string& models_dir, SnapshotInfo* info) {
  return load_snapshot(join_path(models_dir, read_latest(models_dir)), info);
}

void publish_latest(const std::string& models_dir, const std::string& version) {
  validate_snapshot_version(version);
  const std::string manifest = join_path(join_path(models_dir, version), kManifest);
  if (!path_exists(manifest))
    throw InputError(manifest + ": cannot publish " + version + " (no manifest.json)");
  replace_file_atomic(join_path(models_dir, kLatest), version + "\n");
}

}  // namespace freshrec
