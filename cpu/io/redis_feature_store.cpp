#include "cpu/io/redis_feature_store.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include <hiredis/hiredis.h>

#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

// KEYS[1] = key, ARGV[1] = ttl seconds, ARGV[2] = event time, ARGV[3] = JSON value.
// The stored value's "event_time" is the version: an older write leaves it alone.
constexpr const char* kWriteScript = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur then
  local t = string.match(cur, '"event_time":([-0-9.eE+]+)')
  if t and tonumber(t) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SETEX', KEYS[1], ARGV[1], ARGV[3])
return 1
)lua";

redisContext* ctx(void* p) { return static_cast<redisContext*>(p); }

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept {
    if (r) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

Reply command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

timeval to_timeval(double seconds) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
  return tv;
}

}  // namespace

RedisEndpoint parse_redis_endpoint(const RedisSettings& settings) {
  RedisEndpoint e;
  const std::string& url = settings.url;
  auto fail = [&](const std::string& what) {
    throw InputError("redis.url: " + what + " in '" + url + "' (expected redis://[:password@]host:port[/db])");
  };
  if (url.rfind("redis://", 0) != 0) fail("missing the redis:// scheme");
  std::string rest = url.substr(8);
  const std::size_t at = rest.rfind('@');
  if (at != std::string::npos) {
    const std::string auth = rest.substr(0, at);
    const std::size_t colon = auth.find(':');
    e.password = colon == std::string::npos ? auth : auth.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  const std::size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    if (!db.empty()) {
      if (db.find_first_not_of("0123456789") != std::string::npos || db.size() > 6) fail("bad db number");
      e.db = std::stoi(db);
    }
    rest = rest.substr(0, slash);
  }
  const std::size_t colon = rest.rfind(':');
  if (colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5) fail("bad port");
    e.port = std::stoi(port);
    if (e.port < 1 || e.port > 65535) fail("port out of range");
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) e.host = rest;
  if (!settings.password.empty()) e.password = settings.password;
  if (settings.db >= 0) e.db = settings.db;
  return e;
}

nlohmann::json features_json(std::string_view user_id, const SessionFeatures& f) {
  nlohmann::json j;
  j["user_id"] = user_id;
  j["event_time"] = f.last_event_time;
  j["session_view_count"] = f.session_view_count;
  j["session_click_count"] = f.session_click_count;
  j["session_cart_count"] = f.session_cart_count;
  j["session_purchase_count"] = f.session_purchase_count;
  j["session_search_count"] = f.session_search_count;
  j["session_ctr"] = f.session_ctr;
  j["avg_price_viewed"] = f.avg_price_viewed;
  j["top_category"] = f.top_category.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.top_category);
  j["category_count"] = f.category_count;
  j["recent_clicked_items"] = f.recent_clicked_items;
  j["recent_queries"] = f.recent_queries;
  j["session_embedding"] = f.session_embedding;
  j["session_start"] = f.session_start;
  j["window_counts"] = f.window_counts;
  return j;
}

RedisFeatureStore::RedisFeatureStore(const RedisSettings& settings, const StreamEngine& engine, std::FILE* warn)
    : settings_(settings), endpoint_(parse_redis_endpoint(settings)), engine_(engine), warn_(warn) {
  thread_ = std::thread([this] { run(); });
}

RedisFeatureStore::~RedisFeatureStore() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (context_) redisFree(ctx(context_));
}

void RedisFeatureStore::notify(std::string_view user_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The write reads the features when it is sent: a user already waiting needs nothing.
    const std::string user(user_id);
    if (queued_.count(user)) return;
    if (queue_.size() >= settings_.queue_capacity) {
      ++stats_.dropped;
      return;
    }
    queued_.insert(user);
    queue_.push_back(user);
  }
  wake_.notify_one();
}

bool RedisFeatureStore::flush(double timeout_seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  return drained_.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                           [&] { return queue_.empty() && in_flight_ == 0; });
}

RedisStoreStats RedisFeatureStore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  RedisStoreStats s = stats_;
  s.queued = queue_.size();
  return s;
}

