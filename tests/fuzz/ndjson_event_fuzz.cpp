// libFuzzer target: one NDJSON event line through the streaming parser (padded and
// unpadded entry points) and the loader's parse_ndjson_event. Invariants checked beyond
// "no crash, no sanitizer report": the two paths agree, an accepted event has a finite
// timestamp and finite-or-absent price and rating, and every rejection has a reason.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cpu/data/log_reader.hpp"
#include "cpu/data/ndjson_event_parser.hpp"

using namespace freshrec;

namespace {
void check_view(const EventView& v) {
  if (!std::isfinite(v.timestamp)) std::abort();
  if (!std::isnan(v.price) && !std::isfinite(v.price)) std::abort();
  if (!std::isnan(v.rating) && !std::isfinite(v.rating)) std::abort();
  if (v.user_id.empty()) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static NdjsonEventParser parser;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  std::string reason;
  EventView view;
  const bool ok_unpadded = parser.parse(line, view, reason);
  if (ok_unpadded) check_view(view);
  else if (reason.empty()) std::abort();

  std::string padded(line);
  padded.resize(size + kNdjsonPadding, '\0');
  EventView view2;
  std::string reason2;
  const bool ok_padded = parser.parse_padded(std::string_view(padded.data(), size), padded.size(), view2, reason2);
  if (ok_padded != ok_unpadded) std::abort();
  if (ok_padded) {
    check_view(view2);
    Event copy;
    assign_event(view2, copy);
  }

  Event event;
  std::string reason3;
  const bool ok_loader = parse_ndjson_event(line, event, reason3);
  if (ok_loader != ok_unpadded) std::abort();
  return 0;
}
