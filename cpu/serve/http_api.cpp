// The HTTP API of StreamService: routes, limits, bearer-token checks and /metrics.
// Every error is JSON {"error": "..."} with a 4xx/5xx code that says whose fault it is.
#include <chrono>
#include <cstring>
#include <future>
#include <string_view>
#include <thread>

#include <httplib.h>
#include <simdjson.h>
// <resolv.h> (pulled in by httplib) defines _res as a macro; Eigen uses it as a name.
#undef _res
#include <openssl/crypto.h>

#include "cpu/data/ndjson_event_parser.hpp"
#include "cpu/data/timestamp_parse.hpp"
#include "cpu/io/http_journal.hpp"
#include "cpu/io/kafka_source.hpp"
#include "cpu/io/redis_feature_store.hpp"
#include "cpu/serve/stream_service.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

constexpr const char* kJson = "application/json";

// Every answer is serialised through here: an id or reason that is not valid UTF-8 (an
// answer must never fail after an events body was journaled) becomes U+FFFD, not an exception.
std::string json_text(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void reply_error(httplib::Response& res, int status, const std::string& reason) {
  res.status = status;
  res.set_content(json_text(nlohmann::json{{"error", reason}}), kJson);
}

bool valid_utf8(const std::string& s) { return simdjson::validate_utf8(s.data(), s.size()); }

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Constant time in the token's length: a wrong token leaks nothing about the right one.
bool same_token(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// 0 = allowed; otherwise the reply was set (401 missing, 403 wrong or none configured).
bool authorised(const httplib::Request& req, httplib::Response& res, const std::string& token) {
  if (token.empty()) {
    reply_error(res, 403, "no admin token configured (http.admin_token or its environment variable)");
    return false;
  }
  const std::string header = req.get_header_value("Authorization");
  if (header.empty()) {
    res.set_header("WWW-Authenticate", "Bearer");
    reply_error(res, 401, "missing bearer token (Authorization: Bearer <token>)");
    return false;
  }
  const std::string prefix = "Bearer ";
  if (header.compare(0, prefix.size(), prefix) != 0 || !same_token(header.substr(prefix.size()), token)) {
    reply_error(res, 403, "wrong bearer token");
    return false;
  }
  return true;
}

bool parse_int(const std::string& text, long long min, long long max, long long& out) {
  if (text.empty() || text.size() > 18) return false;
  std::size_t i = text[0] == '-' ? 1 : 0;
  if (i == text.size()) return false;
  for (std::size_t j = i; j < text.size(); ++j)
    if (text[j] < '0' || text[j] > '9') return false;
  out = std::stoll(text);
  return out >= min && out <= max;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void StreamService::install_routes() {
  httplib::Server& s = *server_;
  // Before any body is read: cpp-httplib would inflate a gzip/deflate/br body, and
  // http.max_body_bytes bounds only the compressed size (1 MB of gzip is 1 GB of newlines).
  s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    const std::string enc = req.get_header_value("Content-Encoding");
    if (enc.empty() || enc == "identity") return httplib::Server::HandlerResponse::Unhandled;
    reply_error(res, 415, "Content-Encoding '" + enc.substr(0, 40) + "' is not accepted: send the body uncompressed");
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    // Only fills in a body for errors no handler explained (404, 413 from the body limit).
    if (!res.body.empty()) return;
    http_errors_.fetch_add(1, std::memory_order_relaxed);
    if (res.status == 413)
      reply_error(res, 413, "body larger than http.max_body_bytes (" + std::to_string(config_.http.max_body_bytes) + ")");
    else if (res.status == 404)
      reply_error(res, 404, "no such endpoint");
    else
      reply_error(res, res.status, "request refused");
  });
  s.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    http_errors_.fetch_add(1, std::memory_order_relaxed);
    try {
      std::rethrow_exception(ep);
    } catch (const InputError& e) {
      reply_error(res, 400, e.what());
    } catch (const std::exception& e) {
      reply_error(res, 500, e.what());
    } catch (...) {
      reply_error(res, 500, "unknown error");
    }
  });

  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", kJson);
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (!updater()) return reply_error(res, 503, "loading the model and checkpoint");
    // Still 200 while checkpoint or dead-letter writes fail: serving and ingestion go on;
    // the body says what is degraded.
    res.set_content(json_text(readiness()), kJson);
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  });

  s.Get("/v1/recommend", [this](const httplib::Request& req, httplib::Response& res) {
    const auto t0 = std::chrono::steady_clock::now();
    StreamUpdater* u = updater();
    if (!u) return reply_error(res, 503, "not ready: loading the model");
    RecommendRequest r;
    r.user_id = req.get_param_value("user_id");
    if (r.user_id.empty()) return reply_error(res, 400, "missing query parameter user_id");
    if (!valid_utf8(r.user_id)) return reply_error(res, 400, "user_id is not valid UTF-8");
    if (req.has_param("k")) {
      long long k = 0;
      if (!parse_int(req.get_param_value("k"), 1, config_.http.max_k, k))
        return reply_error(res, 400, "k must be an integer in [1, " + std::to_string(config_.http.max_k) + "]");
      r.k = static_cast<int>(k);
    }
    if (req.has_param("page")) {
      r.page_type = req.get_param_value("page");
      if (r.page_type != "home" && r.page_type != "product" && r.page_type != "search" && r.page_type != "cart")
        return reply_error(res, 400, "page must be home, product, search or cart");
    }
    if (req.has_param("device")) {
      r.device = req.get_param_value("device");
      if (r.device != "mobile" && r.device != "tablet" && r.device != "desktop")
        return reply_error(res, 400, "device must be mobile, tablet or desktop");
    }
    r.page_item_id = req.get_param_value("item_id");
    if (!valid_utf8(r.page_item_id)) return reply_error(res, 400, "item_id is not valid UTF-8");
    for (std::size_t i = 0; i < req.get_param_value_count("cart_item"); ++i) {
      r.cart_items.push_back(req.get_param_value("cart_item", i));
      if (!valid_utf8(r.cart_items.back())) return reply_error(res, 400, "cart_item is not valid UTF-8");
    }
    if (req.has_param("time")) {
      char* end = nullptr;
      const std::string t = req.get_param_value("time");
      const double v = std::strtod(t.c_str(), &end);
      // The events' own range (timestamp_parse.hpp): beyond it calendar arithmetic overflows.
      if (t.empty() || *end != '\0' || !(v >= 0.0 && v <= kMaxEventTimestamp))
        return reply_error(res, 400, "time must be epoch seconds in [0, 4102444800] (1970-2100)");
      r.time = v;
    }
    // The latency budget: the full blend (nightly + real-time state + context) is computed at
    // once; the nightly-only ranking (the request moved far past the user's last event, so
    // every fresh term has faded: g -> 0) is its hedge, started in parallel only if the blend
    // is not done after http.recommend_hedge_ms; whichever arrived in time answers, best
    // first; if neither did, the popularity ranking (an unknown user's) does.
    // The engine outlives the fetches: the updater is only torn down after the server stops.
    const StreamEngine& engine = u->engine();
    auto full = std::make_shared<Recommendation>();
    auto nightly = std::make_shared<Recommendation>();
    std::vector<stream::ParallelFeatureFetcher::Task> tasks;
    const double inject_ms = config_.http.inject_realtime_delay_ms;
    tasks.push_back({stream::Signal::kRealtime, [&engine, full, r, inject_ms] {
                       if (inject_ms > 0.0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(inject_ms));
                       *full = engine.recommend(r);
                     }});
    tasks.push_back({stream::Signal::kNightly,
                     [&engine, nightly, r]() mutable {
                       r.time = (r.time ? *r.time : engine.watermark()) + 1e9;
                       r.page_item_id.clear();
                       *nightly = engine.recommend(r);
                     },
                     /*fallback=*/true});
    auto ms = [](double v) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double, std::milli>(v));
    };
    // The gather gets 90% of the budget: the rest is for the popularity ranking (a catalogue
    // pass without dot products) and the answer, when both rankings were late.
    const stream::GatherReport gathered = fetcher_.gather(
        std::move(tasks), ms(0.9 * config_.http.recommend_budget_ms), ms(config_.http.recommend_hedge_ms));
    Recommendation rec;
    std::vector<std::string> signals;
    if (gathered.ready[static_cast<std::size_t>(stream::Signal::kRealtime)]) {
      rec = std::move(*full);
      signals = {"nightly", "realtime", "context"};
    } else if (gathered.ready[static_cast<std::size_t>(stream::Signal::kNightly)]) {
      rec = std::move(*nightly);
      rec.time = r.time ? *r.time : engine.watermark();
      signals = {"nightly"};
    } else {
      RecommendRequest pop = r;
      pop.user_id = std::string("\x01popularity");  // no such user: the nightly popularity/bias ranking
      rec = engine.recommend(pop);
      rec.known_user = false;
      signals = {"popularity"};
    }
    const bool degraded = signals.size() < 3;
    nlohmann::json j;
    j["user_id"] = r.user_id;
    {
      std::lock_guard<std::mutex> lock(version_mutex_);
      j["model_version"] = model_version_;
    }
    // An unknown user gets the nightly popularity/bias ranking, marked as such.
    j["known_user"] = rec.known_user;
    j["fallback"] = rec.known_user ? nlohmann::json(nullptr) : nlohmann::json("popular");
    j["blend_weight"] = rec.blend_weight;
    j["time"] = rec.time;
    nlohmann::json items = nlohmann::json::array();
    for (const ScoredItem& it : rec.items) items.push_back({{"item_id", it.item_id}, {"score", it.score}});
    j["items"] = std::move(items);
    j["signals"] = signals;
    j["degraded"] = degraded;
    res.set_content(json_text(j), kJson);
    recommend_latency_.record(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });

  s.Get(R"(/v1/features/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    StreamUpdater* u = updater();
    if (!u) return reply_error(res, 503, "not ready: loading the model");
    const std::string user = req.matches[1];
    if (!valid_utf8(user)) return reply_error(res, 400, "user id is not valid UTF-8");
    res.set_content(json_text(features_json(user, u->engine().features(user))), kJson);
  });

  s.Post("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    if (config_.http.require_token_for_events && !authorised(req, res, admin_token())) return;
    if (!journal_)
      return reply_error(res, 409, "this process ingests from source.type other than 'http'; POST /v1/events is off");
    // Backpressure before any work: nothing of a refused body is journaled, so the client's
    // retry of the whole body after Retry-After duplicates nothing.
    if (const std::size_t limit = config_.http.max_backlog_bytes; limit > 0) {
      const std::uint64_t backlog = journal_->backlog_bytes();
      if (backlog > limit) {
        http_events_throttled_.fetch_add(1, std::memory_order_relaxed);
        res.set_header("Retry-After", "1");
        return reply_error(res, 503,
                           "ingest backlog: the journal holds " + std::to_string(backlog) +
                               " bytes the updater has not applied yet, over http.max_backlog_bytes (" +
                               std::to_string(limit) + "); retry later");
      }
    }
    thread_local NdjsonEventParser parser;
    EventView view;
    std::string reason;
    std::string accepted;
    accepted.reserve(req.body.size() + 1);
    nlohmann::json errors = nlohmann::json::array();
    std::uint64_t n_ok = 0, n_bad = 0, line_no = 0;
    std::string_view body(req.body);
    while (!body.empty()) {
      const std::size_t nl = body.find('\n');
      std::string_view line = body.substr(0, nl);
      body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank lines are not events
      if (line.size() > config_.source.max_line_bytes) {
        reason = "line longer than source.max_line_bytes";
      } else if (parser.parse(line, view, reason)) {
        accepted.append(line);
        accepted.push_back('\n');
        ++n_ok;
        continue;
      }
      ++n_bad;
      if (errors.size() < 100) errors.push_back({{"line", line_no}, {"reason", reason}});
    }
    if (n_ok + n_bad == 0) return reply_error(res, 400, "empty body: expected NDJSON events, one per line");
    // Durable before the answer: an acknowledged event survives a crash (http_journal.hpp).
    journal_->append(accepted);
    http_events_accepted_.fetch_add(n_ok, std::memory_order_relaxed);
    http_events_rejected_.fetch_add(n_bad, std::memory_order_relaxed);
    res.status = n_ok == 0 ? 400 : 200;
    res.set_content(json_text(nlohmann::json{{"accepted", n_ok}, {"rejected", n_bad}, {"errors", errors}}), kJson);
  });

  auto admin = [this](const char* what, std::function<nlohmann::json(StreamUpdater&)> task) {
    return [this, what, task](const httplib::Request& req, httplib::Response& res) {
      if (!authorised(req, res, admin_token())) return;
      StreamUpdater* u = updater();
      if (!u) return reply_error(res, 503, "not ready: loading the model");
      std::future<nlohmann::json> done = u->post([u, task] { return task(*u); });
      if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
        return reply_error(res, 504, std::string(what) + " did not finish within 60 s (still queued)");
      try {
        res.set_content(json_text(done.get()), kJson);
      } catch (const std::future_error&) {
        reply_error(res, 503, "the updater is stopping");
      } catch (const std::exception& e) {
        reply_error(res, 500, std::string(what) + " failed: " + e.what());
      }
    };
  };
  s.Post("/v1/admin/reload", admin("reload", [](StreamUpdater& u) { return u.reload_now(); }));
  s.Post("/v1/admin/checkpoint", admin("checkpoint", [](StreamUpdater& u) {
    const std::string path = u.checkpoint_now();
    return nlohmann::json{{"checkpoint", path.empty() ? nlohmann::json(nullptr) : nlohmann::json(path)}};
  }));
}

