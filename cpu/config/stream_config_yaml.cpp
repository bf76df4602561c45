#include "cpu/config/stream_config_yaml.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>

#include "cpu/config/yaml_reader.hpp"
#include "cpu/data/event_type.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

constexpr long long kMaxCount = 1LL << 40;  // far above any memory we could hold

void get_size(YamlSection& s, const std::string& key, std::size_t& out, long long min, long long max) {
  std::int64_t v = static_cast<std::int64_t>(out);
  s.get(key, v, min, max);
  out = static_cast<std::size_t>(v);
}

void read_model(YamlSection& s, ModelSettings& m) {
  s.get("dir", m.dir);
  s.get("poll_ms", m.poll_ms, 0, 3'600'000);
  if (m.dir.empty()) s.fail("dir", "must not be empty (the directory holding LATEST)");
}

void read_source(YamlSection& s, SourceSettings& src) {
  s.get_enum("type", src.type,
             {{"file", SourceType::kFile}, {"follow", SourceType::kFollow}, {"stdin", SourceType::kStdin},
              {"http", SourceType::kHttp}, {"kafka", SourceType::kKafka}});
  s.get("path", src.path);
  s.get("poll_ms", src.poll_ms, 1, 60'000);
  get_size(s, "max_line_bytes", src.max_line_bytes, 256, 1LL << 30);
  get_size(s, "apply_batch", src.apply_batch, 1, 65536);
  s.get("apply_hold_ms", src.apply_hold_ms, 0.0, 1000.0);
  if ((src.type == SourceType::kFile || src.type == SourceType::kFollow) && src.path.empty())
    s.fail("path", "required when source.type is 'file' or 'follow'");
}

void read_checkpoint(YamlSection& s, CheckpointSettings& c) {
  s.get("dir", c.dir);
  std::int64_t every = static_cast<std::int64_t>(c.every_events);
  s.get("every_events", every, 0, kMaxCount);
  c.every_events = static_cast<std::uint64_t>(every);
  s.get("every_seconds", c.every_seconds, 0.0, 1e7);
  s.get("keep", c.keep, 1, 1000);
}

void read_dead_letter(YamlSection& s, DeadLetterSettings& d) {
  s.get("path", d.path);
  get_size(s, "max_raw_bytes", d.max_raw_bytes, 16, 1LL << 24);
}

void read_http(YamlSection& s, HttpSettings& h) {
  s.get("enabled", h.enabled);
  s.get("host", h.host);
  s.get("port", h.port, 0, 65535);
  s.get("threads", h.threads, 1, 1024);
  get_size(s, "max_body_bytes", h.max_body_bytes, 1024, 1LL << 31);
  s.get("request_timeout_seconds", h.request_timeout_seconds, 0.01, 3600.0);
  s.get("admin_token", h.admin_token);
  s.get("admin_token_env", h.admin_token_env);
  s.get("require_token_for_events", h.require_token_for_events);
  s.get("journal", h.journal);
  get_size(s, "max_backlog_bytes", h.max_backlog_bytes, 0, 1LL << 50);
  s.get("max_k", h.max_k, 1, 1'000'000);
  s.get("recommend_budget_ms", h.recommend_budget_ms, 0.1, 60000.0);
  s.get("recommend_hedge_ms", h.recommend_hedge_ms, 0.0, 60000.0);
  s.get("reader_nice", h.reader_nice, 0, 19);
  s.get("inject_realtime_delay_ms", h.inject_realtime_delay_ms, 0.0, 60000.0);
  if (h.recommend_hedge_ms > h.recommend_budget_ms) s.fail("recommend_hedge_ms", "must not exceed recommend_budget_ms");
  if (h.host.empty()) s.fail("host", "must not be empty (127.0.0.1 serves loopback only)");
}

void read_redis(YamlSection& s, RedisSettings& r) {
  s.get("url", r.url);
  s.get("password", r.password);
  s.get("db", r.db, -1, 1'000'000);
  s.get("ttl_seconds", r.ttl_seconds, 1, 365 * 86400);
  s.get("key_prefix", r.key_prefix);
  get_size(s, "queue_capacity", r.queue_capacity, 1, kMaxCount);
  get_size(s, "batch", r.batch, 1, 1'000'000);
  s.get("connect_timeout_seconds", r.connect_timeout_seconds, 0.001, 600.0);
  s.get("max_backoff_seconds", r.max_backoff_seconds, 0.05, 3600.0);
  if (!r.url.empty() && r.url.rfind("redis://", 0) != 0)
    s.fail("url", "expected redis://[:password@]host:port[/db] or \"\" (disabled), got '" + r.url + "'");
}

void read_kafka(YamlSection& s, KafkaSettings& k) {
  s.get("brokers", k.brokers);
  s.get("topic", k.topic);
  s.get("group_id", k.group_id);
  s.get("scale_out", k.scale_out);
  const std::vector<std::string> keys = s.keys_of("properties");  // marks an explicit null as read
  if (s.has("properties")) {
    s.section("properties", [&](YamlSection& p) {
      for (const std::string& key : keys) {
        std::string v;
        p.get(key, v);
        k.properties[key] = v;
      }
    });
  }
}

void read_stats(YamlSection& s, StatsSettings& st) { s.get("interval_seconds", st.interval_seconds, 0.0, 1e7); }

void read_session(YamlSection& s, SessionConfig& c) {
  s.get("gap_seconds", c.gap_seconds, 1.0, 1e9);
  s.get("recent_clicked", c.recent_clicked, 0, 10000);
  s.get("embedding_items", c.embedding_items, 0, 10000);
  s.get("decay_position", c.decay_position, 0.0, 1.0);
  s.get("lambda_session", c.lambda_session, 0.0, 1e3);
  s.get("view_weight", c.view_weight, 0.0, 1e3);
  s.get("recent_queries", c.recent_queries, 0, 10000);
  s.get("max_purchased", c.max_purchased, 0, 1'000'000);
  s.get("exclude_purchased", c.exclude_purchased);
}

// Windows are a mapping label → seconds ("5m: 300"); the labels are for people, the
// engine keeps the lengths in ascending order.
void read_windows(YamlSection& s, WindowConfig& w) {
  const std::vector<std::string> labels = s.keys_of("windows");  // marks an explicit null as read
  if (!s.has("windows")) return;
  std::vector<double> seconds;
  s.section("windows", [&](YamlSection& ws) {
    for (const std::string& label : labels) {
      double v = 0.0;
      if (!ws.has(label)) ws.fail(label, "expected a window length in seconds");
      ws.get(label, v, 1e-3, 1e9);
      seconds.push_back(v);
    }
  });
  if (seconds.size() > 16) s.fail("windows", "at most 16 windows");
  std::sort(seconds.begin(), seconds.end());
  if (std::adjacent_find(seconds.begin(), seconds.end()) != seconds.end())
    s.fail("windows", "two windows have the same length");
  w.seconds = seconds;
}

void read_sgd(YamlSection& s, OnlineSgdConfig& c) {
  s.get("enabled", c.enabled);
  s.get("user_learning_rate", c.user_learning_rate, 0.0, 10.0);
  s.get("item_learning_rate", c.item_learning_rate, 0.0, 10.0);
  s.get("regularization", c.regularization, 0.0, 1e3);
  s.get("lr_decay", c.lr_decay, 0.0, 1.0);
  s.get("min_learning_rate", c.min_learning_rate, 0.0, 10.0);
  s.get("gradient_clip", c.gradient_clip, 1e-6, 1e6);
  s.get("negatives", c.negatives, 0, 1000);
  s.get("rating_offset", c.rating_offset, -1e6, 1e6);
  s.section("event_weights", [&](YamlSection& w) {
    for (int t = 0; t < kNumEventTypes; ++t) {
      const auto type = static_cast<EventType>(t);
      float value = c.weights[type];
      w.get(std::string(event_type_name(type)), value, 0.0, 1e6);
      c.weights[type] = value;
    }
  });
  if (c.min_learning_rate > c.user_learning_rate)
    s.fail("min_learning_rate", "must not exceed stream.sgd.user_learning_rate");
}

void read_foldin(YamlSection& s, FoldInConfig& c) {
  s.get("max_events", c.max_events, 1, 100000);
  s.get("regularization", c.regularization, 1e-9, 1e6);
  s.get("alpha", c.alpha, 0.0, 1e6);
}

void read_new_items(YamlSection& s, NewItemConfig& c) { s.get("min_events", c.min_events, 1, 1'000'000); }

void read_guard(YamlSection& s, GuardConfig& c) {
  s.get("enabled", c.enabled);
  get_size(s, "replay_capacity", c.replay_capacity, 0, kMaxCount);
  s.get("replay_ratio", c.replay_ratio, 0.0, 0.99);
  get_size(s, "holdout_size", c.holdout_size, 1, 10'000'000);
  s.get("holdout_probability", c.holdout_probability, 0.0, 1.0);
  get_size(s, "cycle_events", c.cycle_events, 1, 100'000'000);
  s.get("tolerance", c.tolerance, 0.0, 1e9);
  s.get("log_decisions", c.log_decisions);
  s.get("log_min_interval_seconds", c.log_min_interval_seconds, 0.0, 1e9);
}

void read_explore(YamlSection& s, stream::ExploreConfig& c) {
  s.get_enum("policy", c.policy,
             {{"greedy", stream::ExplorePolicy::kGreedy}, {"epsilon", stream::ExplorePolicy::kEpsilon},
              {"thompson", stream::ExplorePolicy::kThompson}});
  s.get("slots", c.slots, 0, 1000);
  s.get("epsilon", c.epsilon, 0.0, 1.0);
  s.get("prior_precision", c.prior_precision, 1e-9, 1e9);
  s.get("noise_variance", c.noise_variance, 1e-9, 1e9);
  s.get("item_sigma", c.item_sigma, 1e-9, 1e6);
  s.get("reward_window_seconds", c.reward_window_seconds, 1e-3, 1e9);
  s.get("impression_weight", c.impression_weight, 0.0, 1e3);
  get_size(s, "max_pending_impressions", c.max_pending_impressions, 1, kMaxCount);
  get_size(s, "max_items_per_impression", c.max_items_per_impression, 1, 100000);
}

void read_blend(YamlSection& s, BlendConfig& c) {
  s.get("lambda_blend", c.lambda_blend, 0.0, 1e3);
  s.get("beta", c.beta, 0.0, 1e3);
  s.get("trending_weight", c.trending_weight, 0.0, 1e3);
}

void read_scale(YamlSection& s, ContextScale& c) {
  s.get("beta", c.beta, 0.0, 1e3);
  s.get("trending", c.trending, 0.0, 1e3);
}

void read_context(YamlSection& s, ContextConfig& c) {
  s.get("page_item_weight", c.page_item_weight, 0.0, 1e3);
  s.get("product_page_beta", c.product_page_beta, 0.0, 1e3);
  const std::pair<const char*, ContextScale*> scales[] = {
      {"mobile", &c.mobile},       {"tablet", &c.tablet},   {"desktop", &c.desktop},
      {"morning", &c.morning},     {"afternoon", &c.afternoon}, {"evening", &c.evening},
      {"night", &c.night},         {"weekend", &c.weekend}, {"holiday_season", &c.holiday_season}};
  // Not a structured binding: capturing one in a lambda is C++20 (clang rejects it in C++17).
  for (const auto& entry : scales) {
    ContextScale* scale = entry.second;
    s.section(entry.first, [&](YamlSection& x) { read_scale(x, *scale); });
  }
  s.get("utc_offset_hours", c.utc_offset_hours, -24.0, 24.0);
}

void read_memory(YamlSection& s, MemoryConfig& c) { get_size(s, "max_users", c.max_users, 1, kMaxCount); }

void read_stream(YamlSection& s, StreamConfig& c) {
  s.section("session", [&](YamlSection& x) { read_session(x, c.session); });
  read_windows(s, c.windows);
  s.section("sgd", [&](YamlSection& x) { read_sgd(x, c.sgd); });
  s.section("foldin", [&](YamlSection& x) { read_foldin(x, c.foldin); });
  s.section("new_items", [&](YamlSection& x) { read_new_items(x, c.new_items); });
  s.section("guard", [&](YamlSection& x) { read_guard(x, c.guard); });
  s.section("blend", [&](YamlSection& x) { read_blend(x, c.blend); });
  s.section("context", [&](YamlSection& x) { read_context(x, c.context); });
  s.section("memory", [&](YamlSection& x) { read_memory(x, c.memory); });
  s.section("explore", [&](YamlSection& x) { read_explore(x, c.explore); });
  s.get("seed", c.seed);
  get_size(s, "journal_capacity", c.journal_capacity, 0, kMaxCount);
}

StreamProcessConfig parse_node(const YAML::Node& root, const std::string& origin,
                               const std::set<std::string>& overridden) {
  StreamProcessConfig config;
  config.origin = origin;
  YamlSection top(root, "", origin, &overridden);
  top.section("model", [&](YamlSection& s) { read_model(s, config.model); });
  top.section("source", [&](YamlSection& s) { read_source(s, config.source); });
  top.section("checkpoint", [&](YamlSection& s) { read_checkpoint(s, config.checkpoint); });
  top.section("dead_letter", [&](YamlSection& s) { read_dead_letter(s, config.dead_letter); });
  top.section("stats", [&](YamlSection& s) { read_stats(s, config.stats); });
  top.section("http", [&](YamlSection& s) {
    read_http(s, config.http);
    if (config.source.type == SourceType::kHttp && !config.http.enabled)
      s.fail("enabled", "must be true when source.type is 'http' (events arrive by POST /v1/events)");
    if (config.source.type == SourceType::kHttp && config.http.journal.empty())
      s.fail("journal", "required when source.type is 'http'");
  });
  top.section("redis", [&](YamlSection& s) { read_redis(s, config.redis); });
  top.section("kafka", [&](YamlSection& s) {
    read_kafka(s, config.kafka);
    if (config.source.type != SourceType::kKafka) return;
    if (config.kafka.brokers.empty()) s.fail("brokers", "required when source.type is 'kafka'");
    if (config.kafka.topic.empty()) s.fail("topic", "required when source.type is 'kafka'");
    if (config.kafka.group_id.empty()) s.fail("group_id", "required when source.type is 'kafka'");
  });
  top.section("stream", [&](YamlSection& s) { read_stream(s, config.stream); });
  // Scale-out: every process owns the users of its partitions but items are shared;
  // item vectors stay frozen at the nightly values so the processes cannot diverge on
  // them (README, "Scale-out").
  if (config.source.type == SourceType::kKafka && config.kafka.scale_out) config.stream.sgd.item_learning_rate = 0.0f;
  top.finish();
  return config;
}

}  // namespace

StreamProcessConfig load_stream_config(const std::string& file, const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  const YAML::Node root = load_yaml_with_overrides(file, overrides, overridden);
  return parse_node(root, file, overridden);
}

StreamProcessConfig parse_stream_config(const std::string& yaml_text, const std::string& origin,
                                        const std::vector<std::string>& overrides) {
  std::set<std::string> overridden;
  const YAML::Node root = parse_yaml_with_overrides(yaml_text, origin, overrides, overridden);
  return parse_node(root, origin, overridden);
}

}  // namespace freshrec
