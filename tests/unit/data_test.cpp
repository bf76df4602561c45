// Interaction-log readers (MovieLens TSV/CSV, NDJSON), timestamps, IdMap and CSR.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/data/csr.hpp"
#include "cpu/data/generator.hpp"
#include "cpu/data/id_interner.hpp"
#include "cpu/data/id_map.hpp"
#include "cpu/data/line_reader.hpp"
#include "cpu/data/log_reader.hpp"
#include "cpu/data/timestamp_parse.hpp"
#include "cpu/util/error.hpp"

namespace fs = std::filesystem;
using namespace freshrec;

namespace {

constexpr double kMay1Noon = 1714564800.0;  // 2024-05-01T12:00:00Z

// A scratch directory per test, removed afterwards.
class DataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("freshrec_data_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  static DataConfig config_for(const std::string& path, DataFormat format, double max_bad = 1.0) {
    DataConfig c;
    c.path = path;
    c.format = format;
    c.max_bad_fraction = max_bad;
    return c;
  }
  fs::path dir_;
};

// Expects exactly these (line, reason fragment) errors, in order.
void expect_errors(const ParseReport& report, const std::vector<std::pair<std::size_t, std::string>>& want) {
  ASSERT_EQ(report.errors.size(), want.size());
  EXPECT_EQ(report.bad, want.size());
  for (std::size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(report.errors[k].line, want[k].first) << report.errors[k].to_string();
    EXPECT_NE(report.errors[k].reason.find(want[k].second), std::string::npos)
        << "line " << want[k].first << ": expected '" << want[k].second << "' in '"
        << report.errors[k].reason << "'";
  }
}

std::string ndjson(const std::string& user, const std::string& item, const std::string& type,
                   const std::string& ts, const std::string& props = "") {
  std::string s = "{\"user_id\": " + user;
  if (!item.empty()) s += ", \"item_id\": " + item;
  s += ", \"event_type\": \"" + type + "\", \"timestamp\": " + ts;
  if (!props.empty()) s += ", \"properties\": " + props;
  return s + "}";
}

}  // namespace

// ---------------------------------------------------------------- timestamps

TEST(Timestamp, Iso8601Forms) {
  double t = -1;
  ASSERT_EQ(parse_iso8601("2024-05-01T12:00:00Z", t), nullptr);
  EXPECT_DOUBLE_EQ(t, kMay1Noon);
  ASSERT_EQ(parse_iso8601("2024-05-01T14:00:00+02:00", t), nullptr);
  EXPECT_DOUBLE_EQ(t, kMay1Noon);
  ASSERT_EQ(parse_iso8601("2024-05-01T07:30:00-04:30", t), nullptr);
  EXPECT_DOUBLE_EQ(t, kMay1Noon);
  ASSERT_EQ(parse_iso8601("2024-05-01T14:00:00+0200", t), nullptr);
  EXPECT_DOUBLE_EQ(t, kMay1Noon);
  ASSERT_EQ(parse_iso8601("2024-05-01T12:00:00.250Z", t), nullptr);
  EXPECT_DOUBLE_EQ(t, kMay1Noon + 0.25);
  ASSERT_EQ(parse_iso8601("2024-05-01 12:00:00,5", t), nullptr);  // no zone: UTC
  EXPECT_DOUBLE_EQ(t, kMay1Noon + 0.5);
  ASSERT_EQ(parse_iso8601("2024-05-01t12:00z", t), nullptr);
  EXPECT_DOUBLE_EQ(t, kMay1Noon);
  ASSERT_EQ(parse_iso8601("2024-05-01", t), nullptr);
  EXPECT_DOUBLE_EQ(t, kMay1Noon - 12 * 3600);
  ASSERT_EQ(parse_iso8601("2024-02-29T00:00:00Z", t), nullptr);  // leap day
  ASSERT_EQ(parse_iso8601("1970-01-01T00:00:00Z", t), nullptr);
  EXPECT_DOUBLE_EQ(t, 0.0);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
}

