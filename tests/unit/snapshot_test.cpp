// Snapshot format: round trip, LATEST, atomic publish, and refusal of every kind of
// damage (flipped byte, truncation, missing or garbage manifest, NaN written on purpose).
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cpu/model/factor_model.hpp"
#include "cpu/model/npy.hpp"
#include "cpu/model/snapshot.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"
#include "cpu/util/sha256.hpp"
#include "cpu/util/time_format.hpp"

namespace freshrec {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

FactorModel make_model(int n_users, int n_items, int k, ModelKind kind, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  FactorModel m;
  m.kind = kind;
  m.user_factors.resize(n_users, k);
  m.item_factors.resize(n_items, k);
  for (Eigen::Index i = 0; i < m.user_factors.size(); ++i) m.user_factors.data()[i] = normal(rng);
  for (Eigen::Index i = 0; i < m.item_factors.size(); ++i) m.item_factors.data()[i] = normal(rng);
  m.user_bias = Eigen::VectorXf::Zero(n_users);
  m.item_bias = Eigen::VectorXf::Zero(n_items);
  if (kind == ModelKind::kExplicit) {
    for (int u = 0; u < n_users; ++u) m.user_bias[u] = normal(rng);
    for (int i = 0; i < n_items; ++i) m.item_bias[i] = normal(rng);
    m.global_bias = 3.5299999713897705f;
  }
  for (int u = 0; u < n_users; ++u) m.user_ids.intern("user-" + std::to_string(seed) + "-" + std::to_string(u));
  // Item ids with spaces, tabs, quotes and UTF-8: anything but a line break is storable.
  for (int i = 0; i < n_items; ++i)
    m.item_ids.intern(i % 3 == 0 ? "sku " + std::to_string(i) + "\t\"x\"" : "art\xc3\xad" "culo-" + std::to_string(i));
  m.data_cutoff = 1700000000.25;
  m.hyperparameters = {{"alpha", "40"}, {"reg", "0.01"}, {"solver", "cg"}, {"seed", std::to_string(seed)}};
  return m;
}

void expect_same_model(const FactorModel& a, const FactorModel& b) {
  EXPECT_EQ(a.kind, b.kind);
  ASSERT_EQ(a.user_factors.rows(), b.user_factors.rows());
  ASSERT_EQ(a.user_factors.cols(), b.user_factors.cols());
  ASSERT_EQ(a.item_factors.rows(), b.item_factors.rows());
  ASSERT_EQ(a.item_factors.cols(), b.item_factors.cols());
  EXPECT_TRUE((a.user_factors.array() == b.user_factors.array()).all());
  EXPECT_TRUE((a.item_factors.array() == b.item_factors.array()).all());
  ASSERT_EQ(a.user_bias.size(), b.user_bias.size());
  ASSERT_EQ(a.item_bias.size(), b.item_bias.size());
  EXPECT_TRUE((a.user_bias.array() == b.user_bias.array()).all());
  EXPECT_TRUE((a.item_bias.array() == b.item_bias.array()).all());
  EXPECT_EQ(a.global_bias, b.global_bias);
  EXPECT_EQ(a.data_cutoff, b.data_cutoff);
  EXPECT_EQ(a.hyperparameters, b.hyperparameters);
  ASSERT_EQ(a.user_ids.size(), b.user_ids.size());
  ASSERT_EQ(a.item_ids.size(), b.item_ids.size());
  for (std::uint32_t r = 0; r < a.user_ids.size(); ++r) EXPECT_EQ(a.user_ids.id(r), b.user_ids.id(r));
  for (std::uint32_t r = 0; r < a.item_ids.size(); ++r) EXPECT_EQ(a.item_ids.id(r), b.item_ids.id(r));
}

std::string slurp(const std::string& path) { return read_file(path); }

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Runs `fn`, expecting an exception of type E whose message holds every one of `parts`.
template <class E>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning '" << parts.front() << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nlacks: " << p;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// Rewrites the manifest through `edit` and re-seals it the way the writer does, so a
// test can store deliberately bad content that passes the checksums.
void reseal_manifest(const std::string& dir, const std::function<void(json&)>& edit) {
  const std::string path = dir + "/manifest.json";
  json j = json::parse(slurp(path));
  edit(j);
  j.erase("manifest_sha256");
  j["manifest_sha256"] = sha256_hex(j.dump());
  spit(path, j.dump(2) + "\n");
}

// Replaces a data file by `bytes` and records its new size and checksum in the manifest.
void replace_sealed(const std::string& dir, const std::string& name, const std::string& bytes) {
  spit(dir + "/" + name, bytes);
  reseal_manifest(dir, [&](json& j) {
    j["files"][name]["bytes"] = bytes.size();
    j["files"][name]["sha256"] = sha256_hex(bytes);
  });
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/freshrec-snapshot-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    models_ = root_ + "/models";  // does not exist yet: the writer creates it
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string root_;
  std::string models_;
};

// ------------------------------------------------------------------ round trip

TEST_F(SnapshotTest, RoundTripKeepsEveryField) {
  const FactorModel m = make_model(37, 23, 8, ModelKind::kExplicit, 1);
  const SnapshotInfo info = write_snapshot(m, models_, "v1");
  EXPECT_EQ(info.version, "v1");
  EXPECT_EQ(info.path, models_ + "/v1");
  EXPECT_TRUE(std::regex_match(info.created_at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << info.created_at;

  SnapshotInfo loaded_info;
  const FactorModel back = load_snapshot(models_ + "/v1", &loaded_info);
  expect_same_model(m, back);
  EXPECT_EQ(loaded_info.version, "v1");
  EXPECT_EQ(loaded_info.created_at, info.created_at);
  EXPECT_EQ(loaded_info.data_cutoff, 1700000000.25);
  EXPECT_EQ(loaded_info.kind, ModelKind::kExplicit);
  EXPECT_EQ(loaded_info.factors, 8);
  EXPECT_EQ(loaded_info.n_users, 37);
  EXPECT_EQ(loaded_info.n_items, 23);
  EXPECT_EQ(loaded_info.format_version, kSnapshotFormatVersion);

  // The manifest is readable by anyone: sizes and checksums match the files on disk.
  const json j = json::parse(slurp(models_ + "/v1/manifest.json"));
  EXPECT_EQ(j["format_version"], 1);
  EXPECT_EQ(j["model_kind"], "explicit");
  EXPECT_EQ(j["data_cutoff_utc"], "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(j["hyperparameters"]["solver"], "cg");
  ASSERT_EQ(j["files"].size(), 6u);
  for (const auto& [name, entry] : j["files"].items()) {
    const std::string path = models_ + "/v1/" + name;
    EXPECT_EQ(entry["bytes"].get<std::uint64_t>(), fs::file_size(path)) << name;
    EXPECT_EQ(entry["sha256"].get<std::string>(), sha256_file_hex(path)) << name;
  }
  // Ids are stored one a line in row order.
  std::istringstream ids(slurp(models_ + "/v1/user_ids.txt"));
  std::string line;
  for (std::uint32_t r = 0; std::getline(ids, line); ++r) EXPECT_EQ(line, m.user_ids.id(r));
  EXPECT_EQ(read_snapshot_info(models_ + "/v1/").version, "v1");
}

TEST_F(SnapshotTest, ImplicitModelWithUnsizedBiasesLoadsZeros) {
  FactorModel m = make_model(5, 4, 3, ModelKind::kImplicit, 2);
  m.user_bias.resize(0);
  m.item_bias.resize(0);
  write_snapshot(m, models_, "imp");
  const FactorModel back = load_snapshot(models_ + "/imp");
  EXPECT_EQ(back.kind, ModelKind::kImplicit);
  EXPECT_TRUE(back.user_bias.isZero(0));
  EXPECT_TRUE(back.item_bias.isZero(0));
  EXPECT_EQ(back.user_bias.size(), 5);
  EXPECT_EQ(back.item_bias.size(), 4);
  EXPECT_TRUE((back.item_factors.array() == m.item_factors.array()).all());
}

TEST_F(SnapshotTest, EmptyCatalogueRoundTrips) {
  FactorModel m = make_model(0, 3, 4, ModelKind::kImplicit, 3);
  write_snapshot(m, models_, "empty-users");
  const FactorModel back = load_snapshot(models_ + "/empty-users");
  EXPECT_EQ(back.n_users(), 0);
  EXPECT_EQ(back.n_items(), 3);
  EXPECT_EQ(back.factors(), 4);
}

// ------------------------------------------------------------------ versions and LATEST

TEST_F(SnapshotTest, DefaultVersionIsUtcStampWithSuffixWhenTaken) {
  const FactorModel m = make_model(4, 4, 2, ModelKind::kImplicit, 4);
  const SnapshotInfo a = write_snapshot(m, models_);
  EXPECT_TRUE(std::regex_match(a.version, std::regex(R"(\d{8}T\d{6}Z)"))) << a.version;
  // Take the stamps of the next few seconds so the next default name must be suffixed.
  const double now = wall_clock_epoch_seconds();
  for (int d = -1; d <= 10; ++d) fs::create_directories(models_ + "/" + format_compact_utc(now + d));
  const SnapshotInfo b = write_snapshot(m, models_);
  EXPECT_TRUE(std::regex_match(b.version, std::regex(R"(\d{8}T\d{6}Z-2)"))) << b.version;
  EXPECT_EQ(read_latest(models_), b.version);
  expect_same_model(m, load_latest(models_));
}

TEST_F(SnapshotTest, LatestPointsToNewestAndCanRollBack) {
  const FactorModel m1 = make_model(6, 5, 3, ModelKind::kExplicit, 5);
  const FactorModel m2 = make_model(7, 5, 3, ModelKind::kExplicit, 6);
  write_snapshot(m1, models_, "v1");
  EXPECT_EQ(read_latest(models_), "v1");
  write_snapshot(m2, models_, "v2");
  EXPECT_EQ(read_latest(models_), "v2");
  EXPECT_EQ(slurp(models_ + "/LATEST"), "v2\n");
  SnapshotInfo info;
  expect_same_model(m2, load_latest(models_, &info));
  EXPECT_EQ(info.version, "v2");

  // Publishing twice keeps the old version's directory intact and loadable.
  expect_same_model(m1, load_snapshot(models_ + "/v1"));
  publish_latest(models_, "v1");
  expect_same_model(m1, load_latest(models_));

  // An unpublished write leaves LATEST alone.
  write_snapshot(m2, models_, "v3", /*publish_latest=*/false);
  EXPECT_EQ(read_latest(models_), "v1");
  expect_error<InputError>([&] { publish_latest(models_, "nope"); }, {"nope", "no manifest.json"});
  // No temporary files are left next to the versions.
  EXPECT_EQ(dir_entries(models_), (std::vector<std::string>{"LATEST", "v1", "v2", "v3"}));
}

TEST_F(SnapshotTest, ExistingVersionIsRefusedUnlessOverwrite) {
  const FactorModel m1 = make_model(6, 5, 3, ModelKind::kImplicit, 7);
  const FactorModel m2 = make_model(9, 8, 3, ModelKind::kImplicit, 8);
  write_snapshot(m1, models_, "v1");
  expect_error<InputError>([&] { write_snapshot(m2, models_, "v1"); }, {"v1", "already exists"});
  expect_same_model(m1, load_snapshot(models_ + "/v1"));
  write_snapshot(m2, models_, "v1", true, /*overwrite=*/true);
  expect_same_model(m2, load_latest(models_));
  EXPECT_EQ(dir_entries(models_), (std::vector<std::string>{"LATEST", "v1"}));
}

TEST_F(SnapshotTest, InterruptedWriterDoesNotAffectLoadLatest) {
  const FactorModel m = make_model(6, 5, 3, ModelKind::kImplicit, 9);
  write_snapshot(m, models_, "v1");
  // What a writer killed mid-way leaves: a temporary dir with partial files, no manifest.
  const std::string tmp = models_ + "/.tmp-v2-99999";
  fs::create_directories(tmp);
  spit(tmp + "/user_factors.npy", "\x93NUMPY partial");
  spit(tmp + "/item_ids.txt", "a\nb\n");
  expect_same_model(m, load_latest(models_));
  // A later writer is not confused by the leftover either.
  const FactorModel m2 = make_model(3, 3, 3, ModelKind::kImplicit, 10);
  write_snapshot(m2, models_, "v2");
  expect_same_model(m2, load_latest(models_));
  expect_same_model(m, load_snapshot(models_ + "/v1"));
}

TEST_F(SnapshotTest, LatestMissingOrGarbage) {
  expect_error<InputError>([&] { read_latest(models_); }, {"LATEST", "nothing published"});
  fs::create_directories(models_);
  spit(models_ + "/LATEST", "../../etc\n");
  expect_error<IntegrityError>([&] { load_latest(models_); }, {"LATEST", "valid version"});
  spit(models_ + "/LATEST", "ghost\n");
  expect_error<IntegrityError>([&] { load_latest(models_); }, {"ghost", "not a snapshot"});
}

// ------------------------------------------------------------------ writer refusals

TEST_F(SnapshotTest, WriterRefusesBadModelsAndNames) {
  const FactorModel good = make_model(4, 4, 2, ModelKind::kImplicit, 11);
  write_snapshot(good, models_, "v1");

  FactorModel with_nan = good;
  with_nan.item_factors(2, 1) = std::numeric_limits<float>::quiet_NaN();
  expect_error<InputError>([&] { write_snapshot(with_nan, models_, "v2"); }, {"item_factors", "row 2", "not finite"});
  FactorModel with_inf = good;
  with_inf.global_bias = std::numeric_limits<float>::infinity();
  expect_error<InputError>([&] { write_snapshot(with_inf, models_, "v2"); }, {"global_bias"});

  FactorModel newline_id = good;
  newline_id.user_ids = IdMap();
  for (const char* id : {"a", "b\nc", "d", "e"}) newline_id.user_ids.intern(id);
  expect_error<InputError>([&] { write_snapshot(newline_id, models_, "v2"); }, {"'b\\nc'", "line break"});
  FactorModel cr_id = good;
  cr_id.item_ids = IdMap();
  for (const char* id : {"a", "b", "c\r", "d"}) cr_id.item_ids.intern(id);
  expect_error<InputError>([&] { write_snapshot(cr_id, models_, "v2"); }, {"'c\\r'"});

  FactorModel short_ids = good;
  short_ids.item_ids = IdMap();
  short_ids.item_ids.intern("only");
  expect_error<InputError>([&] { write_snapshot(short_ids, models_, "v2"); }, {"item_ids", "1 ids for 4 rows"});

  for (const char* bad : {".hidden", "LATEST", "a/b", "../x", "sp ace"})
    expect_error<InputError>([&] { write_snapshot(good, models_, bad); }, {"snapshot version"});

  // Nothing from the refused writes reached the models directory.
  EXPECT_EQ(dir_entries(models_), (std::vector<std::string>{"LATEST", "v1"}));
  EXPECT_EQ(read_latest(models_), "v1");
}

// ------------------------------------------------------------------ reader refusals

class CorruptionTest : public SnapshotTest {
 protected:
  void SetUp() override {
    SnapshotTest::SetUp();
    model_ = make_model(11, 9, 4, ModelKind::kExplicit, 12);
    write_snapshot(model_, models_, "v1");
    dir_ = models_ + "/v1";
  }
  FactorModel model_;
  std::string dir_;
};

TEST_F(CorruptionTest, FlippedByteInAnyDataFileIsRefusedNamingIt) {
  for (const char* name : {"user_factors.npy", "item_factors.npy", "user_bias.npy", "item_bias.npy",
                           "user_ids.txt", "item_ids.txt"}) {
    SCOPED_TRACE(name);
    const std::string path = dir_ + "/" + name;
    const std::string original = slurp(path);
    std::string damaged = original;
    damaged[damaged.size() - 2] ^= 0x01;  // inside the data, past any header
    spit(path, damaged);
    expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {name, "sha256 mismatch (expected "});
    expect_error<IntegrityError>([&] { load_latest(models_); }, {name});
    spit(path, original);
    expect_same_model(model_, load_snapshot(dir_));
  }
}

TEST_F(CorruptionTest, TruncatedOrGrownFileIsRefused) {
  const std::string path = dir_ + "/item_factors.npy";
  const std::string original = slurp(path);
  spit(path, original.substr(0, original.size() - 4));
  expect_error<IntegrityError>([&] { load_snapshot(dir_); },
                               {"item_factors.npy", "truncated: " + std::to_string(original.size() - 4) +
                                                        " bytes, manifest says " + std::to_string(original.size())});
  spit(path, original + "xx");
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"item_factors.npy", "size mismatch"});
  ASSERT_EQ(::truncate(path.c_str(), 0), 0);
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"item_factors.npy", "truncated: 0 bytes"});
  fs::remove(path);
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"item_factors.npy", "missing"});
}