nlohmann::json StreamService::readiness() const {
  nlohmann::json j;
  j["status"] = "ready";
  j["ready"] = true;
  {
    std::lock_guard<std::mutex> lock(version_mutex_);
    j["model_version"] = model_version_;
  }
  nlohmann::json degraded = nlohmann::json::array();
  {
    std::lock_guard<std::mutex> lock(health_mutex_);
    if (!checkpoint_error_.empty()) degraded.push_back("checkpoint writes failing: " + checkpoint_error_);
    if (!dead_letter_error_.empty()) degraded.push_back("dead-letter writes failing: " + dead_letter_error_);
  }
  j["degraded"] = std::move(degraded);
  return j;
}

std::string StreamService::metrics_text() const {
  std::string out;
  out.reserve(8192);
  const double now = wall_now();
  StreamUpdater* u = updater();
  render_metric(out, "freshrec_up", "gauge", "1 once the model is loaded and events are ingested", u ? 1 : 0);
  render_metric(out, "freshrec_events_applied_total", "counter", "events accepted by the engine (this process)",
                static_cast<double>(events_accepted_.load()));
  render_metric(out, "freshrec_events_rejected_total", "counter", "events the engine rejected (this process)",
                static_cast<double>(events_rejected_.load()));
  render_metric(out, "freshrec_dead_letters_total", "counter", "lines written to the dead letters (this process)",
                static_cast<double>(dead_letters_.load()));
  if (u) {
    // Engine counters are cumulative over restarts (they live in the checkpoint).
    const StreamCounters c = u->engine().counters();
    const double watermark = u->engine().watermark();
    render_metric(out, "freshrec_engine_events_total", "counter", "events in the engine state, over restarts",
                  static_cast<double>(c.events));
    render_metric(out, "freshrec_guard_accepts_total", "counter", "guard update cycles accepted",
                  static_cast<double>(c.guard_accepts));
    render_metric(out, "freshrec_guard_rollbacks_total", "counter", "guard update cycles rolled back",
                  static_cast<double>(c.guard_rollbacks));
    render_metric(out, "freshrec_watermark_seconds", "gauge", "latest event time seen (epoch s)", watermark);
    render_metric(out, "freshrec_ingest_lag_seconds", "gauge", "wall clock minus the event-time watermark",
                  watermark > 0 ? now - watermark : 0.0);
    render_metric(out, "freshrec_tracked_users", "gauge", "users with per-user state held",
                  static_cast<double>(u->engine().tracked_users()));
  }
  apply_latency_.render("freshrec_event_apply_seconds", "per-event engine apply time", out);
  recommend_latency_.render("freshrec_recommend_seconds", "GET /v1/recommend handling time", out);
  {
    const stream::DegradationCounters& d = fetcher_.counters();
    render_metric(out, "freshrec_recommend_degraded_total", "counter", "recommends answered without every signal",
                  static_cast<double>(d.degraded.load()));
    render_metric(out, "freshrec_recommend_popularity_fallback_total", "counter",
                  "recommends answered by popularity alone (every model signal late)",
                  static_cast<double>(d.popularity_fallbacks.load()));
    // One HELP/TYPE per family, one sample per source.
    auto family = [&](const char* name, const char* help, const auto& counts) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
      for (int s = 0; s < stream::kNumSignals; ++s)
        out += std::string(name) + "{source=\"" + stream::signal_name(static_cast<stream::Signal>(s)) + "\"} " +
               std::to_string(counts[static_cast<std::size_t>(s)].load()) + "\n";
    };
    family("freshrec_signal_late_total", "signal fetches that missed the recommend budget", d.late);
    family("freshrec_signal_shed_total", "signal fetches not started: the source was at its in-flight cap", d.shed);
    family("freshrec_signal_failed_total", "signal fetches that threw", d.failed);
  }
  {
    std::lock_guard<std::mutex> lock(version_mutex_);
    if (!model_version_.empty())
      render_metric(out, "freshrec_model_info", "gauge", "the nightly model in use", 1,
                    "version=\"" + escape_label(model_version_) + "\"");
  }
  const double loaded = model_loaded_wall_.load();
  if (loaded > 0) {
    render_metric(out, "freshrec_model_age_seconds", "gauge", "wall clock minus the model's data cutoff",
                  now - model_data_cutoff_.load());
    render_metric(out, "freshrec_model_loaded_age_seconds", "gauge", "seconds since the model was loaded",
                  now - loaded);
  }
  const double ck = last_checkpoint_wall_.load();
  render_metric(out, "freshrec_checkpoint_age_seconds", "gauge",
                "seconds since the last checkpoint (since start when none yet)", now - (ck > 0 ? ck : started_wall_));
  render_metric(out, "freshrec_checkpoint_failures_total", "counter",
                "checkpoints that could not be written (disk full, read-only; this process)",
                static_cast<double>(checkpoint_failures_.load()));
  render_metric(out, "freshrec_dead_letter_write_failures_total", "counter",
                "failed dead-letter file opens/writes/syncs (disk full, read-only; this process)",
                static_cast<double>(dead_letter_write_failures_.load()));
  {
    std::lock_guard<std::mutex> lock(health_mutex_);
    render_metric(out, "freshrec_checkpoint_failing", "gauge", "1 while the latest checkpoint attempt failed",
                  checkpoint_error_.empty() ? 0 : 1);
    render_metric(out, "freshrec_dead_letter_failing", "gauge", "1 while the latest dead-letter write failed",
                  dead_letter_error_.empty() ? 0 : 1);
  }
  render_metric(out, "freshrec_http_events_accepted_total", "counter", "lines accepted by POST /v1/events",
                static_cast<double>(http_events_accepted_.load()));
  render_metric(out, "freshrec_http_events_rejected_total", "counter", "lines rejected by POST /v1/events",
                static_cast<double>(http_events_rejected_.load()));
  render_metric(out, "freshrec_http_events_throttled_total", "counter",
                "POST /v1/events answered 503 because the journal backlog was over http.max_backlog_bytes",
                static_cast<double>(http_events_throttled_.load()));
  if (journal_)
    render_metric(out, "freshrec_ingest_backlog_bytes", "gauge", "journal bytes acknowledged but not yet read by the updater",
                  static_cast<double>(journal_->backlog_bytes()));
  render_metric(out, "freshrec_http_errors_total", "counter", "requests answered 404/413/5xx by the server",
                static_cast<double>(http_errors_.load()));
  if (redis_) {
    const RedisStoreStats r = redis_->stats();
    render_metric(out, "freshrec_redis_written_total", "counter", "feature values written", static_cast<double>(r.written));
    render_metric(out, "freshrec_redis_stale_skipped_total", "counter", "writes skipped: Redis held newer features",
                  static_cast<double>(r.stale_skipped));
    render_metric(out, "freshrec_redis_dropped_total", "counter", "feature updates dropped: queue full",
                  static_cast<double>(r.dropped));
    render_metric(out, "freshrec_redis_errors_total", "counter", "failed Redis round trips", static_cast<double>(r.errors));
    render_metric(out, "freshrec_redis_reconnects_total", "counter", "successful Redis (re)connections",
                  static_cast<double>(r.reconnects));
    render_metric(out, "freshrec_redis_queue", "gauge", "users waiting for a feature write", static_cast<double>(r.queued));
    render_metric(out, "freshrec_redis_connected", "gauge", "1 when connected to Redis", r.connected ? 1 : 0);
  }
  if (kafka_stats_) {
    render_metric(out, "freshrec_kafka_assigned_partitions", "gauge", "partitions this process owns",
                  kafka_stats_->assigned_partitions.load());
    render_metric(out, "freshrec_kafka_rebalances_total", "counter", "rebalance callbacks",
                  static_cast<double>(kafka_stats_->rebalances.load()));
    render_metric(out, "freshrec_kafka_commits_total", "counter", "offset commits (one per checkpoint)",
                  static_cast<double>(kafka_stats_->commits.load()));
    render_metric(out, "freshrec_kafka_commit_failures_total", "counter", "offset commits that failed",
                  static_cast<double>(kafka_stats_->commit_failures.load()));
  }
  return out;
}

}  // namespace freshrec
