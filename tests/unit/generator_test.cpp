// The embedded e-commerce generator: determinism, sizes, time order, the funnel, Zipf
// popularity, sessions and intent shifts, and the NDJSON file's round trip.
#include "cpu/data/generator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "cpu/data/log_reader.hpp"
#include "cpu/data/timestamp_parse.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

GeneratorConfig small_config(std::int64_t events = 60000) {
  GeneratorConfig c;
  c.events = events;
  c.users = 800;
  c.items = 1500;
  c.categories = 20;
  c.days = 30.0;
  c.seed = 11;
  return c;
}

std::vector<GeneratedEvent> generate_all(const GeneratorConfig& config, GeneratorStats* stats = nullptr) {
  EventGenerator gen(config);
  std::vector<GeneratedEvent> events;
  GeneratedEvent e;
  while (gen.next(e)) events.push_back(e);
  if (stats) *stats = gen.stats();
  return events;
}

void expect_same_log(const InteractionLog& a, const InteractionLog& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.item, b.item);
  EXPECT_EQ(a.timestamp, b.timestamp);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.type, b.type);
  ASSERT_EQ(a.users.size(), b.users.size());
  ASSERT_EQ(a.items.size(), b.items.size());
  for (std::uint32_t u = 0; u < a.users.size(); ++u) ASSERT_EQ(a.users.id(u), b.users.id(u));
  for (std::uint32_t i = 0; i < a.items.size(); ++i) ASSERT_EQ(a.items.id(i), b.items.id(i));
}

// A user's events split where the silence reaches the session gap.
struct SessionView {
  std::uint32_t user;
  std::vector<GeneratedEvent> events;
};
std::vector<SessionView> split_sessions(const std::vector<GeneratedEvent>& events, double gap) {
  std::map<std::uint32_t, std::vector<GeneratedEvent>> by_user;
  for (const auto& e : events) by_user[e.user].push_back(e);
  std::vector<SessionView> sessions;
  for (auto& [user, list] : by_user) {
    for (std::size_t k = 0; k < list.size(); ++k) {
      if (k == 0 || list[k].timestamp - list[k - 1].timestamp >= gap) sessions.push_back({user, {}});
      sessions.back().events.push_back(list[k]);
    }
  }
  return sessions;
}

TEST(GeneratorTest, SameSeedSameLogDifferentSeedDifferentLog) {
  const GeneratorConfig c = small_config(30000);
  const InteractionLog a = generate_interaction_log(c);
  const InteractionLog b = generate_interaction_log(c);
  expect_same_log(a, b);

  GeneratorConfig other = c;
  other.seed = 12;
  const InteractionLog d = generate_interaction_log(other);
  const std::size_t n = std::min(a.size(), d.size());
  std::size_t same = 0;
  for (std::size_t k = 0; k < n; ++k)
    same += a.users.id(a.user[k]) == d.users.id(d.user[k]) && a.items.id(a.item[k]) == d.items.id(d.item[k]);
  EXPECT_LT(same, n / 10);
}

TEST(GeneratorTest, EmitsExactlyTheRequestedEventCount) {
  for (std::int64_t n : {0LL, 1LL, 7LL, 10000LL, 12345LL}) {
    GeneratorStats stats;
    const auto events = generate_all(small_config(n), &stats);
    EXPECT_EQ(static_cast<std::int64_t>(events.size()), n);
    EXPECT_EQ(stats.emitted, n);
    // The log keeps exactly the events with an item.
    const InteractionLog log = generate_interaction_log(small_config(n));
    EXPECT_EQ(static_cast<std::int64_t>(log.size()), n - stats.searches) << n;
  }
}

TEST(GeneratorTest, LogMatchesTheEventStream) {
  const GeneratorConfig c = small_config(20000);
  const InteractionLog log = generate_interaction_log(c);
  std::size_t k = 0, searches = 0;
  bool ok = true;
  generate_events(c, [&](const Event& e) {
    if (e.type == EventType::kSearch) {
      ++searches;
      ok = ok && e.item_id.empty() && !e.query.empty() && std::isnan(e.price);
      return;
    }
    ok = ok && k < log.size() && log.users.id(log.user[k]) == e.user_id && log.items.id(log.item[k]) == e.item_id &&
         log.timestamp[k] == e.timestamp && log.type[k] == e.type && log.value[k] == 1.0f;
    ++k;
  });
  EXPECT_TRUE(ok);
  EXPECT_EQ(k, log.size());
  EXPECT_GT(searches, 0u);
}

