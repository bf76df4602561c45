// Hostile input (issue 7): lines and events built to break the parser, the engine or the
// updater. For each one: no crash, no non-finite number reaching a factor or a score,
// and the input is counted (accepted, rejected with a reason, or dead-lettered).
// tests/fault/hostile_inputs.sh runs the sizes too big for a unit test (a 1 GB line,
// 10 million distinct users) against the freshrec-stream binary. The regression inputs of
// the fuzzers (tests/fuzz/) live at the end of this file.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cpu/config/nightly_config.hpp"
#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/data/log_reader.hpp"
#include "cpu/data/ndjson_event_parser.hpp"
#include "cpu/model/npy.hpp"
#include "cpu/model/snapshot.hpp"
#include "cpu/stream/checkpoint.hpp"
#include "cpu/stream/stream_engine.hpp"
#include "cpu/stream/updater.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"
#include "cpu/util/sha256.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace freshrec {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/freshrec_hostile_XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { (void)!std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
}

// 6 users, 8 items, k = 4, explicit (ratings exercise the SGD path with labels).
FactorModel small_model(ModelKind kind = ModelKind::kExplicit) {
  FactorModel m;
  m.kind = kind;
  m.user_factors.resize(6, 4);
  m.item_factors.resize(8, 4);
  m.user_bias = Eigen::VectorXf::Zero(6);
  m.item_bias = Eigen::VectorXf::Zero(8);
  for (int r = 0; r < 6; ++r) {
    for (int c = 0; c < 4; ++c) m.user_factors(r, c) = 0.1f * float((r + c) % 5) - 0.2f;
    m.user_ids.intern("u" + std::to_string(r));
  }
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 4; ++c) m.item_factors(r, c) = 0.05f * float((2 * r + c) % 7) - 0.1f;
    m.item_ids.intern("i" + std::to_string(r));
  }
  m.global_bias = kind == ModelKind::kExplicit ? 3.5f : 0.0f;
  m.data_cutoff = 1700000000.0;
  return m;
}

StreamConfig fast_guard_config() {
  StreamConfig c;
  c.guard.cycle_events = 20;  // several guard cycles inside a short test
  c.guard.holdout_size = 20;
  c.guard.holdout_probability = 0.2;
  c.guard.log_decisions = false;
  return c;
}

// Every score the engine can give for `users` over the whole catalogue is finite, and so
// is every recommended item's score: a non-finite factor would surface in one of them.
void expect_all_scores_finite(const StreamEngine& engine, const std::vector<std::string>& users) {
  for (const std::string& u : users) {
    for (int i = 0; i < 8; ++i) {
      const float s = engine.score(u, "i" + std::to_string(i));
      ASSERT_TRUE(std::isfinite(s)) << "user " << u << " item i" << i;
    }
    RecommendRequest request;
    request.user_id = u;
    request.k = 8;
    for (const ScoredItem& item : engine.recommend(request).items)
      ASSERT_TRUE(std::isfinite(item.score)) << "user " << u << " item " << item.item_id;
  }
}

std::string event_line(const std::string& user, const std::string& item, const std::string& type, const std::string& ts,
                       const std::string& properties = "") {
  std::string s = "{\"user_id\":\"" + user + "\",\"item_id\":\"" + item + "\",\"event_type\":\"" + type +
                  "\",\"timestamp\":" + ts;
  if (!properties.empty()) s += ",\"properties\":" + properties;
  return s + "}";
}

// ---------------------------------------------------------------- the parser

