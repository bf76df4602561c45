#pragma once
/// Internal: string id -> dense key table for the per-event path. Same contract as IdMap
/// (keys 0..size()-1 in first-seen order, never reused) but looked up through a flat
/// open-addressing table whose 32-byte slots hold short ids inline, so finding a known id
/// costs one hash of its bytes and (usually) one cache line, with no allocation: the event
/// path looks up two or three ids per event and std::unordered_map's node chase (bucket,
/// node, string) was the largest single cost of apply().
/// Memory (host): 32 B per slot at load <= 1/2, i.e. <= 128 B per id, plus the id string.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpu/util/error.hpp"

namespace freshrec::stream {

class DenseIds {
 public:
  DenseIds() = default;

  /// Key of `id`, adding it when new.
  std::uint32_t intern(std::string_view id) {
    if ((names_.size() + 1) * 2 > slots_.size()) grow();
    const std::uint64_t h = hash(id);
    std::size_t at = h & mask_;
    for (;; at = (at + 1) & mask_) {
      Slot& s = slots_[at];
      if (s.key == kEmpty) break;
      if (matches(s, id)) return s.key;
    }
    if (names_.size() >= UINT32_MAX - 1) throw InputError("stream ids: more than 2^32-2 distinct ids");
    const auto key = static_cast<std::uint32_t>(names_.size());
    names_.emplace_back(id);
    fill(slots_[at], id, key);
    return key;
  }
  /// Key of `id`, or nullopt when unknown.
  std::optional<std::uint32_t> find(std::string_view id) const {
    if (slots_.empty()) return std::nullopt;
    for (std::size_t at = hash(id) & mask_;; at = (at + 1) & mask_) {
      const Slot& s = slots_[at];
      if (s.key == kEmpty) return std::nullopt;
      if (matches(s, id)) return s.key;
    }
  }
  /// Starts loading the slot `id` hashes to (a hint; no effect on the table): the caller
  /// looks up two ids per event and overlaps the two cache misses.
  void prefetch(std::string_view id) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash(id) & mask_]);
  }
  /// External id of `key` (< size()).
  const std::string& id(std::uint32_t key) const { return names_[key]; }
  std::size_t size() const noexcept { return names_.size(); }
  void reserve(std::size_t n) {
    names_.reserve(n);
    if (n * 2 > slots_.size()) rehash(n * 2);
  }

 private:
  static constexpr std::uint32_t kEmpty = UINT32_MAX;
  static constexpr std::size_t kInline = 27;
  static constexpr std::uint8_t kLong = 255;  ///< id longer than kInline: compared via names_
  struct Slot {
    std::uint32_t key = kEmpty;
    std::uint8_t len = 0;
    char text[kInline] = {};
  };
  static_assert(sizeof(Slot) == 32, "one slot = half a cache line");

  // 8 bytes at a time with a multiply-xorshift mix (ids are short: "u123456", skus, uuids).
  static std::uint64_t hash(std::string_view s) noexcept {
    std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ (s.size() * 0xD6E8FEB86659FD93ULL);
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; n -= 8, p += 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
      h ^= h >> 31;
    }
    if (n) {
      std::uint64_t w = 0;
      std::memcpy(&w, p, n);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    }
    h ^= h >> 32;
    h *= 0x94D049BB133111EBULL;
    return h ^ (h >> 29);
  }
  bool matches(const Slot& s, std::string_view id) const noexcept {
    if (s.len == kLong) return id.size() > kInline && names_[s.key] == id;
    return s.len == id.size() && std::memcmp(s.text, id.data(), id.size()) == 0;
  }
  static void fill(Slot& s, std::string_view id, std::uint32_t key) noexcept {
    s.key = key;
    if (id.size() > kInline) {
      s.len = kLong;
    } else {
      s.len = static_cast<std::uint8_t>(id.size());
      std::memcpy(s.text, id.data(), id.size());
    }
  }
  void grow() { rehash(std::max<std::size_t>(64, slots_.size() * 2)); }
  void rehash(std::size_t min_slots) {
    std::size_t cap = 64;
    while (cap < min_slots) cap *= 2;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (std::size_t k = 0; k < names_.size(); ++k) {
      std::size_t at = hash(names_[k]) & mask_;
      while (slots_[at].key != kEmpty) at = (at + 1) & mask_;
      fill(slots_[at], names_[k], static_cast<std::uint32_t>(k));
    }
  }

  std::vector<std::string> names_;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

}  // namespace freshrec::stream
