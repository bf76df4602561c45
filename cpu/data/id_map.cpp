#include "cpu/data/id_map.hpp"

#include <limits>

#include "cpu/util/error.hpp"

namespace freshrec {

IdMap::IdMap(const IdMap& other) {
  reserve(other.size());
  for (const std::string* s : other.ids_) intern(*s);
}

IdMap& IdMap::operator=(const IdMap& other) {
  if (this != &other) {
    IdMap copy(other);
    *this = std::move(copy);
  }
  return *this;
}

std::uint32_t IdMap::intern(std::string_view id) {
  auto it = index_.find(id);
  if (it != index_.end()) return it->second;
  if (ids_.size() >= std::numeric_limits<std::uint32_t>::max())
    throw InputError("IdMap: more than 2^32-1 distinct ids");
  const std::string& stored = storage_.emplace_back(id);
  const auto index = static_cast<std::uint32_t>(ids_.size());
  ids_.push_back(&stored);
  index_.emplace(std::string_view(stored), index);
  return index;
}

std::optional<std::uint32_t> IdMap::find(std::string_view id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

void IdMap::reserve(std::size_t n) {
  ids_.reserve(n);
  index_.reserve(n);
}

}  // namespace freshrec