TEST(HostileParser, DeeplyNestedJsonNeverCrashesAndIsRejectedInAKnownField) {
  NdjsonEventParser parser;
  EventView view;
  std::string reason;
  for (int depth : {100, 2000, 100000}) {
    const std::string nested = std::string(depth, '[') + std::string(depth, ']');
    // Nested in an unknown key (skipped by the parser) and in a known one.
    const std::string unknown = "{\"user_id\":\"u\",\"item_id\":\"i\",\"event_type\":\"view\",\"timestamp\":1700000000,"
                                "\"extra\":" + nested + "}";
    const std::string known = "{\"user_id\":" + nested + ",\"item_id\":\"i\",\"event_type\":\"view\",\"timestamp\":1}";
    reason.clear();
    // An unknown key's value is skipped without recursion, so any depth is harmless there:
    // accepted or rejected, never a crash; a rejection carries a reason.
    const bool ok = parser.parse(unknown, view, reason);
    if (!ok) {
      EXPECT_FALSE(reason.empty());
    }
    reason.clear();
    EXPECT_FALSE(parser.parse(known, view, reason)) << "depth " << depth;
    EXPECT_FALSE(reason.empty());
  }
}

TEST(HostileParser, InvalidUtf8IsRejected) {
  NdjsonEventParser parser;
  EventView view;
  for (const std::string& bad : {std::string("\xff\xfe"), std::string("\xc3\x28"), std::string("\xed\xa0\x80"),
                                std::string("a\xf0\x28\x8c\xbc")}) {
    std::string reason;
    EXPECT_FALSE(parser.parse(event_line(bad, "i1", "view", "1700000000"), view, reason));
    EXPECT_NE(reason.find("UTF"), std::string::npos) << reason;
  }
}

TEST(HostileParser, NonFiniteAndOutOfRangeNumbersAreRejectedByTheParser) {
  NdjsonEventParser parser;
  EventView view;
  const std::vector<std::string> bad = {
      event_line("u1", "i1", "view", "1700000000", "{\"price\":NaN}"),
      event_line("u1", "i1", "view", "1700000000", "{\"price\":Infinity}"),
      event_line("u1", "i1", "view", "1700000000", "{\"price\":1e400}"),
      event_line("u1", "i1", "rating", "1700000000", "{\"rating\":-1e400}"),
      event_line("u1", "i1", "view", "NaN"),
      event_line("u1", "i1", "view", "1e400"),
      event_line("u1", "i1", "view", "1e18"),
      event_line("u1", "i1", "view", "-1e18"),
      event_line("u1", "i1", "view", "-1"),
      event_line("u1", "i1", "view", "\"not a time\""),
  };
  for (const std::string& line : bad) {
    std::string reason;
    EXPECT_FALSE(parser.parse(line, view, reason)) << line;
    EXPECT_FALSE(reason.empty()) << line;
  }
}

TEST(HostileParser, UnknownEventTypesAreRejectedByName) {
  NdjsonEventParser parser;
  EventView view;
  for (const char* type : {"VIEW", "delete_all", "", "view\\u0000"}) {
    std::string reason;
    EXPECT_FALSE(parser.parse(event_line("u1", "i1", type, "1700000000"), view, reason)) << type;
    EXPECT_NE(reason.find("event_type"), std::string::npos) << reason;
  }
}

TEST(HostileParser, IdsWithPathSeparatorsAndControlCharactersAreOpaqueIdsButLineBreaksAreRefused) {
  NdjsonEventParser parser;
  EventView view;
  const std::vector<std::pair<std::string, std::string>> ids = {
      {"../../etc/passwd", "../../etc/passwd"},
      {"a/b\\\\c", "a/b\\c"},
      {"nul\\u0000byte", std::string("nul\0byte", 8)},
      {"\\u001b[31mred", "\x1b[31mred"},
  };
  for (const auto& [json_text, id] : ids) {
    std::string reason;
    ASSERT_TRUE(parser.parse(event_line(json_text, json_text, "click", "1700000000"), view, reason)) << reason;
    EXPECT_EQ(view.user_id, id);
    EXPECT_EQ(view.item_id, id);
  }
  // Except a line break: snapshots store ids one a line, so such an event is a bad line (the
  // nightly job would otherwise train on it and then fail to publish).
  for (const char* bad : {"line\\nbreak", "cr\\r"}) {
    std::string reason;
    EXPECT_FALSE(parser.parse(event_line(bad, "item", "click", "1700000000"), view, reason)) << bad;
    EXPECT_NE(reason.find("user_id"), std::string::npos) << reason;
    EXPECT_FALSE(parser.parse(event_line("user", bad, "click", "1700000000"), view, reason)) << bad;
    EXPECT_NE(reason.find("item_id"), std::string::npos) << reason;
  }
}