TEST(GeneratorTest, TimeOrderedInsideTheSpanAtMillisecondResolution) {
  const GeneratorConfig c = small_config();
  const auto events = generate_all(c);
  const double end = c.start_time + c.days * 86400.0;
  for (std::size_t k = 0; k < events.size(); ++k) {
    const double t = events[k].timestamp;
    ASSERT_GE(t, c.start_time);
    ASSERT_LE(t, end);
    if (k > 0) {
      ASSERT_LE(events[k - 1].timestamp, t) << k;
    }
    ASSERT_EQ(std::round(t * 1000.0) / 1000.0, t);
  }
  // The events cover the span rather than bunching at its start.
  EXPECT_LT(events.front().timestamp, c.start_time + 0.05 * (end - c.start_time));
  EXPECT_GT(events.back().timestamp, c.start_time + 0.95 * (end - c.start_time));
}

TEST(GeneratorTest, FunnelNarrowsAndEveryStepFollowsThePreviousOne) {
  const auto events = generate_all(small_config());
  std::map<EventType, std::size_t> count;
  std::map<std::uint32_t, GeneratedEvent> last;  // per user
  std::size_t broken = 0;
  for (const auto& e : events) {
    ++count[e.type];
    const auto prev = last.find(e.user);
    auto expect_previous = [&](EventType t) {
      if (prev == last.end() || prev->second.type != t || prev->second.item != e.item) ++broken;
    };
    if (e.type == EventType::kClick) expect_previous(EventType::kView);
    if (e.type == EventType::kAddToCart) expect_previous(EventType::kClick);
    if (e.type == EventType::kPurchase) expect_previous(EventType::kAddToCart);
    last[e.user] = e;
  }
  EXPECT_EQ(broken, 0u);
  EXPECT_GT(count[EventType::kView], 2 * count[EventType::kClick]);
  EXPECT_GT(count[EventType::kClick], 2 * count[EventType::kAddToCart]);
  EXPECT_GT(count[EventType::kAddToCart], count[EventType::kPurchase]);
  EXPECT_GT(count[EventType::kPurchase], 0u);
  EXPECT_GT(count[EventType::kSearch], 0u);
  EXPECT_EQ(count[EventType::kRating], 0u);
}

// Share of item events that go to the top tenth of each category's items.
double head_share(const GeneratorConfig& c) {
  EventGenerator gen(c);
  const ItemCatalog& cat = gen.catalog();
  std::size_t head = 0, total = 0;
  GeneratedEvent e;
  while (gen.next(e)) {
    if (e.item == GeneratedEvent::kNoItem) continue;
    const std::size_t size = cat.items_by_rank[cat.category[e.item]].size();
    head += cat.popularity_rank[e.item] < std::max<std::size_t>(1, size / 10);
    ++total;
  }
  return double(head) / double(total);
}

TEST(GeneratorTest, ZipfHeadGetsMostOfTheTraffic) {
  GeneratorConfig c = small_config();
  c.items = 5000;
  c.zipf_exponent = 1.0;
  const double zipf = head_share(c);
  c.zipf_exponent = 0.0;
  const double uniform = head_share(c);
  EXPECT_GT(zipf, 0.45);
  EXPECT_LT(uniform, 0.15);
}

TEST(GeneratorTest, SessionsAreSeparatedByTheGapAndCountAsPlanned) {
  for (double gap : {1800.0, 300.0}) {
    GeneratorConfig c = small_config(40000);
    c.session_gap_seconds = gap;
    GeneratorStats stats;
    const auto events = generate_all(c, &stats);
    const auto sessions = split_sessions(events, gap);
    // Had any session been split, or two merged, the counts would differ.
    EXPECT_EQ(static_cast<std::int64_t>(sessions.size()), stats.sessions) << gap;
    // Sessions have a few events on average and some reach well beyond that.
    std::size_t longest = 0;
    for (const auto& s : sessions) longest = std::max(longest, s.events.size());
    EXPECT_GT(events.size(), 4 * sessions.size());
    EXPECT_GT(longest, 30u);
    EXPECT_EQ(stats.users_past_span, 0);
  }
  // Too few users for the span: the busiest run past it, still a gap apart.
  GeneratorConfig crowded = small_config(40000);
  crowded.users = 3;
  crowded.days = 1.0;
  GeneratorStats stats;
  const auto events = generate_all(crowded, &stats);
  EXPECT_GT(stats.users_past_span, 0);
  EXPECT_GT(events.back().timestamp, crowded.start_time + 86400.0);
  EXPECT_EQ(static_cast<std::int64_t>(split_sessions(events, crowded.session_gap_seconds).size()), stats.sessions);
}

