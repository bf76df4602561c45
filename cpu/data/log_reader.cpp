#include "cpu/data/log_reader.hpp"

#include <algorithm>
#include <cstdio>

#include "cpu/data/generator.hpp"
#include "cpu/data/log_reader_internal.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace detail {

void note_bad_line(ParseReport& report, std::size_t max_reported, const std::string& file,
                   std::size_t line, std::string reason) {
  ++report.bad;
  if (report.errors.size() < max_reported)
    report.errors.push_back(ParseError{file, line, std::move(reason)});
}

void enforce_bad_fraction(const std::string& file, double max_bad_fraction, const ParseReport& report) {
  if (report.bad == 0 || report.bad_fraction() <= max_bad_fraction) return;
  char percent[64];
  std::snprintf(percent, sizeof percent, "%.2f%% (limit %.2f%%)", 100.0 * report.bad_fraction(),
                100.0 * max_bad_fraction);
  std::string msg = "data file '" + file + "': " + std::to_string(report.bad) + " of " +
                    std::to_string(report.lines) + " lines are bad, " + percent;
  // A handful is enough to see the pattern; the report keeps up to max_reported_errors.
  constexpr std::size_t kShown = 5;
  const std::size_t shown = std::min(kShown, report.errors.size());
  if (shown > 0) msg += "; first errors:";
  for (std::size_t k = 0; k < shown; ++k) msg += "\n  " + report.errors[k].to_string();
  throw InputError(msg);
}

}  // namespace detail

InteractionLog load_interaction_log(const DataConfig& config, ParseReport* report) {
  ParseReport local;
  ParseReport& rep = report ? *report : local;
  rep = ParseReport{};
  InteractionLog log;
  switch (config.format) {
    case DataFormat::kGenerated:
      log = generate_interaction_log(config.generator);
      rep.lines = log.size();
      rep.accepted = log.size();
      return log;
    case DataFormat::kMovielensTsv:
      detail::read_movielens(config, '\t', log, rep);
      break;
    case DataFormat::kMovielensCsv:
      detail::read_movielens(config, ',', log, rep);
      break;
    case DataFormat::kNdjson:
      detail::read_ndjson(config, log, rep);
      break;
  }
  detail::enforce_bad_fraction(config.path, config.max_bad_fraction, rep);
  return log;
}

}  // namespace freshrec
