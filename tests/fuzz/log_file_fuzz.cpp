// libFuzzer target: a whole log file through load_interaction_log as MovieLens TSV,
// MovieLens CSV and NDJSON (the first input byte picks the format; the file goes through
// a scratch file because the readers take a path). Bad lines must be counted, never
// crash; an accepted event must carry finite numbers.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cpu/data/log_reader.hpp"
#include "cpu/util/error.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace freshrec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const std::string path = fuzz::scratch_dir() + "/log.txt";
  const DataFormat formats[] = {DataFormat::kMovielensTsv, DataFormat::kMovielensCsv, DataFormat::kNdjson};
  DataConfig config;
  config.format = formats[data[0] % 3];
  config.path = path;
  config.max_bad_fraction = 1.0;  // count every bad line instead of failing the load
  fuzz::put_file(path, std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  ParseReport report;
  try {
    const InteractionLog log = load_interaction_log(config, &report);
    if (report.accepted + report.bad + report.without_item != report.lines) std::abort();
    for (std::size_t e = 0; e < log.timestamp.size(); ++e)
      if (!std::isfinite(log.timestamp[e]) || !std::isfinite(log.value[e])) std::abort();
  } catch (const InputError&) {
    // An empty log or an unreadable file is a clean refusal.
  }
  return 0;
}