TEST(Timestamp, Iso8601Rejects) {
  double t = 0;
  for (const char* bad :
       {"2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-04-31", "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z", "2024-05-01T12:00:00Zjunk", "2024-05-01T12:00:00+02:",
        "2024-05-01T12:00:00.Z", "24-05-01", "2024/05/01", "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z", "", "yesterday"}) {
    EXPECT_NE(parse_iso8601(bad, t), nullptr) << bad;
  }
}

TEST(Timestamp, EpochSecondsOrMillisByMagnitude) {
  double s = 0;
  ASSERT_EQ(normalize_epoch(kMay1Noon, s), nullptr);
  EXPECT_DOUBLE_EQ(s, kMay1Noon);
  ASSERT_EQ(normalize_epoch(1714564800123.0, s), nullptr);
  EXPECT_DOUBLE_EQ(s, 1714564800.123);
  ASSERT_EQ(normalize_epoch(kEpochMillisThreshold, s), nullptr);  // 1973 in millis
  EXPECT_DOUBLE_EQ(s, 1e8);
  EXPECT_NE(normalize_epoch(-1.0, s), nullptr);
  EXPECT_NE(normalize_epoch(kEpochMillisThreshold - 1, s), nullptr);  // seconds, year 5138
  EXPECT_NE(normalize_epoch(1.7e15, s), nullptr);                     // microseconds
  EXPECT_NE(normalize_epoch(NAN, s), nullptr);
  EXPECT_NE(normalize_epoch(INFINITY, s), nullptr);
}

// ---------------------------------------------------------------- MovieLens

TEST_F(DataFiles, MovielensTsv) {
  const auto path = write("u.data", "196\t242\t3\t881250949\n186\t302\t3.5\t891717742\r\n\n196\t377\t1\t878887116");
  ParseReport report;
  const InteractionLog log = load_interaction_log(config_for(path, DataFormat::kMovielensTsv), &report);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(report.lines, 3u);
  EXPECT_EQ(report.accepted, 3u);
  EXPECT_EQ(report.bad, 0u);
  ASSERT_EQ(log.users.size(), 2u);
  ASSERT_EQ(log.items.size(), 3u);
  EXPECT_EQ(log.users.id(log.user[0]), "196");
  EXPECT_EQ(log.user[2], log.user[0]);
  EXPECT_EQ(log.items.id(log.item[1]), "302");
  EXPECT_FLOAT_EQ(log.value[1], 3.5f);
  EXPECT_DOUBLE_EQ(log.timestamp[2], 878887116.0);
  for (EventType t : log.type) EXPECT_EQ(t, EventType::kRating);
  EXPECT_DOUBLE_EQ(log.max_timestamp(), 891717742.0);
}

TEST_F(DataFiles, MovielensCsvWithHeader) {
  const auto path = write("ratings.csv",
                          "\xEF\xBB\xBFuserId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,1029,3.0,1260759179\r\n"
                          "\"7\",\"31\",4.5,1260759200\r\n");
  ParseReport report;
  const InteractionLog log = load_interaction_log(config_for(path, DataFormat::kMovielensCsv), &report);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(report.lines, 3u);  // the header is not a data line
  EXPECT_EQ(report.bad, 0u);
  EXPECT_EQ(log.users.id(log.user[2]), "7");
  EXPECT_EQ(log.item[2], log.item[0]);  // quoted "31" is item 31
  EXPECT_FLOAT_EQ(log.value[0], 2.5f);
  EXPECT_DOUBLE_EQ(log.timestamp[1], 1260759179.0);
}

TEST_F(DataFiles, MovielensCsvWithoutHeaderAndMillis) {
  const auto path = write("r.csv", "1,31,2.5,1260759144000\n");
  const InteractionLog log = load_interaction_log(config_for(path, DataFormat::kMovielensCsv));
  ASSERT_EQ(log.size(), 1u);
  EXPECT_DOUBLE_EQ(log.timestamp[0], 1260759144.0);
}