// ---------------------------------------------------------------- the engine

TEST(HostileEngine, HugeRatingsPricesAndTimestampsNeverReachAFactor) {
  auto base = std::make_shared<const FactorModel>(small_model());
  StreamEngine engine(fast_guard_config(), base);
  const double t0 = 1700000100.0;
  const double max = std::numeric_limits<double>::max();
  struct Case {
    double rating, price, time;
  };
  // Finite in the parser's sense (a double) but absurd: each must be rejected or
  // absorbed without a non-finite value in the learned state. Timestamps stay inside
  // what the NDJSON parser lets through ([0, 2100-01-01]); see
  // DISABLED_TimestampsOutsideTheParsersRangeAreRejected for the rest.
  const std::vector<Case> cases = {
      {1e308, 1e308, t0},          {-1e308, 0.0, t0 + 1},       {3.4e38, 1e300, t0 + 2},   {1e39, max, t0 + 3},
      {5.0, 1e308, 4102444800.0},  {4.0, 1.0, 0.0},             {1.0, 2.0, 1.0},           {2.0, 3.0, 1e-300},
      {max, max, t0 + 5},          {-max, 0.0, t0 + 6},         {5.0, -1.0, t0 + 4},       {4.0, 0.0, 4102444800.0},
  };
  std::vector<std::string> users;
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 10; ++round) {
    for (std::size_t c = 0; c < cases.size(); ++c) {
      for (const EventType type : {EventType::kRating, EventType::kPurchase, EventType::kClick}) {
        Event e;
        e.user_id = "u" + std::to_string((c + round) % 8);  // u6, u7: users new to the stream
        e.item_id = "i" + std::to_string((c * 3 + round) % 8);
        e.type = type;
        e.rating = cases[c].rating;
        e.price = cases[c].price;
        e.timestamp = cases[c].time;
        e.category = "cat";
        const ApplyResult r = engine.apply(e);
        (r.accepted ? accepted : rejected) += 1;
        if (!r.accepted) {
          EXPECT_FALSE(r.reason.empty());
        }
      }
    }
  }
  for (int u = 0; u < 8; ++u) users.push_back("u" + std::to_string(u));
  expect_all_scores_finite(engine, users);
  const StreamCounters counters = engine.counters();
  EXPECT_EQ(counters.events + counters.rejected, static_cast<std::uint64_t>(accepted + rejected));
  EXPECT_GT(rejected, 0);  // negative prices at least
  EXPECT_TRUE(std::isfinite(engine.watermark()));
  for (const auto& u : users) {
    const SessionFeatures f = engine.features(u);
    (void)f;
  }
}

// The engine accepts any finite timestamp; far outside the parser's range,
// WindowTable::add (cpu/stream/windows.cpp:47) converts t / width to int64 out of range
// and subtracts heads: signed overflow (UBSan: "-9223372036854775808 - 90666672 cannot
// be represented"). Events from NDJSON never get there (the parser refuses timestamps
// outside [0, 2100-01-01]) but the engine's own API does. Enable once Core::apply rejects
// timestamps outside that range with a reason.
TEST(HostileEngine, TimestampsOutsideTheParsersRangeAreRejected) {
  auto base = std::make_shared<const FactorModel>(small_model());
  StreamEngine engine(fast_guard_config(), base);
  for (const double t : {1e18, -1e18, std::numeric_limits<double>::max(), -std::numeric_limits<double>::max()}) {
    Event e;
    e.user_id = "u1";
    e.item_id = "i1";
    e.type = EventType::kClick;
    e.timestamp = t;
    EXPECT_FALSE(engine.apply(e).accepted) << t;
  }
}

