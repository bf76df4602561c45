// libFuzzer target: the snapshot loader. A valid snapshot of a tiny model is written once;
// each input replaces one of its files (the first byte picks which). With the top bit
// of that byte set the harness also "forges" the manifest — records the new file's size
// and sha256 and re-seals manifest_sha256 — so the bytes reach the .npy, id-list and
// manifest structure checks behind the checksums. load_snapshot must then either refuse
// with IntegrityError or return a model whose values are all finite and shapes agree.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/model/snapshot.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"
#include "cpu/util/sha256.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace freshrec;
using nlohmann::json;

namespace {
const char* const kFiles[] = {"manifest.json", "user_factors.npy", "item_factors.npy", "user_bias.npy",
                              "item_bias.npy", "user_ids.txt", "item_ids.txt"};
constexpr int kFileCount = 7;

struct Original {
  std::string dir;
  std::vector<std::string> contents;
};

const Original& original() {
  static const Original o = [] {
    Original x;
    const std::string models = fuzz::scratch_dir() + "/models";
    write_snapshot(fuzz::tiny_model(), models, "v1", true);
    x.dir = models + "/v1";
    for (const char* f : kFiles) x.contents.push_back(read_file(x.dir + "/" + f));
    return x;
  }();
  return o;
}

std::string reseal(json manifest) {
  json body = manifest;
  body.erase("manifest_sha256");
  manifest["manifest_sha256"] = sha256_hex(body.dump(-1, ' ', false, json::error_handler_t::replace));
  return manifest.dump(2) + "\n";
}

bool finite(const FactorMatrix& m) { return m.allFinite(); }
}  // namespace

// FRESHREC_FUZZ_EMIT_SEEDS=<dir>: write one seed per file (plain and forged) and exit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("FRESHREC_FUZZ_EMIT_SEEDS")) {
    const Original& o = original();
    for (int f = 0; f < kFileCount; ++f)
      for (const unsigned char mode : {0x00, 0x80})
        fuzz::put_file(std::string(dir) + "/" + (mode ? "forged_" : "plain_") + kFiles[f],
                       std::string(1, static_cast<char>(f | mode)) + o.contents[f]);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const Original& o = original();
  const int which = (data[0] & 0x7f) % kFileCount;
  const bool forge = (data[0] & 0x80) != 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (int f = 0; f < kFileCount; ++f) fuzz::put_file(o.dir + "/" + kFiles[f], o.contents[f]);
  fuzz::put_file(o.dir + "/" + kFiles[which], bytes);
  if (forge) {
    try {
      json manifest = json::parse(which == 0 ? std::string(bytes) : o.contents[0]);
      if (which != 0 && manifest.is_object() && manifest.contains("files") && manifest["files"].is_object())
        manifest["files"][kFiles[which]] = {{"bytes", bytes.size()}, {"sha256", sha256_hex(bytes)}};
      if (manifest.is_object()) fuzz::put_file(o.dir + "/manifest.json", reseal(manifest));
    } catch (const json::exception&) {
      // Not JSON: the loader sees the raw bytes.
    }
  }
  try {
    SnapshotInfo info;
    const FactorModel m = load_snapshot(o.dir, &info);
    if (!finite(m.user_factors) || !finite(m.item_factors) || !m.user_bias.allFinite() ||
        !m.item_bias.allFinite() || !std::isfinite(m.global_bias))
      std::abort();
    if (m.user_factors.rows() != static_cast<long>(m.user_ids.size()) ||
        m.item_factors.rows() != static_cast<long>(m.item_ids.size()) ||
        m.user_factors.cols() != m.item_factors.cols() || m.user_bias.size() != m.user_factors.rows() ||
        m.item_bias.size() != m.item_factors.rows())
      std::abort();
  } catch (const IntegrityError& e) {
    if (std::string(e.what()).find(o.dir) == std::string::npos) std::abort();  // must name the file
  }
  return 0;
}