TEST_F(DataFiles, MovielensBadLines) {
  const auto path = write("bad.data",
                          "1\t2\t3\t881250949\n"        // 1 ok
                          "1\t2\t3\n"                   // 2 three columns
                          "1\t2\t3\t4\t5\n"             // 3 five columns
                          "1\t2\tabc\t881250949\n"      // 4 rating not a number
                          "1\t2\tnan\t881250949\n"      // 5 NaN rating
                          "1\t2\t4\t881250949x\n"       // 6 trailing garbage
                          "1\t2\t4\t-5\n"               // 7 negative time
                          "1\t2\t4\t1e17\n"             // 8 absurd time
                          "\t2\t4\t881250949\n"         // 9 missing user
                          "1\t\t4\t881250949\n"         // 10 missing item
                          "1\t2\tinf\t881250949\n"      // 11 infinite rating
                          "\n"                          // 12 empty: ignored
                          "1 2 3 881250949\n"           // 13 spaces, not tabs
                          "2\t3\t5\t881250950\n");      // 14 ok
  ParseReport report;
  const InteractionLog log = load_interaction_log(config_for(path, DataFormat::kMovielensTsv), &report);
  EXPECT_EQ(log.size(), 2u);
  EXPECT_EQ(report.lines, 13u);
  EXPECT_EQ(report.accepted, 2u);
  expect_errors(report, {{2, "expected 4 tab-separated columns (user item rating timestamp), found 3"},
                         {3, "found 5"},
                         {4, "column 3 'rating': not a number: 'abc'"},
                         {5, "column 3 'rating': not finite: 'nan'"},
                         {6, "column 4 'timestamp': not a number: '881250949x'"},
                         {7, "column 4 'timestamp': negative"},
                         {8, "column 4 'timestamp': after 2100-01-01"},
                         {9, "column 1 'user': empty id"},
                         {10, "column 2 'item': empty id"},
                         {11, "column 3 'rating': not finite: 'inf'"},
                         {13, "found 1"}});
  EXPECT_EQ(report.errors[0].file, path);
  EXPECT_EQ(report.errors[0].to_string().rfind(path + ":2: ", 0), 0u);
}

// ---------------------------------------------------------------- NDJSON

TEST_F(DataFiles, NdjsonEvents) {
  const std::string lines[] = {
      ndjson("\"u1\"", "\"i9\"", "view", "1714564800"),
      ndjson("\"u1\"", "\"i7\"", "click", "1714564800500"),  // millis
      ndjson("\"u2\"", "\"i9\"", "add_to_cart", "\"2024-05-01T14:00:00+02:00\""),
      ndjson("\"u2\"", "\"i9\"", "purchase", "\"2024-05-01T12:00:01.25Z\"",
             R"({"category": "shoes", "price": 79.9})"),
      ndjson("\"u3\"", "", "search", "1714564801", R"({"query": "running shoes"})"),
      ndjson("17", "42", "rating", "\"1714564802\"", R"({"rating": 4.5, "extra": [1, {"a": null}]})"),
      // Keys in another order, unknown keys, whitespace.
      R"(  { "timestamp": 1714564803, "item_id": "i7", "session": {"id": 3}, "event_type": "search", "user_id": "17" }  )",
  };
  std::string text;
  for (const auto& l : lines) text += l + "\n \t\n";  // blank lines are skipped, not counted
  const auto path = write("events.ndjson", text);
  ParseReport report;
  const InteractionLog log = load_interaction_log(config_for(path, DataFormat::kNdjson, 0.0), &report);
  EXPECT_EQ(report.lines, 7u);
  EXPECT_EQ(report.bad, 0u) << (report.errors.empty() ? "" : report.errors[0].to_string());
  EXPECT_EQ(report.without_item, 1u);
  EXPECT_EQ(report.accepted, 6u);
  ASSERT_EQ(log.size(), 6u);
  ASSERT_EQ(log.users.size(), 3u);  // u1, u2, 17 (u3 only searched)
  EXPECT_EQ(log.users.id(log.user[4]), "17");
  EXPECT_EQ(log.user[5], log.user[4]);  // numeric 17 and "17" are one user
  EXPECT_EQ(log.items.id(log.item[4]), "42");
  EXPECT_EQ(log.item[5], log.item[1]);
  const EventType types[] = {EventType::kView, EventType::kClick, EventType::kAddToCart,
                             EventType::kPurchase, EventType::kRating, EventType::kSearch};
  const double times[] = {kMay1Noon, kMay1Noon + 0.5, kMay1Noon, kMay1Noon + 1.25, kMay1Noon + 2,
                          kMay1Noon + 3};
  for (std::size_t k = 0; k < 6; ++k) {
    EXPECT_EQ(log.type[k], types[k]) << k;
    EXPECT_DOUBLE_EQ(log.timestamp[k], times[k]) << k;
    EXPECT_FLOAT_EQ(log.value[k], k == 4 ? 4.5f : 1.0f) << k;
  }
}

