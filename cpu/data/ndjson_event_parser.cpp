#include "cpu/data/ndjson_event_parser.hpp"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/data/log_reader.hpp"
#include "cpu/data/timestamp_parse.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {

static_assert(kNdjsonPadding >= simdjson::SIMDJSON_PADDING, "kNdjsonPadding must cover simdjson's padding");

namespace od = simdjson::ondemand;

namespace {

std::string quoted(std::string_view s) {
  constexpr std::size_t kMax = 60;
  std::string out = "'";
  // Cut on a character boundary: half a UTF-8 sequence would make the reason invalid text.
  std::size_t n = std::min(s.size(), kMax);
  if (n < s.size())
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  out.append(s.substr(0, n));
  if (s.size() > n) out += "...";
  out += "'";
  return out;
}

const char* type_name(od::json_type t) {
  switch (t) {
    case od::json_type::array: return "an array";
    case od::json_type::object: return "an object";
    case od::json_type::number: return "a number";
    case od::json_type::string: return "a string";
    case od::json_type::boolean: return "a boolean";
    case od::json_type::null: return "null";
  }
  return "an unknown value";
}

// Ids are stored one a line in snapshots, which refuse a '\n' or '\r' in one (after
// training); such an event is a bad line here instead.
bool holds_line_break(std::string_view id) noexcept {
  return id.find_first_of("\n\r") != std::string_view::npos;
}

bool line_break_fail(std::string& reason, const std::string& key) {
  reason = key + ": holds a line break ('\\n' or '\\r'), which no id may contain";
  return false;
}

bool json_fail(std::string& reason, simdjson::error_code e) {
  reason = std::string("invalid JSON: ") + simdjson::error_message(e);
  return false;
}

}  // namespace

struct NdjsonEventParser::Impl {
  od::parser parser;
  std::vector<char> scratch;  // padded copy for lines that come without padding
  char user_digits[24];       // integer ids rendered as text
  char item_digits[24];
  std::vector<std::string> item_list;
  std::size_t items_used = 0;
  char request_digits[24];
  char list_digits[24];  // properties.items, owned here (integers rendered, strings copied)

  // Reads a string-or-integer id. Null leaves `out` empty (reported as missing later).
  bool read_id(od::value& v, const char* key, char* digits, std::string_view& out,
               std::string& reason) {
    od::json_type t;
    if (auto e = v.type().get(t)) return json_fail(reason, e);
    if (t == od::json_type::string) {
      if (auto e = v.get_string().get(out)) return json_fail(reason, e);
      return true;
    }
    if (t == od::json_type::null) {
      out = {};
      return true;
    }
    if (t == od::json_type::number) {
      // Integers only: "17" and 17 must name the same user, 17.5 names nobody.
      std::int64_t i = 0;
      std::uint64_t u = 0;
      char* end = nullptr;
      if (!v.get_int64().get(i)) {
        end = std::to_chars(digits, digits + 24, i).ptr;
      } else if (!v.get_uint64().get(u)) {
        end = std::to_chars(digits, digits + 24, u).ptr;
      } else {
        std::string_view raw = v.raw_json_token();
        reason = std::string(key) + ": a numeric id must be an integer, got " + quoted(raw);
        return false;
      }
      out = std::string_view(digits, static_cast<std::size_t>(end - digits));
      return true;
    }
    reason = std::string(key) + ": expected a string or an integer, got " + type_name(t);
    return false;
  }

