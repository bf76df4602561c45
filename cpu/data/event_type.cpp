#include "cpu/data/event_type.hpp"

namespace freshrec {
namespace {
constexpr std::array<std::string_view, kNumEventTypes> kNames{
    "view", "click", "add_to_cart", "purchase", "search", "rating", "impression"};
}

std::optional<EventType> parse_event_type(std::string_view name) noexcept {
  for (int i = 0; i < kNumEventTypes; ++i)
    if (kNames[i] == name) return static_cast<EventType>(i);
  return std::nullopt;
}

std::string_view event_type_name(EventType type) noexcept {
  const int i = static_cast<int>(type);
  return (i >= 0 && i < kNumEventTypes) ? kNames[i] : std::string_view("unknown");
}

}  // namespace freshrec