TEST(HostileEngine, OutOfOrderEventsAreAcceptedDeterministically) {
  auto base = std::make_shared<const FactorModel>(small_model(ModelKind::kImplicit));
  auto run = [&] {
    StreamEngine engine(fast_guard_config(), base);
    // Times jump back and forth by days, including before the model's cutoff.
    const double times[] = {1700000500, 1700000100, 1699000000, 1700900000, 1700000200, 1600000000, 1700000300};
    for (int n = 0; n < 300; ++n) {
      Event e;
      e.user_id = "u" + std::to_string(n % 9);
      e.item_id = "i" + std::to_string((n * 5) % 8);
      e.type = static_cast<EventType>(n % 4);
      e.timestamp = times[n % 7] + n;
      EXPECT_TRUE(engine.apply(e).accepted);
    }
    expect_all_scores_finite(engine, {"u0", "u5", "u8"});
    return engine.state_digest();
  };
  EXPECT_EQ(run(), run());
}

TEST(HostileEngine, ManyDistinctUsersStayUnderTheTrackedUserCap) {
  auto base = std::make_shared<const FactorModel>(small_model(ModelKind::kImplicit));
  StreamConfig config = fast_guard_config();
  config.memory.max_users = 300;
  StreamEngine engine(config, base);
  const int distinct = 20000;
  for (int n = 0; n < distinct; ++n) {
    Event e;
    e.user_id = "visitor-" + std::to_string(n);
    e.item_id = "i" + std::to_string(n % 8);
    e.type = EventType::kClick;
    e.timestamp = 1700000100.0 + n;
    ASSERT_TRUE(engine.apply(e).accepted);
    ASSERT_LE(engine.tracked_users(), config.memory.max_users);
  }
  const StreamCounters c = engine.counters();
  EXPECT_EQ(c.events, static_cast<std::uint64_t>(distinct));
  EXPECT_GE(c.evicted_users, static_cast<std::uint64_t>(distinct) - config.memory.max_users);
  expect_all_scores_finite(engine, {"visitor-0", "visitor-19999", "u1"});
}

// ---------------------------------------------------------------- the updater end to end

// Runs the updater in-process on `lines` with max_line_bytes = `cap` and returns its stats.
nlohmann::json run_updater(const TempDir& dir, const std::string& text, std::size_t cap) {
  FactorModel model = small_model(ModelKind::kImplicit);
  if (!std::ifstream(dir.file("models/LATEST"))) write_snapshot(model, dir.file("models"), "v1", true);
  write_text(dir.file("events.ndjson"), text);
  StreamProcessConfig config;
  config.model.dir = dir.file("models");
  config.model.poll_ms = 0;
  config.source.type = SourceType::kFile;
  config.source.path = dir.file("events.ndjson");
  config.source.max_line_bytes = cap;
  config.dead_letter.path = dir.file("dead.ndjson");
  config.stats.interval_seconds = 0;
  config.stream = fast_guard_config();
  UpdaterOptions options;
  options.log = nullptr;
  options.warn = nullptr;
  StreamUpdater updater(config, options);
  std::atomic<bool> stop{false};
  return updater.run(stop);
}

