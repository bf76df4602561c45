#pragma once
#include <cstdint>
#include <string>

namespace freshrec {

enum class DataFormat { kMovielensTsv, kMovielensCsv, kNdjson, kGenerated };

/// Parameters of the built-in e-commerce event generator (deterministic by seed).
struct GeneratorConfig {
  std::int64_t events = 200000;    ///< total events to emit (10K .. 100M)
  std::int32_t users = 5000;
  std::int32_t items = 2000;
  std::int32_t categories = 20;
  double zipf_exponent = 1.0;      ///< item popularity within a category
  double session_gap_seconds = 1800.0;  ///< inactivity gap that starts a new session
  double intent_shift_probability = 0.15;  ///< a session targets a category outside the user's tastes
  double start_time = 1700000000.0;  ///< epoch seconds of the first event
  double days = 30.0;              ///< span of event time
  std::uint64_t seed = 7;
};

/// Where the interaction log comes from and how strict the reader is.
struct DataConfig {
  std::string path;                       ///< file to read; unused for kGenerated
  DataFormat format = DataFormat::kGenerated;
  double max_bad_fraction = 0.01;         ///< fail the load when more lines than this are bad
  std::size_t max_reported_errors = 20;   ///< bad lines echoed in the report (all are counted)
  GeneratorConfig generator;
};

}  // namespace freshrec
