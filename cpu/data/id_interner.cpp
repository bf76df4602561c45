#include "cpu/data/id_interner.hpp"

#include <algorithm>
#include <cstring>

namespace freshrec {
namespace {

std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

}  // namespace

std::uint64_t IdInterner::hash(std::string_view id) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ (id.size() * 0xff51afd7ed558ccdULL);
  const char* p = id.data();
  std::size_t n = id.size();
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(h ^ w) + 0x9E3779B97F4A7C15ULL;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = mix(h ^ w);
  }
  return mix(h);
}

IdInterner::IdInterner(IdMap& map) : map_(map) {
  std::size_t capacity = 1024;
  while (capacity < 2 * map.size()) capacity *= 2;
  slots_.assign(capacity, Slot{0, kEmpty, 0, {}});
  mask_ = capacity - 1;
  for (std::uint32_t i = 0; i < map.size(); ++i) {
    const std::string_view id = map.id(i);
    std::uint32_t number = 0;
    if (numbered(id, number)) {
      if (number >= direct_.size()) direct_.resize(number + 1, kEmpty);
      direct_[number] = i;
    } else {
      if (2 * (used_ + 1) > slots_.size()) grow();
      place(id, hash(id), i);
    }
  }
}

std::uint32_t IdInterner::insert_numbered(std::string_view id, std::uint32_t number) {
  const std::uint32_t index = map_.intern(id);
  if (number >= direct_.size()) {
    // Geometric growth, but never past what the numbers need.
    const std::size_t want = std::max<std::size_t>(number + 1, std::min<std::size_t>(2 * direct_.size(), kMaxNumber));
    direct_.resize(want, kEmpty);
  }
  direct_[number] = index;
  return index;
}

bool IdInterner::matches(const Slot& s, std::string_view id) const noexcept {
  if (id.size() <= kInline)
    return s.length == id.size() && std::memcmp(s.key, id.data(), id.size()) == 0;
  return map_.id(s.index) == id;
}

void IdInterner::place(std::string_view id, std::uint64_t h, std::uint32_t index) {
  std::size_t pos = static_cast<std::size_t>(h) & mask_;
  while (slots_[pos].index != kEmpty) pos = (pos + 1) & mask_;
  Slot& s = slots_[pos];
  s.hash = h;
  s.index = index;
  s.length = static_cast<std::uint8_t>(id.size() <= kInline ? id.size() : 0xFF);
  if (id.size() <= kInline) std::memcpy(s.key, id.data(), id.size());
  ++used_;
}

std::uint32_t IdInterner::insert(std::string_view id, std::uint64_t h, std::size_t pos) {
  const std::uint32_t index = map_.intern(id);
  // Load factor at most 1/2 keeps linear-probe chains short.
  if (2 * (used_ + 1) > slots_.size()) {
    grow();
    place(id, h, index);
    return index;
  }
  Slot& s = slots_[pos];
  s.hash = h;
  s.index = index;
  s.length = static_cast<std::uint8_t>(id.size() <= kInline ? id.size() : 0xFF);
  if (id.size() <= kInline) std::memcpy(s.key, id.data(), id.size());
  ++used_;
  return index;
}

void IdInterner::grow() {
  std::vector<Slot> old(slots_.size() * 2, Slot{0, kEmpty, 0, {}});
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  used_ = 0;
  for (const Slot& s : old) {
    if (s.index == kEmpty) continue;
    std::size_t pos = static_cast<std::size_t>(s.hash) & mask_;
    while (slots_[pos].index != kEmpty) pos = (pos + 1) & mask_;
    slots_[pos] = s;
    ++used_;
  }
}

}  // namespace freshrec