TEST(HostileUpdater, EveryHostileLineIsCountedAndTheRunGoesOn) {
  TempDir dir;
  std::string text;
  int good = 0, bad = 0;
  auto add_good = [&](int n) {
    text += event_line("u" + std::to_string(n % 6), "i" + std::to_string(n % 8), "click",
                       std::to_string(1700000100 + n)) + "\n";
    ++good;
  };
  auto add_bad = [&](const std::string& line) {
    text += line + "\n";
    ++bad;
  };
  for (int n = 0; n < 50; ++n) add_good(n);
  add_bad(std::string(200000, 'x'));                                                      // oversized (cap 4096)
  add_bad("{\"user_id\":\"u1\",\"item_id\":\"" + std::string(5000, 'a') + "\",\"event_type\":\"view\"}");  // oversized JSON
  add_bad(std::string(1500, '[') + std::string(1500, ']'));                               // deeply nested, under the cap
  add_bad(event_line("\xff\xfe", "i1", "view", "1700000200"));                            // invalid UTF-8
  add_bad(event_line("u1", "i1", "view", "1700000200", "{\"price\":1e999}"));             // Inf price
  add_bad(event_line("u1", "i1", "view", "1700000200", "{\"price\":-5}"));                // negative price
  add_bad(event_line("u1", "i1", "rating", "1700000200", "{\"rating\":NaN}"));            // NaN rating
  add_bad(event_line("u1", "i1", "teleport", "1700000200"));                              // unknown type
  add_bad("{\"user_id\":\"u1\"");                                                          // truncated
  add_bad(std::string("\0\0\0\0", 4));                                                     // NUL bytes
  for (int n = 50; n < 100; ++n) add_good(n);
  // Accepted, and harmless: hostile ids, absurd but finite numbers, far timestamps.
  const std::vector<std::string> odd_but_valid = {
      event_line("../../etc/passwd", "../models/LATEST", "purchase", "1700000300", "{\"price\":1e300}"),
      event_line("\\u0000\\u001b", "i1", "rating", "1700000301", "{\"rating\":1e308}"),
      event_line("u2", "i2", "view", "1e15"),
      event_line("u3", "i3", "view", "-1e15"),
      event_line("u4", "i4", "click", "1700000000"),
  };
  for (const std::string& line : odd_but_valid) text += line + "\n", ++good;
  text += "\n   \n";  // blank lines: counted as blank, not dead letters

  const nlohmann::json stats = run_updater(dir, text, 4096);
  const auto& c = stats["counters"];
  const std::uint64_t events = stats["events"].get<std::uint64_t>();
  const std::uint64_t dead = stats["dead_letters"].get<std::uint64_t>();
  EXPECT_EQ(c["lines"].get<std::uint64_t>(), static_cast<std::uint64_t>(good + bad + 2));
  EXPECT_EQ(c["blank_lines"].get<std::uint64_t>(), 2u);
  EXPECT_EQ(c["oversized"].get<std::uint64_t>(), 2u);
  // Nothing vanishes: every non-blank line is an event or a dead letter.
  EXPECT_EQ(events + dead, static_cast<std::uint64_t>(good + bad));
  EXPECT_GE(dead, static_cast<std::uint64_t>(bad));
  EXPECT_EQ(c["parse_errors"].get<std::uint64_t>() + c["oversized"].get<std::uint64_t>() +
                c["rejected"].get<std::uint64_t>() + c["engine_errors"].get<std::uint64_t>(),
            dead);
  // The dead-letter file holds one JSON line per dead letter, the oversized text cut.
  std::ifstream in(dir.file("dead.ndjson"));
  std::string line;
  std::uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    EXPECT_LE(line.size(), 4096u + 1024u);
    EXPECT_TRUE(nlohmann::json::accept(line)) << line.substr(0, 200);
  }
  EXPECT_EQ(n, dead);
}

TEST(HostileUpdater, LineCapIsExactAtTheBoundary) {
  TempDir dir;
  const std::string base = event_line("u1", "i1", "click", "1700000100");
  const std::size_t cap = 256;
  std::string at_cap = base;
  at_cap.insert(at_cap.size() - 1, ",\"pad\":\"" + std::string(cap - base.size() - 9, 'p') + "\"");
  ASSERT_EQ(at_cap.size(), cap);
  std::string over = at_cap;
  over.insert(over.size() - 1, " ");
  const nlohmann::json stats = run_updater(dir, at_cap + "\n" + over + "\n" + base + "\n", cap);
  EXPECT_EQ(stats["events"].get<std::uint64_t>(), 2u);
  EXPECT_EQ(stats["counters"]["oversized"].get<std::uint64_t>(), 1u);
}

// ---------------------------------------------------------------- fuzzer regressions
// Each file in tests/fuzz/regressions/<target>/ once crashed or misbehaved in that fuzz
// target; it is replayed here the way the target feeds it, so a fix cannot silently
// regress in a build without clang.