TEST_F(CorruptionTest, MissingOrGarbageManifestIsRefused) {
  const std::string manifest = dir_ + "/manifest.json";
  const std::string original = slurp(manifest);
  spit(manifest, "{\"format\": \"freshrec-snapshot\", \"format_version\": 1, \"fil");
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"manifest.json", "not valid JSON"});
  spit(manifest, "\x7f" "ELF garbage \xff\xfe");
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"manifest.json", "not valid JSON"});
  spit(manifest, "[1, 2, 3]");
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"manifest.json", "not a JSON object"});

  // A bit flip in a value no data file covers is caught by the manifest's own checksum.
  std::string flipped = original;
  const auto at = flipped.find("\"global_bias\": 3.5");
  ASSERT_NE(at, std::string::npos);
  flipped[at + 15] = '4';
  spit(manifest, flipped);
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"manifest.json", "manifest_sha256 mismatch"});

  fs::remove(manifest);
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"not a snapshot (no manifest.json)"});
  expect_error<IntegrityError>([&] { load_latest(models_); }, {"not a snapshot (no manifest.json)"});
  spit(manifest, original);
  expect_same_model(model_, load_latest(models_));
}

TEST_F(CorruptionTest, StructurallyWrongManifestIsRefused) {
  const std::string original = slurp(dir_ + "/manifest.json");
  auto with = [&](const std::function<void(json&)>& edit, const std::vector<std::string>& parts) {
    spit(dir_ + "/manifest.json", original);
    reseal_manifest(dir_, edit);
    expect_error<IntegrityError>([&] { load_snapshot(dir_); }, parts);
  };
  with([](json& j) { j["format_version"] = 2; }, {"unsupported format_version 2"});
  with([](json& j) { j["format"] = "something-else"; }, {"'format'"});
  with([](json& j) { j["n_users"] = 12; }, {"user_factors.npy", "shape (11, 4)", "(12, 4)"});
  with([](json& j) { j["factors"] = 5; }, {"user_factors.npy", "shape (11, 4)"});
  with([](json& j) { j["factors"] = 0; }, {"'factors' = 0 is out of range"});
  with([](json& j) { j["n_items"] = -1; }, {"'n_items'"});
  with([](json& j) { j["model_kind"] = "bpr"; }, {"unknown model_kind 'bpr'"});
  with([](json& j) { j["global_bias"] = nullptr; }, {"'global_bias' is not a number"});
  with([](json& j) { j.erase("data_cutoff"); }, {"missing key 'data_cutoff'"});
  with([](json& j) { j["files"].erase("item_ids.txt"); }, {"lacks 'item_ids.txt'"});
  with([](json& j) { j["files"]["../../etc/passwd"] = j["files"]["item_ids.txt"]; }, {"unknown file"});
  with([](json& j) { j["files"]["user_bias.npy"]["sha256"] = "XYZ"; }, {"user_bias.npy.sha256"});
  with([](json& j) { j["hyperparameters"]["alpha"] = 40; }, {"hyperparameter 'alpha'"});
}

