#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/data/event_type.hpp"
#include "cpu/data/id_map.hpp"

namespace freshrec {

/// Item side information seen in the log (for the streaming updater and the generator).
struct ItemInfo {
  std::vector<std::uint32_t> category;  ///< per item index; index into `category_names`
  std::vector<float> price;             ///< per item index; NaN when never seen
  IdMap category_names;                 ///< category 0 is "" (unknown)
};

/// Interactions with an item, as dense structure-of-arrays (21 bytes an event).
/// Events without an item (a bare search) are not stored here.
struct InteractionLog {
  IdMap users;
  IdMap items;
  std::vector<std::uint32_t> user;   ///< dense user index, per event
  std::vector<std::uint32_t> item;   ///< dense item index, per event
  std::vector<double> timestamp;     ///< event time, epoch seconds
  std::vector<float> value;          ///< rating for rating events, else 1
  std::vector<EventType> type;       ///< per event

  std::size_t size() const noexcept { return user.size(); }
  bool empty() const noexcept { return user.empty(); }
  void reserve(std::size_t n) {
    user.reserve(n);
    item.reserve(n);
    timestamp.reserve(n);
    value.reserve(n);
    type.reserve(n);
  }
  void add(std::uint32_t u, std::uint32_t i, double ts, float v, EventType t) {
    user.push_back(u);
    item.push_back(i);
    timestamp.push_back(ts);
    value.push_back(v);
    type.push_back(t);
  }
  /// Latest event time in the log (the natural data cutoff); 0 when empty.
  double max_timestamp() const noexcept {
    double m = 0.0;
    for (double t : timestamp) m = t > m ? t : m;
    return m;
  }
};

}  // namespace freshrec
