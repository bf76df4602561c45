#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace freshrec {

/// Maps external string ids to dense indices 0..size()-1 in first-seen order.
/// Saved with every model (one id a line) so indices mean the same thing everywhere.
class IdMap {
 public:
  IdMap() = default;
  IdMap(const IdMap& other);
  IdMap& operator=(const IdMap& other);
  IdMap(IdMap&&) noexcept = default;
  IdMap& operator=(IdMap&&) noexcept = default;

  /// Index of `id`, adding it when new.
  std::uint32_t intern(std::string_view id);
  /// Index of `id`, or nullopt when unknown.
  std::optional<std::uint32_t> find(std::string_view id) const;
  /// External id of index `index` (must be < size()).
  const std::string& id(std::uint32_t index) const { return *ids_[index]; }
  std::size_t size() const noexcept { return ids_.size(); }
  bool empty() const noexcept { return ids_.empty(); }
  void reserve(std::size_t n);

 private:
  // The keys are views into storage_, whose elements never move (deque push_back).
  std::deque<std::string> storage_;
  std::vector<const std::string*> ids_;
  std::unordered_map<std::string_view, std::uint32_t> index_;
};

}  // namespace freshrec
