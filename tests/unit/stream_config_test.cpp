// configs/stream.yaml → StreamProcessConfig: every key known, validated, --set overrides.
#include <gtest/gtest.h>

#include <string>

#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_stream_config(yaml, "t.yaml", overrides);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(StreamConfig, ShippedFileLoadsAndMatchesCodeDefaults) {
  const StreamProcessConfig c = load_stream_config(std::string(FRESHREC_SOURCE_DIR) + "/configs/stream.yaml");
  const StreamConfig d;
  EXPECT_EQ(c.model.dir, "models");
  EXPECT_EQ(c.source.type, SourceType::kFile);
  EXPECT_EQ(c.checkpoint.every_events, 100000u);
  EXPECT_EQ(c.checkpoint.keep, 2);
  EXPECT_EQ(c.stream.session.gap_seconds, d.session.gap_seconds);
  EXPECT_NEAR(c.stream.session.lambda_session, d.session.lambda_session, 1e-9);
  EXPECT_NEAR(c.stream.blend.lambda_blend, d.blend.lambda_blend, 1e-9);
  EXPECT_EQ(c.stream.windows.seconds, d.windows.seconds);
  EXPECT_EQ(c.stream.sgd.user_learning_rate, d.sgd.user_learning_rate);
  EXPECT_EQ(c.stream.sgd.weights[EventType::kPurchase], d.sgd.weights[EventType::kPurchase]);
  EXPECT_EQ(c.stream.guard.cycle_events, d.guard.cycle_events);
  EXPECT_EQ(c.stream.memory.max_users, d.memory.max_users);
  EXPECT_EQ(c.stream.seed, d.seed);
  EXPECT_EQ(c.stream.context.holiday_season.beta, d.context.holiday_season.beta);
  EXPECT_EQ(c.stream.context.utc_offset_hours, d.context.utc_offset_hours);
  const StreamProcessConfig o = parse_stream_config("source: {path: a}\n", "t.yaml",
                                                    {"stream.context.mobile.beta=2.5", "stream.context.utc_offset_hours=-5"});
  EXPECT_EQ(o.stream.context.mobile.beta, 2.5f);
  EXPECT_EQ(o.stream.context.utc_offset_hours, -5.0);
}

TEST(StreamConfig, OverridesTakeEffect) {
  const StreamProcessConfig c = parse_stream_config(
      "source: {path: a.ndjson}\n", "t.yaml",
      {"model.dir=/m", "source.type=follow", "source.path=/e.ndjson", "checkpoint.dir=/ck",
       "checkpoint.every_events=77", "stream.guard.enabled=false", "stream.windows.10s=10"});
  EXPECT_EQ(c.model.dir, "/m");
  EXPECT_EQ(c.source.type, SourceType::kFollow);
  EXPECT_EQ(c.source.path, "/e.ndjson");
  EXPECT_EQ(c.checkpoint.dir, "/ck");
  EXPECT_EQ(c.checkpoint.every_events, 77u);
  EXPECT_FALSE(c.stream.guard.enabled);
  EXPECT_EQ(c.stream.windows.seconds, std::vector<double>{10.0});
}

// The writer's batch and lock-hold bound: shipped = code defaults, set and range-checked.
TEST(StreamConfig, ApplyBatchAndHold) {
  const StreamProcessConfig shipped = load_stream_config(std::string(FRESHREC_SOURCE_DIR) + "/configs/stream.yaml");
  const SourceSettings d;
  EXPECT_EQ(shipped.source.apply_batch, d.apply_batch);
  EXPECT_EQ(shipped.source.apply_hold_ms, d.apply_hold_ms);
  const StreamProcessConfig c =
      parse_stream_config("source: {path: a}\n", "t.yaml", {"source.apply_batch=64", "source.apply_hold_ms=0.25"});
  EXPECT_EQ(c.source.apply_batch, 64u);
  EXPECT_EQ(c.source.apply_hold_ms, 0.25);
  std::string e = error_of("source: {path: a, apply_batch: 0}\n");
  EXPECT_NE(e.find("source.apply_batch"), std::string::npos) << e;
  e = error_of("source: {path: a}\n", {"source.apply_hold_ms=-1"});
  EXPECT_NE(e.find("source.apply_hold_ms"), std::string::npos) << e;
}

// The HTTP ingest backpressure limit: shipped = code default, 0 (no limit) allowed.
TEST(StreamConfig, MaxBacklogBytes) {
  const StreamProcessConfig shipped = load_stream_config(std::string(FRESHREC_SOURCE_DIR) + "/configs/stream.yaml");
  EXPECT_EQ(shipped.http.max_backlog_bytes, HttpSettings{}.max_backlog_bytes);
  EXPECT_EQ(parse_stream_config("source: {path: a}\n", "t.yaml", {"http.max_backlog_bytes=0"}).http.max_backlog_bytes, 0u);
  const std::string e = error_of("source: {path: a}\n", {"http.max_backlog_bytes=-5"});
  EXPECT_NE(e.find("http.max_backlog_bytes"), std::string::npos) << e;
}

