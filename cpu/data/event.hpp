#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/data/event_type.hpp"

namespace freshrec {

/// One parsed event of the shared NDJSON schema, ids still as strings.
/// Optional numeric properties are NaN when absent; optional strings are empty.
struct Event {
  std::string user_id;
  std::string item_id;      ///< empty for a search without an item
  EventType type = EventType::kView;
  double timestamp = 0.0;   ///< event time, epoch seconds (UTC)
  std::string category;     ///< properties.category
  double price = NAN;       ///< properties.price
  std::string query;        ///< properties.query
  double rating = NAN;      ///< properties.rating (or the rating column of MovieLens)
  std::vector<std::string> items;  ///< properties.items: what an impression showed, in rank order
  std::string request_id;          ///< properties.request_id of an impression (may be empty)
};

}  // namespace freshrec
