#pragma once
/// Helpers shared by the libFuzzer targets: a private scratch directory per process and
/// a small valid model, so a target can feed bytes to loaders that take a path.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cpu/model/factor_model.hpp"
#include "cpu/util/fs.hpp"

namespace freshrec::fuzz {

/// /dev/shm (or /tmp) scratch directory of this process, created once and removed at exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string d = base + "/freshrec-fuzz-" + std::to_string(getpid());
    std::string cmd = "rm -rf '" + d + "' && mkdir -p '" + d + "'";
    if (std::system(cmd.c_str()) != 0) std::abort();
    static std::string for_exit = d;
    std::atexit([] { std::string c = "rm -rf '" + for_exit + "'"; (void)!std::system(c.c_str()); });
    return d;
  }();
  return dir;
}

/// Writes `bytes` to `path`, replacing it (no fsync: scratch data).
inline void put_file(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
}

/// A tiny deterministic explicit model: 3 users, 4 items, k = 2.
inline FactorModel tiny_model() {
  FactorModel m;
  m.kind = ModelKind::kExplicit;
  m.user_factors.resize(3, 2);
  m.item_factors.resize(4, 2);
  m.user_bias.resize(3);
  m.item_bias.resize(4);
  for (int r = 0; r < 3; ++r) {
    m.user_factors(r, 0) = 0.1f * float(r + 1);
    m.user_factors(r, 1) = -0.05f * float(r);
    m.user_bias[r] = 0.01f * float(r);
    m.user_ids.intern("u" + std::to_string(r));
  }
  for (int r = 0; r < 4; ++r) {
    m.item_factors(r, 0) = 0.2f - 0.03f * float(r);
    m.item_factors(r, 1) = 0.07f * float(r);
    m.item_bias[r] = -0.02f * float(r);
    m.item_ids.intern("i" + std::to_string(r));
  }
  m.global_bias = 3.5f;
  m.data_cutoff = 1700000000.0;
  m.hyperparameters["factors"] = "2";
  return m;
}

}  // namespace freshrec::fuzz