TEST(Ndjson, SingleLineFillsEvent) {
  Event e;
  std::string reason;
  ASSERT_TRUE(parse_ndjson_event(
      R"({"user_id":"u1","item_id":"i9","event_type":"purchase","timestamp":"2024-05-01T12:00:00Z",)"
      R"("properties":{"category":"shoes","price":79.9,"query":"run\"fast\"","rating":null}})",
      e, reason))
      << reason;
  EXPECT_EQ(e.user_id, "u1");
  EXPECT_EQ(e.item_id, "i9");
  EXPECT_EQ(e.type, EventType::kPurchase);
  EXPECT_DOUBLE_EQ(e.timestamp, kMay1Noon);
  EXPECT_EQ(e.category, "shoes");
  EXPECT_DOUBLE_EQ(e.price, 79.9);
  EXPECT_EQ(e.query, "run\"fast\"");
  EXPECT_TRUE(std::isnan(e.rating));

  // The same Event reused: every field is overwritten, absent ones reset.
  ASSERT_TRUE(parse_ndjson_event(R"({"user_id":5,"event_type":"search","timestamp":1714564800000})", e, reason));
  EXPECT_EQ(e.user_id, "5");
  EXPECT_TRUE(e.item_id.empty());
  EXPECT_EQ(e.type, EventType::kSearch);
  EXPECT_DOUBLE_EQ(e.timestamp, kMay1Noon);
  EXPECT_TRUE(e.category.empty());
  EXPECT_TRUE(std::isnan(e.price));

  EXPECT_FALSE(parse_ndjson_event(R"({"user_id":"u1","item_id":"i9","event_type":"view"})", e, reason));
  EXPECT_EQ(reason, "missing timestamp");
}

