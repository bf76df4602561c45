// MovieLens ratings: u.data (tab-separated, no header) and ratings.csv (with header).
#include <charconv>
#include <cmath>
#include <cstring>

#include "cpu/data/id_interner.hpp"
#include "cpu/data/line_reader.hpp"
#include "cpu/data/log_reader_internal.hpp"
#include "cpu/data/timestamp_parse.hpp"

namespace freshrec::detail {
namespace {

constexpr std::size_t kColumns = 4;
constexpr const char* kColumnNames[kColumns] = {"user", "item", "rating", "timestamp"};

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// CSV exports sometimes quote ids; the quotes are not part of the id.
std::string_view unquote(std::string_view s) noexcept {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::string column_prefix(std::size_t c) {
  return "column " + std::to_string(c + 1) + " '" + kColumnNames[c] + "': ";
}

std::string quoted(std::string_view s) {
  constexpr std::size_t kMax = 60;
  std::string out = "'";
  out.append(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

// Splits into exactly four fields; returns the number of fields found (may exceed 4).
std::size_t split(std::string_view line, char sep, std::string_view (&fields)[kColumns]) noexcept {
  std::size_t count = 0;
  const char* p = line.data();
  const char* const end = p + line.size();
  for (;;) {
    const auto* q = static_cast<const char*>(std::memchr(p, sep, static_cast<std::size_t>(end - p)));
    const char* stop = q ? q : end;
    if (count < kColumns) fields[count] = std::string_view(p, static_cast<std::size_t>(stop - p));
    ++count;
    if (!q) return count;
    p = q + 1;
  }
}

struct Row {
  std::string_view user;
  std::string_view item;
  float rating = 0.0f;
  double timestamp = 0.0;
};

bool parse_row(std::string_view line, char sep, Row& row, std::string& reason) {
  std::string_view f[kColumns];
  const std::size_t n = split(line, sep, f);
  if (n != kColumns) {
    reason = "expected 4 " + std::string(sep == '\t' ? "tab" : "comma") +
             "-separated columns (user item rating timestamp), found " + std::to_string(n);
    return false;
  }
  row.user = unquote(trim(f[0]));
  row.item = unquote(trim(f[1]));
  if (row.user.empty()) {
    reason = column_prefix(0) + "empty id";
    return false;
  }
  if (row.item.empty()) {
    reason = column_prefix(1) + "empty id";
    return false;
  }
  // A lone '\r' inside a line: snapshots store ids one a line and refuse it (after training).
  for (std::size_t c = 0; c < 2; ++c)
    if ((c == 0 ? row.user : row.item).find('\r') != std::string_view::npos) {
      reason = column_prefix(c) + "id holds a line break ('\\r')";
      return false;
    }
  const std::string_view r = trim(f[2]);
  {
    const auto [ptr, ec] = std::from_chars(r.data(), r.data() + r.size(), row.rating);
    if (ec != std::errc() || ptr != r.data() + r.size() || r.empty()) {
      reason = column_prefix(2) + "not a number: " + quoted(r);
      return false;
    }
    // from_chars accepts "nan" and "inf"; neither may reach a factor.
    if (!std::isfinite(row.rating)) {
      reason = column_prefix(2) + "not finite: " + quoted(r);
      return false;
    }
  }
  const std::string_view t = trim(f[3]);
  double raw = 0.0;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), raw);
  if (ec != std::errc() || ptr != t.data() + t.size() || t.empty()) {
    reason = column_prefix(3) + "not a number: " + quoted(t);
    return false;
  }
  if (const char* why = normalize_epoch(raw, row.timestamp)) {
    reason = column_prefix(3) + why + ": " + quoted(t);
    return false;
  }
  return true;
}

bool is_csv_header(std::string_view line) noexcept {
  std::string_view f[kColumns];
  if (split(line, ',', f) != kColumns) return false;
  return unquote(trim(f[0])) == "userId" && unquote(trim(f[1])) == "movieId" &&
         unquote(trim(f[2])) == "rating" && unquote(trim(f[3])) == "timestamp";
}

}  // namespace

void read_movielens(const DataConfig& config, char separator, InteractionLog& log, ParseReport& report) {
  LineReader reader(config.path);
  IdInterner users(log.users), items(log.items);
  std::string reason;
  std::string_view line;
  Row row;
  bool first = true;
  while (reader.next(line)) {
    if (is_blank(line)) continue;
    if (first) {
      first = false;
      log.reserve(log.size() + reader.estimated_lines());
      if (separator == ',' && is_csv_header(line)) continue;
    }
    ++report.lines;
    if (!parse_row(line, separator, row, reason)) {
      note_bad_line(report, config.max_reported_errors, config.path, reader.line_number(),
                    std::move(reason));
      continue;
    }
    const std::uint32_t u = users.intern(row.user);
    const std::uint32_t i = items.intern(row.item);
    log.add(u, i, row.timestamp, row.rating, EventType::kRating);
    ++report.accepted;
  }
}

}  // namespace freshrec::detail