std::vector<std::string> regression_inputs(const std::string& target) {
  const std::string dir = std::string(FRESHREC_SOURCE_DIR) + "/tests/fuzz/regressions/" + target;
  std::vector<std::string> files;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') files.push_back(dir + "/" + e->d_name);
    ::closedir(d);
  }
  return files;
}

// The checkpoint target's input: first byte odd = an engine payload (restored directly,
// as a checkpoint whose checksums verify would hand it over), even = a whole checkpoint file.
enum class Restore { kRestored, kRefused, kOtherException };
Restore replay_checkpoint_input(const std::string& bytes, const TempDir& dir, std::string* what) {
  std::string payload = bytes.substr(1);
  if ((static_cast<unsigned char>(bytes[0]) & 1) == 0) {
    write_text(dir.file("checkpoint-000000000001.ckpt"), payload);
    try {
      payload = read_checkpoint(dir.file("checkpoint-000000000001.ckpt")).engine_state;
    } catch (const IntegrityError&) {
      return Restore::kRefused;
    }
  }
  StreamEngine engine(StreamConfig{}, std::make_shared<const FactorModel>(fuzz::tiny_model()));
  std::istringstream in(payload);
  try {
    engine.restore(in);
    return Restore::kRestored;
  } catch (const IntegrityError&) {
    return Restore::kRefused;
  } catch (const std::exception& e) {
    *what = e.what();
    return Restore::kOtherException;
  }
}

TEST(FuzzRegression, CheckpointInputsNeverCrashTheProcess) {
  TempDir dir;
  const auto files = regression_inputs("checkpoint");
  ASSERT_FALSE(files.empty());
  for (const std::string& f : files) {
    std::string what;
    // Whatever it throws is catchable (no abort, no sanitizer report, no OOM kill).
    (void)replay_checkpoint_input(read_file(f), dir, &what);
  }
}

// restore-unbounded-user-count: a payload whose user-id count is ~2^60 made
// Core::restore (cpu/stream/serialization.cpp) call user_slot_.assign(n) before reading
// a single id: std::length_error (or, for a count just small enough to allocate, an OOM
// kill) instead of IntegrityError, and StreamUpdater only falls back to the previous
// checkpoint on IntegrityError. Enable once restore bounds every count by the bytes
// left (each id needs at least its 8-byte length prefix).
TEST(FuzzRegression, CheckpointInputsAreRefusedWithIntegrityError) {
  TempDir dir;
  for (const std::string& f : regression_inputs("checkpoint")) {
    std::string what;
    EXPECT_NE(replay_checkpoint_input(read_file(f), dir, &what), Restore::kOtherException) << f << ": " << what;
  }
}

// The snapshot target's input: the first byte picks which file of a valid snapshot the rest
// replaces (manifest.json, the five .npy/id files). manifest-number-out-of-range-1E999: a
// manifest number too large for a double made nlohmann::json throw out_of_range, which the
// loader did not catch (it caught parse_error only): std::terminate instead of a refusal.
TEST(FuzzRegression, SnapshotInputsAreRefusedWithIntegrityError) {
  const char* const files[] = {"manifest.json", "user_factors.npy", "item_factors.npy", "user_bias.npy",
                               "item_bias.npy", "user_ids.txt", "item_ids.txt"};
  const auto inputs = regression_inputs("snapshot");
  ASSERT_FALSE(inputs.empty());
  for (const std::string& f : inputs) {
    TempDir dir;
    write_snapshot(fuzz::tiny_model(), dir.file("models"), "v1", true);
    const std::string bytes = read_file(f);
    ASSERT_FALSE(bytes.empty()) << f;
    const int which = (static_cast<unsigned char>(bytes[0]) & 0x7F) % 7;
    write_text(dir.file("models/v1/") + files[which], bytes.substr(1));
    try {
      (void)load_snapshot(dir.file("models/v1"));
    } catch (const IntegrityError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << f << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace freshrec