TEST_F(DataFiles, NdjsonBadLines) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"user_id": "u1", "item_id": "i9", "event_type": "view", "timestamp": )", "invalid JSON"},
      {ndjson("\"u1\"", "\"i9\"", "view", "1714564800") + " x", "invalid JSON: the line does not end with '}'"},
      {ndjson("\"u1\"", "\"i9\"", "view", "1714564800") + R"( {"a":1})", "trailing content"},
      {ndjson("\"u1\"", "\"i9\"", "like", "1714564800"), "unknown event_type 'like'"},
      {R"({"item_id": "i9", "event_type": "view", "timestamp": 1714564800})", "missing user_id"},
      {ndjson("null", "\"i9\"", "view", "1714564800"), "missing user_id"},
      {ndjson("\"u1\"", "", "click", "1714564800"), "missing item_id (required for a click event)"},
      {ndjson("\"u1\"", "\"i9\"", "rating", "1714564800"), "rating event without properties.rating"},
      {ndjson("\"u1\"", "\"i9\"", "view", "-3"), "timestamp: negative"},
      {ndjson("\"u1\"", "\"i9\"", "view", "1714564800000000"), "timestamp: after 2100-01-01"},
      {ndjson("\"u1\"", "\"i9\"", "view", "\"2024-05-01T25:00:00Z\""), "timestamp: ISO-8601: hour"},
      {ndjson("\"u1\"", "\"i9\"", "view", "true"), "timestamp: expected a number or an ISO-8601 string"},
      {ndjson("\"u1.5\"", "\"i9\"", "view", "1714564800") , ""},  // a valid line among the bad
      {ndjson("1.5", "\"i9\"", "view", "1714564800"), "user_id: a numeric id must be an integer"},
      {ndjson("[1]", "\"i9\"", "view", "1714564800"), "user_id: expected a string or an integer"},
      {ndjson("\"u1\"", "\"i9\"", "view", "1714564800", R"({"price": "cheap"})"),
       "properties.price: expected a number"},
      {ndjson("\"u1\"", "\"i9\"", "view", "1714564800", "[]"), "properties: expected an object"},
      {R"(["u1", "i9"])", "not a JSON object"},
      {R"({"user_id": "u1", "item_id": "i9", "timestamp": 1714564800})", "missing event_type"},
      {ndjson("\"u1\"", "\"i9\"", "rating", "1714564800", R"({"rating": 1e999})"), "invalid JSON"},
  };
  std::string text;
  std::vector<std::pair<std::size_t, std::string>> want;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    text += cases[k].first + "\n";
    if (!cases[k].second.empty()) want.emplace_back(k + 1, cases[k].second);
  }
  const auto path = write("bad.ndjson", text);
  ParseReport report;
  const InteractionLog log = load_interaction_log(config_for(path, DataFormat::kNdjson), &report);
  EXPECT_EQ(log.size(), 1u);
  EXPECT_EQ(report.lines, cases.size());
  EXPECT_EQ(report.accepted, 1u);
  expect_errors(report, want);
}

TEST_F(DataFiles, ForEachNdjsonEventDeliversSearchesToo) {
  const auto path = write("e.ndjson", ndjson("\"u1\"", "\"i9\"", "view", "1714564800") + "\n" +
                                          ndjson("\"u1\"", "", "search", "1714564801",
                                                 R"({"query": "boots"})") +
                                          "\n{bad\n");
  std::vector<Event> seen;
  ParseReport report;
  DataConfig config;
  config.max_bad_fraction = 0.5;
  for_each_ndjson_event(path, config, [&](const Event& e) { seen.push_back(e); }, &report);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].query, "boots");
  EXPECT_EQ(report.accepted, 1u);
  EXPECT_EQ(report.without_item, 1u);
  EXPECT_EQ(report.bad, 1u);
  config.max_bad_fraction = 0.3;
  EXPECT_THROW(for_each_ndjson_event(path, config, [](const Event&) {}), InputError);
}

// Snapshots store ids one a line and refuse ids holding '\n' or '\r' (after training);
// the readers must reject such a line up front, naming it, and keep the others.
TEST_F(DataFiles, IdsWithLineBreaksAreBadLines) {
  const std::string good = ndjson("\"u1\"", "\"i9\"", "view", "1714564800");
  const auto path = write("breaks.ndjson", good + "\n" + ndjson("\"u\\n2\"", "\"i9\"", "view", "1714564800") + "\n" +
                                               ndjson("\"u3\"", "\"i\\r9\"", "click", "1714564800") + "\n" + good + "\n");
  ParseReport report;
  const InteractionLog log = load_interaction_log(config_for(path, DataFormat::kNdjson), &report);
  EXPECT_EQ(log.size(), 2u);
  expect_errors(report, {{2, "user_id"}, {3, "item_id"}});
  for (const auto& e : report.errors) EXPECT_NE(e.reason.find("line break"), std::string::npos) << e.to_string();

  const auto tsv = write("breaks.data", "1\t2\t3\t881250949\nu\r1\t2\t3\t881250949\n1\t2\r3\t4\t881250949\n");
  const InteractionLog ml = load_interaction_log(config_for(tsv, DataFormat::kMovielensTsv), &report);
  EXPECT_EQ(ml.size(), 1u);
  expect_errors(report, {{2, "user"}, {3, "item"}});
}

