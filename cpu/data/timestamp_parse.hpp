#pragma once
#include <string_view>

namespace freshrec {

/// Epoch values at or above this magnitude are milliseconds, below it seconds.
/// 1e11 seconds is the year 5138 while 1e11 milliseconds is March 1973, so no
/// plausible event time is ambiguous under this rule.
inline constexpr double kEpochMillisThreshold = 1e11;
/// Latest accepted event time, epoch seconds (2100-01-01T00:00:00Z): anything later
/// is a unit mix-up (microseconds, nanoseconds) or garbage.
inline constexpr double kMaxEventTimestamp = 4102444800.0;

/// Turns a raw epoch number (seconds or milliseconds, decided by kEpochMillisThreshold)
/// into epoch seconds. Returns nullptr on success, else a static reason
/// ("not finite", "negative", "after 2100-01-01").
const char* normalize_epoch(double raw, double& seconds) noexcept;

/// Parses an ISO-8601 / RFC 3339 date-time into epoch seconds (UTC):
/// `YYYY-MM-DD[(T|t| )hh:mm[:ss[(.|,)fraction]][Z|z|(+|-)hh[:mm]|(+|-)hhmm]]`.
/// A time without a zone designator is taken as UTC (logs are written in UTC), and a
/// bare date as its midnight. Returns nullptr on success, else a static reason naming
/// the part at fault. The range check of normalize_epoch applies too.
const char* parse_iso8601(std::string_view text, double& seconds) noexcept;

/// Days since 1970-01-01 of a proleptic Gregorian civil date (H. Hinnant's algorithm).
long long days_from_civil(long long year, unsigned month, unsigned day) noexcept;

}  // namespace freshrec
