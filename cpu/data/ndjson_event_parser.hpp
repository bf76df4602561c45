#pragma once
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cpu/data/event.hpp"
#include "cpu/data/event_type.hpp"

namespace freshrec {

/// Readable bytes that must follow a line handed to NdjsonEventParser::parse_padded
/// (simdjson's SIMDJSON_PADDING; checked against it where simdjson is included).
inline constexpr std::size_t kNdjsonPadding = 64;

/// One event of the shared NDJSON schema as views, no allocation. The views point into
/// the parsed line or into the parser's scratch memory and are valid until the next parse.
/// Optional numbers are NaN when absent; optional strings are empty.
struct EventView {
  std::string_view user_id;
  std::string_view item_id;   ///< empty for a search without an item
  EventType type = EventType::kView;
  double timestamp = 0.0;     ///< epoch seconds (UTC), already normalised
  std::string_view category;
  double price = NAN;
  std::string_view query;
  double rating = NAN;
  std::vector<std::string_view> items;  ///< properties.items of an impression (empty otherwise)
  std::string_view request_id;          ///< properties.request_id of an impression
};

/// The most items one impression may list (a longer list is a bad line, not a page).
inline constexpr std::size_t kMaxImpressionItems = 1000;

/// Copies `view` into `out`, reusing out's string capacity.
void assign_event(const EventView& view, Event& out);

/// Parses lines of the shared NDJSON event schema with simdjson On-Demand. Keys in any
/// order, unknown keys ignored; "user_id"/"item_id" may be strings or integers; "timestamp"
/// is epoch seconds or milliseconds (see kEpochMillisThreshold), a numeric string, or an
/// ISO-8601 string. Owns simdjson's parser and its scratch buffers; one per thread.
class NdjsonEventParser {
 public:
  NdjsonEventParser();
  ~NdjsonEventParser();
  NdjsonEventParser(const NdjsonEventParser&) = delete;
  NdjsonEventParser& operator=(const NdjsonEventParser&) = delete;
  NdjsonEventParser(NdjsonEventParser&&) noexcept;
  NdjsonEventParser& operator=(NdjsonEventParser&&) noexcept;

  /// Parses `line` in place; `readable` bytes from line.data() must be readable and
  /// at least line.size() + kNdjsonPadding. Returns false and sets `reason` on a bad line.
  bool parse_padded(std::string_view line, std::size_t readable, EventView& out, std::string& reason);
  /// Same for a line with no padding behind it: copies it into a padded scratch buffer.
  bool parse(std::string_view line, EventView& out, std::string& reason);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshrec
