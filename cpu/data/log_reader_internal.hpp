#pragma once
/// Pieces shared by the format readers behind load_interaction_log (not public API).
#include <cstddef>
#include <string>
#include <string_view>

#include "cpu/data/data_config.hpp"
#include "cpu/data/interaction_log.hpp"
#include "cpu/data/log_reader.hpp"

namespace freshrec::detail {

/// True for a line of nothing but spaces and tabs: skipped like an empty line, not counted.
inline bool is_blank(std::string_view line) noexcept {
  for (char c : line)
    if (c != ' ' && c != '\t') return false;
  return true;
}

/// Counts a rejected line and keeps its error while fewer than `max_reported` are kept.
void note_bad_line(ParseReport& report, std::size_t max_reported, const std::string& file,
                   std::size_t line, std::string reason);

/// Throws InputError naming `file`, the bad count and fraction and the first errors when
/// report.bad_fraction() exceeds `max_bad_fraction`.
void enforce_bad_fraction(const std::string& file, double max_bad_fraction, const ParseReport& report);

/// Appends the MovieLens file config.path (columns user item rating timestamp separated by
/// `separator`; a CSV header line `userId,movieId,rating,timestamp` is skipped) to `log`.
void read_movielens(const DataConfig& config, char separator, InteractionLog& log, ParseReport& report);

/// Appends the NDJSON event file config.path to `log`; events without an item are counted
/// in report.without_item and not stored.
void read_ndjson(const DataConfig& config, InteractionLog& log, ParseReport& report);

}  // namespace freshrec::detail
