#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cpu/data/id_map.hpp"

namespace freshrec {

/// Fast front for IdMap::intern while a log loads. Indices are IdMap's, in first-seen order.
/// Two paths, chosen by the id's form alone so an id always takes the same one:
/// - "numbered" ids, a fixed prefix of up to 8 non-digits (the first numbered id seen sets
///   it: "" for MovieLens, "u" for "u17") then a decimal number without leading zeros
///   below 2^22, index a plain array by their number: 4 bytes per number up to the largest
///   seen, small enough to stay in cache;
/// - every other id goes through a flat open-addressing table (linear probing, ids up to
///   19 bytes stored in the 32-byte slot), one cache line a lookup instead of the node,
///   bucket and string misses of IdMap's std::unordered_map.
/// Host memory, freed with the object; keep it for the load only. It holds a reference to
/// `map`, which must outlive it and must not be interned elsewhere meanwhile.
class IdInterner {
 public:
  /// Indexes the ids `map` already holds.
  explicit IdInterner(IdMap& map);
  IdInterner(const IdInterner&) = delete;
  IdInterner& operator=(const IdInterner&) = delete;

  /// Dense index of `id` in the map, adding it when new.
  std::uint32_t intern(std::string_view id) {
    std::uint32_t number = 0;
    if (numbered(id, number)) {
      if (number < direct_.size() && direct_[number] != kEmpty) return direct_[number];
      return insert_numbered(id, number);
    }
    const std::uint64_t h = hash(id);
    std::size_t pos = static_cast<std::size_t>(h) & mask_;
    for (;;) {
      Slot& s = slots_[pos];
      if (s.index == kEmpty) return insert(id, h, pos);
      if (s.hash == h && matches(s, id)) return s.index;
      pos = (pos + 1) & mask_;
    }
  }

  /// A fast 64-bit hash of a short byte string (multiply-mix over 8-byte words).
  static std::uint64_t hash(std::string_view id) noexcept;

 private:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;
  static constexpr std::size_t kInline = 19;
  struct Slot {
    std::uint64_t hash;
    std::uint32_t index;   // kEmpty when the slot is free
    std::uint8_t length;   // of the inline key; ids longer than kInline are compared via map_
    char key[kInline];
  };
  static_assert(sizeof(Slot) == 32, "two slots a cache line");

  static constexpr std::uint32_t kMaxNumber = 1u << 22;
  static constexpr std::size_t kMaxPrefix = 8;

  // True when `id` is prefix_ + canonical decimal < kMaxNumber; the first such id fixes prefix_.
  bool numbered(std::string_view id, std::uint32_t& number) noexcept {
    std::size_t digits_at = id.size();
    while (digits_at > 0 && id[digits_at - 1] >= '0' && id[digits_at - 1] <= '9') --digits_at;
    const std::size_t digits = id.size() - digits_at;
    if (digits == 0 || digits > 7 || (digits > 1 && id[digits_at] == '0')) return false;
    const std::string_view prefix = id.substr(0, digits_at);
    if (!prefix_set_) {
      if (prefix.size() > kMaxPrefix) return false;
      prefix_.assign(prefix.data(), prefix.size());
      prefix_set_ = true;
    } else if (prefix != prefix_) {
      return false;
    }
    std::uint32_t v = 0;
    for (std::size_t k = digits_at; k < id.size(); ++k) v = v * 10 + static_cast<std::uint32_t>(id[k] - '0');
    if (v >= kMaxNumber) return false;
    number = v;
    return true;
  }
  std::uint32_t insert_numbered(std::string_view id, std::uint32_t number);
  bool matches(const Slot& s, std::string_view id) const noexcept;
  std::uint32_t insert(std::string_view id, std::uint64_t h, std::size_t pos);
  void place(std::string_view id, std::uint64_t h, std::uint32_t index);
  void grow();

  IdMap& map_;
  std::string prefix_;
  bool prefix_set_ = false;
  std::vector<std::uint32_t> direct_;  // number -> index, kEmpty when unseen
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t used_ = 0;
};

}  // namespace freshrec