// The serving knobs of this session: the recommend hedge, the fault-injection delay and the
// readers' nice value, with their defaults, ranges and the hedge <= budget check.
TEST(StreamConfig, RecommendHedgeInjectionAndReaderNice) {
  const StreamProcessConfig shipped = load_stream_config(std::string(FRESHREC_SOURCE_DIR) + "/configs/stream.yaml");
  const HttpSettings d;
  EXPECT_EQ(shipped.http.recommend_hedge_ms, d.recommend_hedge_ms);
  EXPECT_EQ(shipped.http.inject_realtime_delay_ms, 0.0);
  EXPECT_EQ(shipped.http.reader_nice, d.reader_nice);
  const StreamProcessConfig c = parse_stream_config(
      "source: {path: a}\n", "t.yaml",
      {"http.recommend_hedge_ms=2", "http.inject_realtime_delay_ms=100", "http.reader_nice=5"});
  EXPECT_EQ(c.http.recommend_hedge_ms, 2.0);
  EXPECT_EQ(c.http.inject_realtime_delay_ms, 100.0);
  EXPECT_EQ(c.http.reader_nice, 5);
  std::string e = error_of("source: {path: a}\nhttp: {recommend_budget_ms: 10, recommend_hedge_ms: 11}\n");
  EXPECT_NE(e.find("http.recommend_hedge_ms"), std::string::npos) << e;
  e = error_of("source: {path: a}\n", {"http.reader_nice=20"});
  EXPECT_NE(e.find("http.reader_nice"), std::string::npos) << e;
  e = error_of("source: {path: a}\n", {"http.inject_realtime_delay_ms=-1"});
  EXPECT_NE(e.find("http.inject_realtime_delay_ms"), std::string::npos) << e;
}

TEST(StreamConfig, WindowsAreSortedAndDistinct) {
  const StreamProcessConfig c =
      parse_stream_config("source: {path: a}\nstream:\n  windows: {1h: 3600, 5m: 300}\n", "t.yaml");
  EXPECT_EQ(c.stream.windows.seconds, (std::vector<double>{300.0, 3600.0}));
  const std::string e = error_of("source: {path: a}\nstream:\n  windows: {a: 300, b: 300}\n");
  EXPECT_NE(e.find("stream.windows"), std::string::npos) << e;
  EXPECT_NE(e.find("same length"), std::string::npos) << e;
}

TEST(StreamConfig, UnknownKeyNamesFileLineAndKey) {
  const std::string e = error_of("source:\n  path: a\n  pol_ms: 5\n");
  EXPECT_NE(e.find("t.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("source.pol_ms"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  const std::string nested = error_of("source: {path: a}\nstream:\n  guard:\n    cycle: 5\n");
  EXPECT_NE(nested.find("stream.guard.cycle"), std::string::npos) << nested;
  const std::string later = error_of("source: {path: a}\nkinesis: {brokers: x}\n");
  EXPECT_NE(later.find("'kinesis'"), std::string::npos) << later;
}

TEST(StreamConfig, WrongTypeAndRangeNameTheKey) {
  std::string e = error_of("source: {path: a}\ncheckpoint:\n  every_events: lots\n");
  EXPECT_NE(e.find("t.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("checkpoint.every_events"), std::string::npos) << e;
  e = error_of("source: {path: a}\nstream:\n  session:\n    decay_position: 1.5\n");
  EXPECT_NE(e.find("stream.session.decay_position"), std::string::npos) << e;
  e = error_of("source: {path: a, type: kinesis}\n");
  EXPECT_NE(e.find("source.type"), std::string::npos) << e;
  EXPECT_NE(e.find("file, follow, stdin, http, kafka"), std::string::npos) << e;
  e = error_of("source: {path: a}\ncheckpoint: {keep: 0}\n");
  EXPECT_NE(e.find("checkpoint.keep"), std::string::npos) << e;
  e = error_of("source: {path: a}\n", {"stream.sgd.negatives=-1"});
  EXPECT_NE(e.find("--set stream.sgd.negatives"), std::string::npos) << e;
}

TEST(StreamConfig, CrossFieldChecks) {
  std::string e = error_of("source: {type: file}\n");
  EXPECT_NE(e.find("source.path"), std::string::npos) << e;
  EXPECT_EQ(error_of("source: {type: stdin}\n"), "");
  e = error_of("source: {path: a}\nmodel: {dir: ''}\n");
  EXPECT_NE(e.find("model.dir"), std::string::npos) << e;
  e = error_of("source: {path: a}\nstream: {sgd: {user_learning_rate: 0.01, min_learning_rate: 0.1}}\n");
  EXPECT_NE(e.find("stream.sgd.min_learning_rate"), std::string::npos) << e;
}

}  // namespace
}  // namespace freshrec