TEST_F(CorruptionTest, NonFiniteValueWrittenDeliberatelyIsRefused) {
  // A NaN stored with a matching checksum: only the value check can catch it.
  FactorMatrix f = model_.user_factors;
  f(3, 2) = std::numeric_limits<float>::quiet_NaN();
  const std::string npy_path = root_ + "/nan.npy";
  write_npy(npy_path, f.data(), {11, 4});
  replace_sealed(dir_, "user_factors.npy", slurp(npy_path));
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"user_factors.npy", "non-finite", "row 3 column 2"});

  Eigen::VectorXf b = model_.item_bias;
  b[5] = -std::numeric_limits<float>::infinity();
  fs::remove(npy_path);
  write_npy(npy_path, b.data(), {9});
  write_snapshot(model_, models_, "v2");
  replace_sealed(models_ + "/v2", "item_bias.npy", slurp(npy_path));
  expect_error<IntegrityError>([&] { load_snapshot(models_ + "/v2"); }, {"item_bias.npy", "non-finite", "row 5"});
}

TEST_F(CorruptionTest, BadIdFilesWrittenDeliberatelyAreRefused) {
  std::string ids;
  for (int u = 0; u < 11; ++u) ids += (u == 7 ? std::string("user-12-2") : "user-12-" + std::to_string(u)) + "\n";
  replace_sealed(dir_, "user_ids.txt", ids);
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"user_ids.txt", "duplicate id 'user-12-2'", "lines 3 and 8"});
  ids.clear();
  for (int u = 0; u < 10; ++u) ids += "u" + std::to_string(u) + "\n";
  replace_sealed(dir_, "user_ids.txt", ids);
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"user_ids.txt", "10 ids, manifest says 11"});
  replace_sealed(dir_, "user_ids.txt", ids + "last-without-newline");
  expect_error<IntegrityError>([&] { load_snapshot(dir_); }, {"user_ids.txt", "lacks its '\\n'"});
}

