#include "cpu/data/timestamp_parse.hpp"

#include <cmath>

namespace freshrec {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at `pos`; false when any is missing.
bool read_digits(std::string_view s, std::size_t& pos, int n, int& out) noexcept {
  if (pos + static_cast<std::size_t>(n) > s.size()) return false;
  int v = 0;
  for (int k = 0; k < n; ++k) {
    const char c = s[pos + static_cast<std::size_t>(k)];
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  pos += static_cast<std::size_t>(n);
  out = v;
  return true;
}

bool is_leap(long long y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(long long y, unsigned m) noexcept {
  static constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29u : kDays[m - 1];
}

}  // namespace

long long days_from_civil(long long y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

const char* normalize_epoch(double raw, double& seconds) noexcept {
  if (!std::isfinite(raw)) return "not finite";
  if (raw < 0.0) return "negative";
  const double s = raw >= kEpochMillisThreshold ? raw / 1000.0 : raw;
  if (s > kMaxEventTimestamp) return "after 2100-01-01 (not epoch seconds or milliseconds)";
  seconds = s;
  return nullptr;
}

const char* parse_iso8601(std::string_view s, double& seconds) noexcept {
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0;
  if (!read_digits(s, pos, 4, year)) return "ISO-8601: expected a 4-digit year";
  if (pos >= s.size() || s[pos] != '-') return "ISO-8601: expected '-' after the year";
  ++pos;
  if (!read_digits(s, pos, 2, month) || month < 1 || month > 12)
    return "ISO-8601: month must be 01..12";
  if (pos >= s.size() || s[pos] != '-') return "ISO-8601: expected '-' after the month";
  ++pos;
  if (!read_digits(s, pos, 2, day) || day < 1 ||
      static_cast<unsigned>(day) > days_in_month(year, static_cast<unsigned>(month)))
    return "ISO-8601: day out of range for the month";

  int hour = 0, minute = 0, second = 0;
  double fraction = 0.0;
  int offset_minutes = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')
      return "ISO-8601: expected 'T' between date and time";
    ++pos;
    if (!read_digits(s, pos, 2, hour) || hour > 23) return "ISO-8601: hour must be 00..23";
    if (pos >= s.size() || s[pos] != ':') return "ISO-8601: expected ':' after the hour";
    ++pos;
    if (!read_digits(s, pos, 2, minute) || minute > 59) return "ISO-8601: minute must be 00..59";
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      // 60 admits a leap second; it lands on the next minute's first second.
      if (!read_digits(s, pos, 2, second) || second > 60) return "ISO-8601: second must be 00..60";
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        double scale = 0.1;
        const std::size_t first = pos;
        while (pos < s.size() && is_digit(s[pos])) {
          fraction += (s[pos] - '0') * scale;
          scale *= 0.1;
          ++pos;
        }
        if (pos == first) return "ISO-8601: expected digits after the decimal point";
      }
    }
    if (pos < s.size()) {
      const char z = s[pos];
      if (z == 'Z' || z == 'z') {
        ++pos;
      } else if (z == '+' || z == '-') {
        ++pos;
        int oh = 0, om = 0;
        if (!read_digits(s, pos, 2, oh) || oh > 23) return "ISO-8601: offset hours must be 00..23";
        bool colon = false;
        if (pos < s.size() && s[pos] == ':') {
          ++pos;
          colon = true;
        }
        if ((colon || pos < s.size()) && !read_digits(s, pos, 2, om))
          return "ISO-8601: offset minutes must be 2 digits";
        if (om > 59) return "ISO-8601: offset minutes must be 00..59";
        offset_minutes = (z == '+' ? 1 : -1) * (oh * 60 + om);
      } else {
        return "ISO-8601: unexpected character after the time";
      }
    }
    if (pos != s.size()) return "ISO-8601: trailing characters after the zone";
  }

  const long long days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  // Local time minus its offset is UTC.
  const long long whole = days * 86400LL + hour * 3600LL + minute * 60LL + second -
                          offset_minutes * 60LL;
  const double value = static_cast<double>(whole) + fraction;
  if (value < 0.0) return "negative (before 1970-01-01)";
  if (value > kMaxEventTimestamp) return "after 2100-01-01";
  seconds = value;
  return nullptr;
}

}  // namespace freshrec