  bool read_timestamp(od::value& v, double& out, bool& present, std::string& reason) {
    od::json_type t;
    if (auto e = v.type().get(t)) return json_fail(reason, e);
    double raw = 0.0;
    if (t == od::json_type::null) {
      present = false;
      return true;
    }
    if (t == od::json_type::number) {
      if (auto e = v.get_double().get(raw)) return json_fail(reason, e);
      if (const char* why = normalize_epoch(raw, out)) {
        reason = std::string("timestamp: ") + why + ": " + quoted(v.raw_json_token());
        return false;
      }
      present = true;
      return true;
    }
    if (t == od::json_type::string) {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return json_fail(reason, e);
      // A numeric string ("1714564800") is an epoch value like a bare number.
      const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), raw);
      const char* why = nullptr;
      if (ec == std::errc() && ptr == s.data() + s.size() && !s.empty())
        why = normalize_epoch(raw, out);
      else
        why = parse_iso8601(s, out);
      if (why) {
        reason = std::string("timestamp: ") + why + ": " + quoted(s);
        return false;
      }
      present = true;
      return true;
    }
    reason = std::string("timestamp: expected a number or an ISO-8601 string, got ") + type_name(t);
    return false;
  }

  static bool read_optional_string(od::value& v, const char* key, std::string_view& out,
                                   std::string& reason) {
    od::json_type t;
    if (auto e = v.type().get(t)) return json_fail(reason, e);
    if (t == od::json_type::null) return true;
    if (t != od::json_type::string) {
      reason = std::string(key) + ": expected a string, got " + type_name(t);
      return false;
    }
    if (auto e = v.get_string().get(out)) return json_fail(reason, e);
    return true;
  }

  static bool read_optional_number(od::value& v, const char* key, double& out, std::string& reason) {
    od::json_type t;
    if (auto e = v.type().get(t)) return json_fail(reason, e);
    if (t == od::json_type::null) return true;
    if (t != od::json_type::number) {
      reason = std::string(key) + ": expected a number, got " + type_name(t);
      return false;
    }
    if (auto e = v.get_double().get(out)) return json_fail(reason, e);
    if (!std::isfinite(out)) {
      reason = std::string(key) + ": not finite";
      return false;
    }
    return true;
  }

  bool read_properties(od::value& v, EventView& out, std::string& reason) {
    od::json_type t;
    if (auto e = v.type().get(t)) return json_fail(reason, e);
    if (t == od::json_type::null) return true;
    if (t != od::json_type::object) {
      reason = std::string("properties: expected an object, got ") + type_name(t);
      return false;
    }
    od::object props;
    if (auto e = v.get_object().get(props)) return json_fail(reason, e);
    for (auto field_result : props) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return json_fail(reason, e);
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return json_fail(reason, e);
      od::value value = field.value();
      bool ok = true;
      if (key == "rating")
        ok = read_optional_number(value, "properties.rating", out.rating, reason);
      else if (key == "category")
        ok = read_optional_string(value, "properties.category", out.category, reason);
      else if (key == "price")
        ok = read_optional_number(value, "properties.price", out.price, reason);
      else if (key == "query")
        ok = read_optional_string(value, "properties.query", out.query, reason);
      else if (key == "request_id")
        ok = read_id(value, "properties.request_id", request_digits, out.request_id, reason);
      else if (key == "items")
        ok = read_items(value, reason);
      if (!ok) return false;
    }
    return true;
  }

  // properties.items: an array of string-or-integer ids. Copied into item_list because an
  // integer id needs storage of its own for its text; the strings are reused from line to
  // line, so a steady stream of impressions does not allocate.
  bool read_items(od::value& v, std::string& reason) {
    od::json_type t;
    if (auto e = v.type().get(t)) return json_fail(reason, e);
    if (t == od::json_type::null) return true;
    if (t != od::json_type::array) {
      reason = std::string("properties.items: expected an array, got ") + type_name(t);
      return false;
    }
    od::array arr;
    if (auto e = v.get_array().get(arr)) return json_fail(reason, e);
    std::size_t n = 0;
    for (auto element : arr) {
      od::value item;
      if (auto e = std::move(element).get(item)) return json_fail(reason, e);
      if (n >= kMaxImpressionItems) {
        reason = "properties.items: more than " + std::to_string(kMaxImpressionItems) + " items";
        return false;
      }
      std::string_view id;
      const std::string key = "properties.items[" + std::to_string(n) + "]";
      if (!read_id(item, key.c_str(), list_digits, id, reason)) return false;
      if (id.empty()) {
        reason = key + ": empty item id";
        return false;
      }
      if (holds_line_break(id)) return line_break_fail(reason, key);
      if (item_list.size() <= n) item_list.emplace_back();
      item_list[n].assign(id);
      ++n;
    }
    items_used = n;
    return true;
  }

  bool parse(const char* data, std::size_t len, std::size_t readable, EventView& out,
             std::string& reason) {
    out.items.clear();
    std::vector<std::string_view> keep = std::move(out.items);  // keep its capacity
    out = EventView{};
    out.items = std::move(keep);
    items_used = 0;
    od::document doc;
    if (auto e = parser.iterate(simdjson::padded_string_view(data, len, readable)).get(doc))
      return json_fail(reason, e);
    od::object obj;
    if (auto e = doc.get_object().get(obj)) {
      if (e == simdjson::INCORRECT_TYPE) {
        reason = "not a JSON object";
        return false;
      }
      // simdjson reports a line that does not end in '}' as an early end; say what it
      // usually is instead.
      std::string_view text(data, len);
      while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
      if (e == simdjson::INCOMPLETE_ARRAY_OR_OBJECT && !text.empty() && text.back() != '}') {
        reason = "invalid JSON: the line does not end with '}' (truncated object or trailing content)";
        return false;
      }
      return json_fail(reason, e);
    }
    std::string_view type_text;
    bool have_type = false;
    bool have_timestamp = false;
    for (auto field_result : obj) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return json_fail(reason, e);
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return json_fail(reason, e);
      od::value value = field.value();
      bool ok = true;
      if (key == "user_id") {
        ok = read_id(value, "user_id", user_digits, out.user_id, reason);
      } else if (key == "item_id") {
        ok = read_id(value, "item_id", item_digits, out.item_id, reason);
      } else if (key == "event_type") {
        od::json_type t;
        if (auto e = value.type().get(t)) return json_fail(reason, e);
        if (t != od::json_type::string) {
          reason = std::string("event_type: expected a string, got ") + type_name(t);
          return false;
        }
        if (auto e = value.get_string().get(type_text)) return json_fail(reason, e);
        have_type = true;
      } else if (key == "timestamp") {
        ok = read_timestamp(value, out.timestamp, have_timestamp, reason);
      } else if (key == "properties") {
        ok = read_properties(value, out, reason);
      }
      if (!ok) return false;
    }
    // Anything after the closing brace (a second object, stray text) is not one event.
    const char* trailing = nullptr;
    if (!doc.current_location().get(trailing)) {
      reason = "trailing content after the JSON object: " +
               quoted(std::string_view(trailing, static_cast<std::size_t>(data + len - trailing)));
      return false;
    }

    if (!have_type) {
      reason = "missing event_type";
      return false;
    }
    const auto type = parse_event_type(type_text);
    if (!type) {
      reason = "unknown event_type " + quoted(type_text) +
               " (expected view|click|add_to_cart|purchase|search|rating|impression)";
      return false;
    }
    out.type = *type;
    if (out.user_id.empty()) {
      reason = "missing user_id";
      return false;
    }
    if (holds_line_break(out.user_id)) return line_break_fail(reason, "user_id");
    if (holds_line_break(out.item_id)) return line_break_fail(reason, "item_id");
    if (out.type == EventType::kImpression) {
      if (items_used == 0) {
        reason = "impression event without properties.items";
        return false;
      }
      for (std::size_t i = 0; i < items_used; ++i) out.items.emplace_back(item_list[i]);
    } else if (out.item_id.empty() && out.type != EventType::kSearch) {
      reason = "missing item_id (required for a " + std::string(event_type_name(out.type)) + " event)";
      return false;
    }
    if (!have_timestamp) {
      reason = "missing timestamp";
      return false;
    }
    if (out.type == EventType::kRating && std::isnan(out.rating)) {
      reason = "rating event without properties.rating";
      return false;
    }
    return true;
  }
};