// ------------------------------------------------------------------ npy, sha256, time

TEST(Npy, HeaderFollowsFormat10) {
  for (const std::vector<std::uint64_t>& shape :
       {std::vector<std::uint64_t>{5}, {3, 4}, {0, 64}, {123456789, 1024}}) {
    const std::string h = npy_header(shape);
    EXPECT_EQ(h.size() % 64, 0u);
    EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const std::size_t len = static_cast<unsigned char>(h[8]) | static_cast<unsigned char>(h[9]) << 8;
    EXPECT_EQ(len + 10, h.size());
    EXPECT_EQ(h.back(), '\n');
    EXPECT_NE(h.find("'descr': '<f4'"), std::string::npos);
    EXPECT_NE(h.find("'fortran_order': False"), std::string::npos);
  }
  EXPECT_NE(npy_header({5}).find("'shape': (5,)"), std::string::npos);
  EXPECT_NE(npy_header({3, 4}).find("'shape': (3, 4)"), std::string::npos);
}

TEST(Npy, ParseRoundTripAndRefusals) {
  const std::vector<float> v = {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f};
  auto image = [&](const std::vector<std::uint64_t>& shape) {
    return npy_header(shape) + std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  };
  const NpyArray a = parse_npy(image({2, 3}), "a.npy");
  EXPECT_EQ(a.shape, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(a.data, v);
  EXPECT_EQ(parse_npy(image({6}), "b.npy").shape, (std::vector<std::uint64_t>{6}));

  std::string s = image({2, 3});
  expect_error<IntegrityError>([&] { parse_npy(s.substr(0, s.size() - 1), "t.npy"); }, {"t.npy", "truncated"});
  expect_error<IntegrityError>([&] { parse_npy(s + "x", "t.npy"); }, {"t.npy", "trailing"});
  expect_error<IntegrityError>([&] { parse_npy(image({2, 2}), "t.npy"); }, {"needs 16 data bytes"});
  std::string big_endian = s;
  big_endian.replace(big_endian.find("<f4"), 3, ">f4");
  expect_error<IntegrityError>([&] { parse_npy(big_endian, "t.npy"); }, {"dtype '>f4'"});
  std::string fortran = s;
  fortran.replace(fortran.find("False"), 5, "True ");
  expect_error<IntegrityError>([&] { parse_npy(fortran, "t.npy"); }, {"Fortran"});
  std::string magic = s;
  magic[1] = 'X';
  expect_error<IntegrityError>([&] { parse_npy(magic, "t.npy"); }, {"bad magic"});
  // Headers numpy could write but we do not take, built with a correct length field.
  auto raw = [](const std::string& dict, std::size_t data_bytes) {
    std::string d = dict;
    while ((10 + d.size() + 1) % 64 != 0) d.push_back(' ');
    d.push_back('\n');
    std::string out("\x93NUMPY\x01\x00", 8);
    out.push_back(static_cast<char>(d.size() & 0xff));
    out.push_back(static_cast<char>(d.size() >> 8));
    return out + d + std::string(data_bytes, '\0');
  };
  EXPECT_EQ(parse_npy(raw("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 24), "ok.npy").shape,
            (std::vector<std::uint64_t>{2, 3}));
  expect_error<IntegrityError>(
      [&] { parse_npy(raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", 24), "t.npy"); },
      {"not 1-D or 2-D"});
  expect_error<IntegrityError>(
      [&] { parse_npy(raw("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24), "t.npy"); },
      {"dtype '<f8'"});
  expect_error<IntegrityError>(
      [&] { parse_npy(raw("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0), "t.npy"); },
      {"overflows"});
  expect_error<IntegrityError>(
      [&] { parse_npy(raw("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }", 0), "t.npy"); },
      {"overflows"});
  expect_error<IntegrityError>(
      [&] { parse_npy(raw("{'descr': '<f4', 'shape': (3,), }", 12), "t.npy"); }, {"lacks"});
  expect_error<IntegrityError>(
      [&] { parse_npy(raw("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", 12), "t.npy"); },
      {"unexpected key 'x'"});
  expect_error<IntegrityError>([&] { parse_npy(std::string("\x93NUMPY\x01\x00\xff\x00{", 11), "t.npy"); },
                               {"truncated header"});
}

TEST(Sha256, KnownVectorsAndIncremental) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.hex_digest(), sha256_hex("abc"));
  h.update("abc");  // reusable after a digest
  EXPECT_EQ(h.hex_digest(), sha256_hex("abc"));
}

TEST(TimeFormat, Utc) {
  EXPECT_EQ(format_iso8601_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_iso8601_utc(1700000000.25), "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(format_iso8601_utc(1700000000.9999), "2023-11-14T22:13:21Z");
  EXPECT_EQ(format_compact_utc(1700000000.7), "20231114T221320Z");
  EXPECT_THROW(format_iso8601_utc(std::nan("")), InputError);
  EXPECT_THROW(format_compact_utc(1e300), InputError);
}

// ------------------------------------------------------------------ numpy interoperability

// The interpreter that imports numpy, or "" (the test then skips).
std::string python_with_numpy() {
  for (const char* py : {"python3", "/usr/bin/python3"}) {
    const std::string cmd = std::string(py) + " -c 'import numpy' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return "";
}

TEST_F(SnapshotTest, NumpyReadsOurFilesAndWeReadNumpys) {
  const std::string py = python_with_numpy();
  if (py.empty()) GTEST_SKIP() << "no python3 with numpy";
  const FactorModel m = make_model(13, 7, 5, ModelKind::kExplicit, 13);
  write_snapshot(m, models_, "v1");
  const std::string script = root_ + "/check.py";
  const std::string out = root_ + "/out.txt";
  spit(script,
       "import hashlib, json, sys, numpy as np\n"
       "d, out = sys.argv[1], sys.argv[2]\n"
       "man = json.load(open(d + '/manifest.json'))\n"
       "with open(out, 'w') as f:\n"
       "    for name in ('user_factors.npy', 'item_bias.npy'):\n"
       "        a = np.load(d + '/' + name)\n"
       "        assert a.dtype == np.float32 and a.flags['C_CONTIGUOUS'], name\n"
       "        sha = hashlib.sha256(open(d + '/' + name, 'rb').read()).hexdigest()\n"
       "        f.write('%s %s %s %s\\n' % (name, ','.join(map(str, a.shape)), sha == man['files'][name]['sha256'],\n"
       "                                  ' '.join(float(x).hex() for x in a.ravel())))\n"
       "    ids = open(d + '/item_ids.txt', encoding='utf-8').read().split('\\n')[:-1]\n"
       "    f.write('ids %d %s\\n' % (len(ids), ids[1] == 'art\\u00edculo-1'))\n"
       "    np.save(d + '/../np2d.npy', (np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 - 1))\n"
       "    np.save(d + '/../np1d.npy', np.array([0.1, -2.5, 3e-8], dtype=np.float32))\n");
  const std::string cmd = py + " " + script + " " + models_ + "/v1 " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  std::istringstream lines(slurp(out));
  auto check_array = [&](const std::string& name, const std::string& shape, const float* expect, std::size_t n) {
    std::string line;
    ASSERT_TRUE(std::getline(lines, line));
    std::istringstream fields(line);
    std::string got_name, got_shape, sha_ok;
    fields >> got_name >> got_shape >> sha_ok;
    EXPECT_EQ(got_name, name);
    EXPECT_EQ(got_shape, shape);
    EXPECT_EQ(sha_ok, "True");
    std::string hex;
    std::size_t i = 0;
    for (; fields >> hex; ++i) {
      ASSERT_LT(i, n);
      EXPECT_EQ(static_cast<float>(std::strtod(hex.c_str(), nullptr)), expect[i]) << name << " value " << i;
    }
    EXPECT_EQ(i, n);
  };
  check_array("user_factors.npy", "13,5", m.user_factors.data(), 13 * 5);
  check_array("item_bias.npy", "7", m.item_bias.data(), 7);
  std::string ids_line;
  ASSERT_TRUE(std::getline(lines, ids_line));
  EXPECT_EQ(ids_line, "ids 7 True");

  const NpyArray a = read_npy(models_ + "/np2d.npy");
  ASSERT_EQ(a.shape, (std::vector<std::uint64_t>{3, 4}));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(a.data[i], i * 0.5f - 1.0f);
  const NpyArray b = read_npy(models_ + "/np1d.npy");
  ASSERT_EQ(b.shape, (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(b.data, (std::vector<float>{0.1f, -2.5f, 3e-8f}));
}

}  // namespace
}  // namespace freshrec
