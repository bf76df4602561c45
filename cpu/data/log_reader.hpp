#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cpu/data/data_config.hpp"
#include "cpu/data/event.hpp"
#include "cpu/data/interaction_log.hpp"

namespace freshrec {

/// One rejected input line.
struct ParseError {
  std::string file;
  std::size_t line = 0;   ///< 1-based
  std::string reason;
  std::string to_string() const { return file + ":" + std::to_string(line) + ": " + reason; }
};

/// What a load saw: every line is either accepted, bad or (events without item) unused.
struct ParseReport {
  std::size_t lines = 0;          ///< non-empty data lines read (header excluded)
  std::size_t accepted = 0;       ///< events stored in the log
  std::size_t bad = 0;            ///< rejected lines
  std::size_t without_item = 0;   ///< valid events with no item (bare searches): not training data
  std::vector<ParseError> errors; ///< the first DataConfig::max_reported_errors bad lines
  double bad_fraction() const { return lines ? double(bad) / double(lines) : 0.0; }
};

/// Parses one NDJSON event line (the shared schema). Returns false and sets `reason`
/// on a bad line. Used by the file loader and the streaming sources alike.
bool parse_ndjson_event(std::string_view line, Event& out, std::string& reason);

/// Loads the log that `config` names (or generates it). Bad lines are skipped and
/// counted; throws InputError naming the file, the first bad lines and the fraction when
/// more than config.max_bad_fraction of the lines are bad, or when the file can't be read.
InteractionLog load_interaction_log(const DataConfig& config, ParseReport* report = nullptr);

/// Streams the events of an NDJSON file to `sink` (for replays); same error policy.
void for_each_ndjson_event(const std::string& path, const DataConfig& config,
                           const std::function<void(const Event&)>& sink, ParseReport* report = nullptr);

}  // namespace freshrec