// ---------------------------------------------------------------- error policy

TEST_F(DataFiles, BadFractionThreshold) {
  std::string text;
  for (int k = 1; k <= 100; ++k)
    text += k == 10 || k == 50 ? "7\t8\tbroken\t881250949\n" : std::to_string(k) + "\t5\t4\t881250949\n";
  const auto path = write("some_bad.data", text);

  DataConfig config = config_for(path, DataFormat::kMovielensTsv, 0.02);  // 2/100 is not above 2%
  ParseReport report;
  EXPECT_EQ(load_interaction_log(config, &report).size(), 98u);
  EXPECT_DOUBLE_EQ(report.bad_fraction(), 0.02);

  config.max_bad_fraction = 0.01;
  try {
    load_interaction_log(config);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("2 of 100 lines are bad"), std::string::npos) << msg;
    EXPECT_NE(msg.find("2.00%"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path + ":10: column 3 'rating': not a number: 'broken'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path + ":50: "), std::string::npos) << msg;
  }

  config.max_bad_fraction = 1.0;
  config.max_reported_errors = 1;  // every bad line counted, only the first kept
  load_interaction_log(config, &report);
  EXPECT_EQ(report.bad, 2u);
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_EQ(report.errors[0].line, 10u);
}

TEST_F(DataFiles, MissingOrUnreadableFile) {
  const std::string missing = (dir_ / "nope.data").string();
  for (DataFormat f : {DataFormat::kMovielensTsv, DataFormat::kMovielensCsv, DataFormat::kNdjson}) {
    try {
      load_interaction_log(config_for(missing, f));
      FAIL() << "expected InputError";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(load_interaction_log(config_for(dir_.string(), DataFormat::kNdjson)), InputError);
  EXPECT_THROW(for_each_ndjson_event(missing, DataConfig{}, [](const Event&) {}), InputError);
}

TEST_F(DataFiles, EmptyFileGivesEmptyLog) {
  const auto path = write("empty.data", "\n\n");
  ParseReport report;
  EXPECT_TRUE(load_interaction_log(config_for(path, DataFormat::kMovielensTsv, 0.0), &report).empty());
  EXPECT_EQ(report.lines, 0u);
}

// ---------------------------------------------------------------- line reader

TEST_F(DataFiles, LineReaderAcrossChunksAndLongLines) {
  // Lines straddle the 4 KiB chunk boundary and one is longer than a whole chunk.
  std::vector<std::string> want;
  std::string text;
  for (int k = 0; k < 400; ++k) {
    std::string line(static_cast<std::size_t>(k % 97 == 5 ? 9000 : k % 37), char('a' + k % 26));
    line += std::to_string(k);
    want.push_back(line);
    text += line + (k % 3 == 0 ? "\r\n" : "\n");
  }
  text.pop_back();  // last line unterminated
  if (text.back() == '\r') text.pop_back();
  const auto path = write("lines.txt", text);
  LineReader reader(path, 4096, 64);
  std::string_view line;
  std::size_t n = 0;
  while (reader.next(line)) {
    ASSERT_LT(n, want.size());
    EXPECT_EQ(line, want[n]) << "line " << n + 1;
    EXPECT_EQ(reader.line_number(), n + 1);
    EXPECT_GE(reader.readable_from(line.data()), line.size() + 64);
    ++n;
  }
  EXPECT_EQ(n, want.size());
  EXPECT_GT(reader.estimated_lines(), 0u);
}

// ---------------------------------------------------------------- generated data

TEST_F(DataFiles, GeneratedLogMatchesItsNdjsonFile) {
  DataConfig config;
  config.format = DataFormat::kGenerated;
  config.generator.events = 20000;
  config.generator.users = 300;
  config.generator.items = 200;
  ParseReport report;
  const InteractionLog generated = load_interaction_log(config, &report);
  ASSERT_GT(generated.size(), 0u);
  EXPECT_EQ(report.accepted, generated.size());

  const std::string path = (dir_ / "gen.ndjson").string();
  write_ndjson(config.generator, path);
  ParseReport file_report;
  const InteractionLog read = load_interaction_log(config_for(path, DataFormat::kNdjson, 0.0), &file_report);
  EXPECT_EQ(file_report.bad, 0u);
  EXPECT_EQ(file_report.lines, static_cast<std::size_t>(config.generator.events));
  ASSERT_EQ(read.size(), generated.size());
  ASSERT_EQ(read.users.size(), generated.users.size());
  ASSERT_EQ(read.items.size(), generated.items.size());
  for (std::size_t k = 0; k < read.size(); ++k) {
    ASSERT_EQ(read.users.id(read.user[k]), generated.users.id(generated.user[k])) << k;
    ASSERT_EQ(read.items.id(read.item[k]), generated.items.id(generated.item[k])) << k;
    ASSERT_EQ(read.type[k], generated.type[k]) << k;
    ASSERT_NEAR(read.timestamp[k], generated.timestamp[k], 1e-3) << k;
  }
}

// ---------------------------------------------------------------- real data

TEST(MovieLens100K, LoadsAllRatings) {
  const std::string path = std::string(FRESHREC_SHARED_DATA_DIR) + "/ml-100k/u.data";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  DataConfig config;
  config.path = path;
  config.format = DataFormat::kMovielensTsv;
  config.max_bad_fraction = 0.0;
  ParseReport report;
  const InteractionLog log = load_interaction_log(config, &report);
  EXPECT_EQ(log.size(), 100000u);
  EXPECT_EQ(report.lines, 100000u);
  EXPECT_EQ(report.bad, 0u);
  EXPECT_EQ(log.users.size(), 943u);
  EXPECT_EQ(log.items.size(), 1682u);
  EXPECT_EQ(log.users.id(log.user[0]), "196");
  EXPECT_EQ(log.items.id(log.item[0]), "242");
  float lo = 10, hi = -10;
  for (float v : log.value) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(lo, 1.0f);
  EXPECT_EQ(hi, 5.0f);
}

// ---------------------------------------------------------------- IdMap

TEST(IdMap, InternFindCopyMoveKeepIds) {
  IdMap m;
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.intern("alice"), 0u);
  EXPECT_EQ(m.intern("bob"), 1u);
  EXPECT_EQ(m.intern("alice"), 0u);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.find("bob"), std::optional<std::uint32_t>(1u));
  EXPECT_FALSE(m.find("carol").has_value());
  EXPECT_EQ(m.id(1), "bob");

  // Enough ids to rehash; views into the storage must survive it.
  for (int k = 0; k < 5000; ++k) m.intern("user-with-a-long-external-id-" + std::to_string(k));
  EXPECT_EQ(*m.find("alice"), 0u);
  EXPECT_EQ(*m.find("user-with-a-long-external-id-4999"), 5001u);

  IdMap copy(m);
  EXPECT_EQ(copy.size(), m.size());
  EXPECT_EQ(copy.intern("zed"), 5002u);  // the copy grows alone
  EXPECT_FALSE(m.find("zed").has_value());
  for (std::uint32_t k = 0; k < m.size(); ++k) ASSERT_EQ(copy.id(k), m.id(k));

  IdMap assigned;
  assigned.intern("x");
  assigned = copy;
  EXPECT_EQ(assigned.size(), 5003u);
  EXPECT_EQ(*assigned.find("zed"), 5002u);
  EXPECT_FALSE(assigned.find("x").has_value());

  IdMap moved(std::move(copy));
  EXPECT_EQ(*moved.find("user-with-a-long-external-id-17"), 19u);
  EXPECT_EQ(moved.id(5002), "zed");
  IdMap move_assigned;
  move_assigned = std::move(moved);
  EXPECT_EQ(*move_assigned.find("bob"), 1u);
  EXPECT_EQ(move_assigned.intern("new"), 5003u);
}

TEST(IdInterner, AgreesWithIdMapOnEveryIdForm) {
  // Numbered ids with the prefix of the first one ("u") take the array path; everything
  // else (other prefixes, leading zeros, huge numbers, long ids) the hash table. Both must
  // give IdMap's first-seen indices, and an id must map to one index whatever its path.
  IdMap map;
  map.intern("u5");  // ids already in the map are indexed by the constructor
  map.intern("preloaded-long-identifier-xyz");
  IdInterner interner(map);
  std::vector<std::string> ids = {"u5", "u17", "17", "u017", "u0", "x", "", "u4194304", "u4194303",
                                  "preloaded-long-identifier-xyz", "u12345678901234567890",
                                  "a-very-long-external-identifier-0001", "v17"};
  for (int k = 0; k < 20000; ++k) {  // enough to grow the table and the array several times
    ids.push_back("u" + std::to_string((k * 7919) % 30011));
    ids.push_back("session-" + std::to_string(k % 4999) + "-with-a-tail");
    ids.push_back(std::to_string(k % 3001));
  }
  IdMap reference;
  reference.intern("u5");
  reference.intern("preloaded-long-identifier-xyz");
  for (const std::string& id : ids) {
    const std::uint32_t got = interner.intern(id);
    ASSERT_EQ(got, reference.intern(id)) << id;
    ASSERT_EQ(map.id(got), id);
  }
  EXPECT_EQ(map.size(), reference.size());
  for (const std::string& id : ids) ASSERT_EQ(interner.intern(id), *reference.find(id)) << id;
  EXPECT_EQ(map.size(), reference.size());  // the second pass found everything
}

// ---------------------------------------------------------------- CSR

TEST(Csr, BuildSumLastAndTranspose) {
  // 3 x 4 with duplicates at (0,2) and (2,1), given out of order.
  const std::vector<CooEntry> entries = {{2, 1, 1.0f}, {0, 2, 2.0f}, {0, 0, 1.5f}, {2, 3, 4.0f},
                                         {0, 2, 3.0f}, {2, 1, 5.0f}};
  const CsrMatrix sum = build_csr(3, 4, entries, DuplicatePolicy::kSum);
  EXPECT_EQ(sum.rows, 3);
  EXPECT_EQ(sum.cols, 4);
  EXPECT_EQ(sum.indptr, (std::vector<std::int64_t>{0, 2, 2, 4}));
  EXPECT_EQ(sum.indices, (std::vector<std::int32_t>{0, 2, 1, 3}));
  EXPECT_EQ(sum.values, (std::vector<float>{1.5f, 5.0f, 6.0f, 4.0f}));
  EXPECT_EQ(sum.row_size(1), 0);

  const CsrMatrix last = build_csr(3, 4, entries, DuplicatePolicy::kLast);
  EXPECT_EQ(last.indices, sum.indices);
  EXPECT_EQ(last.values, (std::vector<float>{1.5f, 3.0f, 5.0f, 4.0f}));

  const CsrMatrix t = sum.transpose();
  EXPECT_EQ(t.rows, 4);
  EXPECT_EQ(t.cols, 3);
  EXPECT_EQ(t.indptr, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(t.indices, (std::vector<std::int32_t>{0, 2, 0, 2}));
  EXPECT_EQ(t.values, (std::vector<float>{1.5f, 6.0f, 5.0f, 4.0f}));
  const CsrMatrix back = t.transpose();
  EXPECT_EQ(back.indptr, sum.indptr);
  EXPECT_EQ(back.indices, sum.indices);
  EXPECT_EQ(back.values, sum.values);

  EXPECT_THROW(build_csr(3, 4, {{3, 0, 1.0f}}, DuplicatePolicy::kSum), InputError);
  const CsrMatrix empty = build_csr(2, 2, {}, DuplicatePolicy::kSum);
  EXPECT_EQ(empty.nnz(), 0);
  EXPECT_EQ(empty.indptr, (std::vector<std::int64_t>{0, 0, 0}));
}
