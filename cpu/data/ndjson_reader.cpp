// NDJSON event files: into an InteractionLog (training) or event by event (replays).
#include <cmath>

#include "cpu/data/id_interner.hpp"
#include "cpu/data/line_reader.hpp"
#include "cpu/data/log_reader_internal.hpp"
#include "cpu/data/ndjson_event_parser.hpp"

namespace freshrec {
namespace detail {

void read_ndjson(const DataConfig& config, InteractionLog& log, ParseReport& report) {
  LineReader reader(config.path, std::size_t{8} << 20, kNdjsonPadding);
  NdjsonEventParser parser;
  IdInterner users(log.users), items(log.items);
  EventView event;
  std::string reason;
  std::string_view line;
  bool first = true;
  while (reader.next(line)) {
    if (is_blank(line)) continue;
    if (first) {
      first = false;
      log.reserve(log.size() + reader.estimated_lines());
    }
    ++report.lines;
    if (!parser.parse_padded(line, reader.readable_from(line.data()), event, reason)) {
      note_bad_line(report, config.max_reported_errors, config.path, reader.line_number(),
                    std::move(reason));
      continue;
    }
    if (event.item_id.empty() || event.type == EventType::kImpression) {  // impressions train nothing nightly
      ++report.without_item;
      continue;
    }
    const float value = event.type == EventType::kRating ? static_cast<float>(event.rating) : 1.0f;
    if (!std::isfinite(value)) {  // a double rating beyond float range
      note_bad_line(report, config.max_reported_errors, config.path, reader.line_number(),
                    "properties.rating: out of float range");
      continue;
    }
    const std::uint32_t u = users.intern(event.user_id);
    const std::uint32_t i = items.intern(event.item_id);
    log.add(u, i, event.timestamp, value, event.type);
    ++report.accepted;
  }
}

}  // namespace detail

void for_each_ndjson_event(const std::string& path, const DataConfig& config,
                           const std::function<void(const Event&)>& sink, ParseReport* report) {
  ParseReport local;
  ParseReport& rep = report ? *report : local;
  rep = ParseReport{};
  LineReader reader(path, std::size_t{8} << 20, kNdjsonPadding);
  NdjsonEventParser parser;
  EventView view;
  Event event;  // reused: its strings keep their capacity from line to line
  std::string reason;
  std::string_view line;
  while (reader.next(line)) {
    if (detail::is_blank(line)) continue;
    ++rep.lines;
    if (!parser.parse_padded(line, reader.readable_from(line.data()), view, reason)) {
      detail::note_bad_line(rep, config.max_reported_errors, path, reader.line_number(),
                            std::move(reason));
      continue;
    }
    assign_event(view, event);
    sink(event);
    if (event.item_id.empty())
      ++rep.without_item;
    else
      ++rep.accepted;
  }
  detail::enforce_bad_fraction(path, config.max_bad_fraction, rep);
}

}  // namespace freshrec