// Category a session is about: the searched one, else the most viewed one.
std::uint32_t session_category(const SessionView& s) {
  if (s.events.front().type == EventType::kSearch) return s.events.front().category;
  std::map<std::uint32_t, int> votes;
  for (const auto& e : s.events) ++votes[e.category];
  return std::max_element(votes.begin(), votes.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
}

TEST(GeneratorTest, IntentShiftsLeaveTheUsersTastes) {
  GeneratorConfig c = small_config(80000);
  c.intent_shift_probability = 0.25;
  GeneratorStats stats;
  EventGenerator gen(c);
  const std::vector<UserTaste> tastes = gen.users();
  const auto events = generate_all(c, &stats);
  EXPECT_NEAR(double(stats.shifted_sessions) / double(stats.sessions), 0.25, 0.03);

  const auto sessions = split_sessions(events, c.session_gap_seconds);
  std::size_t outside = 0, searched_outside = 0, users_who_shifted_after_buying = 0;
  std::set<std::uint32_t> bought_in_taste;
  for (const auto& s : sessions) {
    const std::uint32_t cat = session_category(s);
    const bool shifted = !tastes[s.user].likes(cat);
    outside += shifted;
    if (shifted && s.events.front().type == EventType::kSearch) {
      ++searched_outside;
      users_who_shifted_after_buying += bought_in_taste.count(s.user);
    }
    for (const auto& e : s.events)
      if (e.type == EventType::kPurchase && tastes[s.user].likes(e.category)) bought_in_taste.insert(s.user);
  }
  const double share = double(outside) / double(sessions.size());
  EXPECT_GT(share, 0.15);
  EXPECT_LT(share, 0.32);
  // Most new intents open with a search; the winter-boots buyer who now searches
  // running shoes exists.
  EXPECT_GT(searched_outside, outside / 2);
  EXPECT_GT(users_who_shifted_after_buying, 0u);

  // Without shifts, no event ever leaves the user's tastes.
  c.intent_shift_probability = 0.0;
  EventGenerator steady(c);
  GeneratedEvent e;
  std::size_t strays = 0;
  while (steady.next(e)) strays += !tastes[e.user].likes(e.category);
  EXPECT_EQ(strays, 0u);
  EXPECT_EQ(steady.stats().shifted_sessions, 0);
}

TEST(GeneratorTest, UsersHaveTwoOrThreeWeightedFavourites) {
  const GeneratorConfig c = small_config();
  const auto users = make_user_tastes(c);
  ASSERT_EQ(users.size(), static_cast<std::size_t>(c.users));
  std::size_t three = 0;
  for (const UserTaste& u : users) {
    ASSERT_GE(u.count, 2u);
    ASSERT_LE(u.count, 3u);
    three += u.count == 3;
    float total = 0;
    for (std::uint32_t k = 0; k < u.count; ++k) {
      total += u.weight[k];
      if (k > 0) {
        EXPECT_GE(u.weight[k - 1], u.weight[k]);
      }
      for (std::uint32_t j = 0; j < k; ++j) EXPECT_NE(u.favourite[j], u.favourite[k]);
    }
    EXPECT_NEAR(total, 1.0f, 1e-5f);
    EXPECT_GT(u.activity, 0.0f);
  }
  EXPECT_GT(three, users.size() / 4);
  EXPECT_LT(three, 3 * users.size() / 4);
}

TEST(GeneratorTest, CatalogueIsReadableDeterministicAndPriced) {
  GeneratorConfig c = small_config();
  c.categories = 120;  // beyond the fixed list: prefixed names
  c.items = 3000;
  const ItemCatalog a = make_item_catalog(c);
  const ItemCatalog b = make_item_catalog(c);
  EXPECT_EQ(a.category, b.category);
  EXPECT_EQ(a.price, b.price);
  EXPECT_EQ(a.category_names, b.category_names);

  ASSERT_EQ(a.num_categories(), 120u);
  EXPECT_EQ(a.category_names[0], "running_shoes");
  EXPECT_EQ(a.category_names[1], "winter_boots");
  EXPECT_EQ(std::set<std::string>(a.category_names.begin(), a.category_names.end()).size(), 120u);
  for (const auto& name : a.category_names)
    for (char ch : name) ASSERT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') << name;
  EXPECT_NE(a.category_names[100].find('_'), std::string::npos);
  EXPECT_EQ(a.query(0, 0), "running shoes");
  EXPECT_EQ(a.query(1, 1), "cheap winter boots");

  std::vector<std::vector<double>> prices(a.num_categories());
  for (std::uint32_t i = 0; i < a.num_items(); ++i) {
    ASSERT_LT(a.category[i], a.num_categories());
    EXPECT_GT(a.price[i], 0.0);
    EXPECT_NEAR(std::fmod(a.price[i] * 100.0 + 0.5, 100.0), 99.5, 1e-6);  // xx.99
    prices[a.category[i]].push_back(a.price[i]);
    EXPECT_EQ(a.items_by_rank[a.category[i]][a.popularity_rank[i]], i);
  }
  for (std::size_t k = 0; k < prices.size(); ++k) {
    ASSERT_FALSE(prices[k].empty()) << a.category_names[k];
    if (prices[k].size() < 15) continue;
    std::nth_element(prices[k].begin(), prices[k].begin() + prices[k].size() / 2, prices[k].end());
    const double median = prices[k][prices[k].size() / 2];
    EXPECT_GT(median, 0.5 * a.category_mean_price[k]) << a.category_names[k];
    EXPECT_LT(median, 2.0 * a.category_mean_price[k]) << a.category_names[k];
  }
  EXPECT_GT(a.category_mean_price[4], 5 * a.category_mean_price[29]);  // laptops vs books

  // Item ids map back to the catalogue through a log's id map.
  IdMap ids;
  ids.intern("i17");
  ids.intern("x");
  ids.intern("i017");
  const ItemInfo info = a.item_info(ids);
  EXPECT_EQ(info.category_names.id(info.category[0]), a.category_names[a.category[17]]);
  EXPECT_FLOAT_EQ(info.price[0], static_cast<float>(a.price[17]));
  EXPECT_EQ(info.category[1], 0u);
  EXPECT_TRUE(std::isnan(info.price[2]));
}

TEST(GeneratorTest, NdjsonRoundTripsThroughTheSharedParser) {
  const GeneratorConfig c = small_config(15000);
  char path_template[] = "/tmp/freshrec_generator_testXXXXXX";
  const int fd = mkstemp(path_template);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string path = path_template;
  write_ndjson(c, path);

  std::vector<Event> expected;
  generate_events(c, [&](const Event& e) { expected.push_back(e); });
  std::ifstream in(path);
  std::string line, reason;
  std::size_t k = 0;
  Event parsed;
  while (std::getline(in, line)) {
    ASSERT_LT(k, expected.size());
    ASSERT_TRUE(parse_ndjson_event(line, parsed, reason)) << line << ": " << reason;
    const Event& e = expected[k++];
    ASSERT_EQ(parsed.user_id, e.user_id) << line;
    ASSERT_EQ(parsed.item_id, e.item_id) << line;
    ASSERT_EQ(parsed.type, e.type) << line;
    ASSERT_EQ(parsed.timestamp, e.timestamp) << line;
    ASSERT_EQ(parsed.category, e.category) << line;
    ASSERT_EQ(parsed.query, e.query) << line;
    ASSERT_EQ(std::isnan(parsed.price), std::isnan(e.price)) << line;
    if (!std::isnan(e.price)) {
      ASSERT_EQ(parsed.price, e.price) << line;
    }
  }
  EXPECT_EQ(k, expected.size());

  // Loading the file gives the very log the trainer gets from the generator directly.
  DataConfig dc;
  dc.path = path;
  dc.format = DataFormat::kNdjson;
  ParseReport report;
  const InteractionLog loaded = load_interaction_log(dc, &report);
  EXPECT_EQ(report.bad, 0u);
  expect_same_log(loaded, generate_interaction_log(c));
  std::remove(path.c_str());
}

TEST(GeneratorTest, RejectsOutOfRangeConfigNamingTheKey) {
  auto message = [](GeneratorConfig c) -> std::string {
    try {
      EventGenerator gen(c);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  GeneratorConfig c = small_config();
  c.events = -1;
  EXPECT_NE(message(c).find("generator.events"), std::string::npos);
  c = small_config();
  c.categories = c.items + 1;
  EXPECT_NE(message(c).find("generator.categories"), std::string::npos);
  c = small_config();
  c.intent_shift_probability = 1.5;
  EXPECT_NE(message(c).find("generator.intent_shift_probability"), std::string::npos);
  c = small_config();
  c.session_gap_seconds = NAN;
  EXPECT_NE(message(c).find("generator.session_gap_seconds"), std::string::npos);
  c = small_config();
  c.days = 0;
  EXPECT_NE(message(c).find("generator.days"), std::string::npos);
  EXPECT_THROW(write_ndjson(small_config(10), "/nonexistent-dir/x.ndjson"), IoError);
}

// Every event time must be one the readers accept back (2100-01-01 at the latest): a
// later one is rejected on load, and one at or past 1e11 seconds would be read back as
// milliseconds. Configs whose events would run that far must be refused naming a key.
TEST(GeneratorTest, EventTimesStayReadableOrTheConfigIsRefused) {
  GeneratorConfig late_span = small_config(2000);  // starts in 2096, spans 100 years
  late_span.start_time = 4e9;
  late_span.days = 36500.0;
  GeneratorConfig past_span = small_config(3000);  // one user, sessions 1e9 s apart
  past_span.users = 1;
  past_span.days = 1.0;
  past_span.session_gap_seconds = 1e9;
  for (const GeneratorConfig& c : {late_span, past_span}) {
    try {
      const std::vector<GeneratedEvent> events = generate_all(c);
      ASSERT_FALSE(events.empty());
      EXPECT_LE(events.back().timestamp, kMaxEventTimestamp);
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("generator."), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace freshrec
