#include "cpu/util/time_format.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

// 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z: four-digit years only.
constexpr double kMinEpoch = -62135596800.0;
constexpr double kMaxEpoch = 253402300800.0;

std::tm to_utc_tm(double epoch_seconds, const char* what) {
  if (!std::isfinite(epoch_seconds) || epoch_seconds < kMinEpoch || epoch_seconds >= kMaxEpoch)
    throw InputError(std::string(what) + ": time " + std::to_string(epoch_seconds) +
                     " is not representable as a UTC date in years 0001..9999");
  const auto whole = static_cast<std::time_t>(std::floor(epoch_seconds));
  std::tm tm{};
  if (::gmtime_r(&whole, &tm) == nullptr)
    throw InputError(std::string(what) + ": gmtime failed for " + std::to_string(epoch_seconds));
  return tm;
}

}  // namespace

double wall_clock_epoch_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string format_iso8601_utc(double epoch_seconds) {
  const std::tm tm = to_utc_tm(epoch_seconds, "format_iso8601_utc");
  const double frac = epoch_seconds - std::floor(epoch_seconds);
  auto millis = static_cast<int>(std::lround(frac * 1000.0));
  char buf[96];  // sized for any int, which silences -Wformat-truncation
  if (millis == 0 || millis == 1000) {
    // A fraction that rounds to a whole second is printed as that second; gmtime above
    // already floored, so bump by formatting the rounded time instead.
    const std::tm t2 = millis == 1000 ? to_utc_tm(std::floor(epoch_seconds) + 1.0, "format_iso8601_utc") : tm;
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", t2.tm_year + 1900, t2.tm_mon + 1,
                  t2.tm_mday, t2.tm_hour, t2.tm_min, t2.tm_sec);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  }
  return buf;
}

std::string format_compact_utc(double epoch_seconds) {
  const std::tm tm = to_utc_tm(epoch_seconds, "format_compact_utc");
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace freshrec
