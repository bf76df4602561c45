#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace freshrec {

/// Kinds of interaction in the shared NDJSON schema (nightly trainer and streaming updater).
enum class EventType : std::uint8_t {
  kView = 0,
  kClick = 1,
  kAddToCart = 2,
  kPurchase = 3,
  kSearch = 4,
  kRating = 5,
  /// The list of items a recommendation showed (properties.items, properties.request_id):
  /// closes the bandit loop. Carries no item_id; never a training positive.
  kImpression = 6,
};
inline constexpr int kNumEventTypes = 7;

/// "view", "click", "add_to_cart", "purchase", "search", "rating", "impression"; nullopt for
/// anything else.
std::optional<EventType> parse_event_type(std::string_view name) noexcept;
/// The schema name of `type`.
std::string_view event_type_name(EventType type) noexcept;

/// Per-event-type weight w(type) in the confidence c = 1 + alpha * w * exp(-lambda * age).
/// Defaults follow the funnel: a purchase says more than a view.
struct EventWeights {
  std::array<float, kNumEventTypes> weight{1.0f, 2.0f, 4.0f, 8.0f, 0.0f, 1.0f, 0.0f};
  float operator[](EventType t) const noexcept { return weight[static_cast<int>(t)]; }
  float& operator[](EventType t) noexcept { return weight[static_cast<int>(t)]; }
};

}  // namespace freshrec