bool RedisFeatureStore::connect() {
  if (context_) {
    redisFree(ctx(context_));
    context_ = nullptr;
  }
  const timeval tv = to_timeval(settings_.connect_timeout_seconds);
  redisContext* c = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv);
  if (!c) return false;
  if (c->err) {
    redisFree(c);
    return false;
  }
  redisSetTimeout(c, tv);
  context_ = c;
  auto ok = [&](const Reply& r) { return r && r->type != REDIS_REPLY_ERROR; };
  if (!endpoint_.password.empty() && !ok(command(c, {"AUTH", endpoint_.password}))) {
    if (warn_) std::fprintf(warn_, "freshrec-stream: warning: redis: AUTH refused\n");
    return false;
  }
  if (endpoint_.db != 0 && !ok(command(c, {"SELECT", std::to_string(endpoint_.db)}))) {
    if (warn_) std::fprintf(warn_, "freshrec-stream: warning: redis: SELECT %d refused\n", endpoint_.db);
    return false;
  }
  Reply sha = command(c, {"SCRIPT", "LOAD", kWriteScript});
  if (!sha || sha->type != REDIS_REPLY_STRING) return false;
  script_sha_.assign(sha->str, sha->len);
  return true;
}

bool RedisFeatureStore::write_batch(const std::vector<std::string>& users) {
  redisContext* c = ctx(context_);
  const std::string ttl = std::to_string(settings_.ttl_seconds);
  for (const std::string& user : users) {
    const SessionFeatures f = engine_.features(user);
    const nlohmann::json j = features_json(user, f);
    const std::string value = j.dump();
    const std::string time = nlohmann::json(f.last_event_time).dump();  // the same digits as in the value
    const std::string key = settings_.key_prefix + user;
    const char* argv[] = {"EVALSHA", script_sha_.c_str(), "1", key.c_str(), ttl.c_str(), time.c_str(), value.c_str()};
    const std::size_t lens[] = {7, script_sha_.size(), 1, key.size(), ttl.size(), time.size(), value.size()};
    if (redisAppendCommandArgv(c, 7, argv, lens) != REDIS_OK) return false;
  }
  std::uint64_t written = 0, stale = 0;
  bool ok = true;
  for (std::size_t i = 0; i < users.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) return false;  // connection broken: reconnect
    Reply r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_INTEGER) {
      (r->integer == 1 ? written : stale) += 1;
    } else {
      ok = false;  // e.g. NOSCRIPT after a FLUSH/restart: reload the script on reconnect
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.written += written;
  stats_.stale_skipped += stale;
  return ok;
}

void RedisFeatureStore::run() {
  double backoff = 0.05;
  std::vector<std::string> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      const std::size_t n = std::min(queue_.size(), settings_.batch);
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      // Off the "queued" set now: an event arriving during the write queues the user again.
      for (const std::string& u : batch) queued_.erase(u);
      in_flight_ = n;
    }
    bool ok = context_ != nullptr || connect();
    if (ok && !stats_.connected) {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.connected = true;
      ++stats_.reconnects;
    }
    if (ok) ok = write_batch(batch);
    if (ok) {
      backoff = 0.05;
      std::lock_guard<std::mutex> lock(mutex_);
      in_flight_ = 0;
      if (queue_.empty()) drained_.notify_all();
      continue;
    }
    // Failed: put the users back (unless queued again meanwhile or no room), drop the
    // connection, back off. Ingestion is never held up.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.errors;
      if (stats_.connected && warn_)
        std::fprintf(warn_, "freshrec-stream: warning: redis %s:%d unavailable: retrying with backoff\n",
                     endpoint_.host.c_str(), endpoint_.port);
      stats_.connected = false;
      for (std::string& u : batch) {
        if (queued_.count(u)) continue;
        if (queue_.size() >= settings_.queue_capacity) {
          ++stats_.dropped;
          continue;
        }
        queued_.insert(u);
        queue_.push_front(std::move(u));
      }
      in_flight_ = 0;
    }
    if (context_) {
      redisFree(ctx(context_));
      context_ = nullptr;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::duration<double>(backoff), [&] { return stop_; });
    if (stop_) return;
    backoff = std::min(backoff * 2, settings_.max_backoff_seconds);
  }
}

}  // namespace freshrec