NdjsonEventParser::NdjsonEventParser() : impl_(std::make_unique<Impl>()) {}
NdjsonEventParser::~NdjsonEventParser() = default;
NdjsonEventParser::NdjsonEventParser(NdjsonEventParser&&) noexcept = default;
NdjsonEventParser& NdjsonEventParser::operator=(NdjsonEventParser&&) noexcept = default;

bool NdjsonEventParser::parse_padded(std::string_view line, std::size_t readable, EventView& out,
                                     std::string& reason) {
  FRESHREC_ASSERT(readable >= line.size() + kNdjsonPadding);
  return impl_->parse(line.data(), line.size(), readable, out, reason);
}

bool NdjsonEventParser::parse(std::string_view line, EventView& out, std::string& reason) {
  std::vector<char>& buf = impl_->scratch;
  const std::size_t need = line.size() + kNdjsonPadding;
  if (buf.size() < need) buf.resize(need);
  std::memcpy(buf.data(), line.data(), line.size());
  std::memset(buf.data() + line.size(), 0, kNdjsonPadding);
  return impl_->parse(buf.data(), line.size(), buf.size(), out, reason);
}

void assign_event(const EventView& view, Event& out) {
  out.user_id.assign(view.user_id);
  out.item_id.assign(view.item_id);
  out.type = view.type;
  out.timestamp = view.timestamp;
  out.category.assign(view.category);
  out.price = view.price;
  out.query.assign(view.query);
  out.rating = view.rating;
  out.items.resize(view.items.size());
  for (std::size_t i = 0; i < view.items.size(); ++i) out.items[i].assign(view.items[i]);
  out.request_id.assign(view.request_id);
}

bool parse_ndjson_event(std::string_view line, Event& out, std::string& reason) {
  // One parser per thread: the streaming sources may parse on several threads at once.
  thread_local NdjsonEventParser parser;
  EventView view;
  if (!parser.parse(line, view, reason)) return false;
  assign_event(view, out);
  return true;
}

}  // namespace freshrec
