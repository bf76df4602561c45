// freshrec-replay's engine: reads the log, paces it, and hands lines to an HTTP or Kafka
// sender that counts what the target acknowledged.
#include "cpu/serve/event_replay.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <memory>
#include <string_view>
#include <thread>

#include <fmt/core.h>
#include <httplib.h>
// <resolv.h> (pulled in by httplib) defines _res as a macro; Eigen uses it as a name.
#undef _res
#include <librdkafka/rdkafka.h>

#include "cpu/data/line_reader.hpp"
#include "cpu/data/ndjson_event_parser.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One destination. add() may block (backpressure); flush() pushes out anything buffered
// without waiting for acknowledgements; finish() waits for them.
class Sender {
 public:
  virtual ~Sender() = default;
  virtual void add(std::string_view user_id, std::string_view line) = 0;
  virtual void flush() = 0;
  virtual void finish() = 0;
  /// Lines buffered here and not yet handed to the target.
  virtual std::size_t buffered() const = 0;
  bool aborted() const { return !summary_->error.empty(); }

 protected:
  explicit Sender(ReplaySummary& summary) : summary_(&summary) {}
  ReplaySummary* summary_;
};

// ---------------------------------------------------------------- HTTP

class HttpSender final : public Sender {
 public:
  HttpSender(const ReplayOptions& o, ReplaySummary& summary, const std::atomic<bool>* stop)
      : Sender(summary), options_(o), client_(o.http_url), stop_(stop) {
    if (!client_.is_valid()) throw InputError("--http: not a usable URL: '" + o.http_url + "'");
    const auto secs = static_cast<time_t>(o.http_timeout_seconds);
    const auto usecs = static_cast<time_t>((o.http_timeout_seconds - static_cast<double>(secs)) * 1e6);
    client_.set_connection_timeout(secs, usecs);
    client_.set_read_timeout(secs, usecs);
    client_.set_write_timeout(secs, usecs);
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);  // a POST is written as headers then body: Nagle would hold the body for an ACK
    if (!o.token.empty()) headers_.emplace("Authorization", "Bearer " + o.token);
    body_.reserve(o.batch_lines * 256);
  }

  void add(std::string_view, std::string_view line) override {
    body_.append(line);
    body_.push_back('\n');
    if (++lines_ >= options_.batch_lines) flush();
  }

  void flush() override {
    if (lines_ == 0 || aborted()) return;
    post();
    body_.clear();
    lines_ = 0;
  }

  void finish() override { flush(); }
  std::size_t buffered() const override { return lines_; }

 private:
  void post() {
    int backoff_ms = 100;
    double throttled_s = 0.0;  // waited out on this batch after 503 + Retry-After
    std::string last_problem;
    for (int attempt = 0; attempt <= options_.retries; ++attempt) {
      if (attempt > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
        backoff_ms = std::min(backoff_ms * 2, 2000);
      }
      ++summary_->requests;
      httplib::Result r = client_.Post("/v1/events", headers_, body_, "application/x-ndjson");
      if (!r) {
        last_problem = "no answer (" + httplib::to_string(r.error()) + ")";
        continue;  // refused, reset or timed out: the server may be starting or restarting
      }
      // Backpressure (503 + Retry-After: the updater is behind): wait as asked and send the
      // same batch again without using up a retry, for up to 10 minutes a batch; a stop
      // request ends the waiting.
      if (r->status == 503 && r->has_header("Retry-After") && throttled_s < 600.0 &&
          !(stop_ && stop_->load(std::memory_order_relaxed))) {
        ++summary_->throttled;
        // Seconds (an HTTP date reads as 0: the shortest wait), within [50 ms, 5 s].
        const double wait_s = std::clamp(std::atof(r->get_header_value("Retry-After").c_str()), 0.05, 5.0);
        for (double waited = 0; waited < wait_s && !(stop_ && stop_->load(std::memory_order_relaxed)); waited += 0.05)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        throttled_s += wait_s;
        --attempt;
        backoff_ms = 100;
        last_problem = "HTTP 503 " + error_text(r->body);
        continue;
      }
      if (r->status >= 500) {
        last_problem = "HTTP " + std::to_string(r->status) + " " + error_text(r->body);
        continue;  // 503 while the model loads, or a transient server failure
      }
      const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
      const bool counted = j.is_object() && j.contains("accepted") && j.contains("rejected");
      if ((r->status == 200 || r->status == 400) && counted) {
        // 400 with counts = every line of the batch rejected; the run goes on.
        summary_->sent += j["accepted"].get<std::uint64_t>();
        summary_->failed += j["rejected"].get<std::uint64_t>();
        if (j["rejected"].get<std::uint64_t>() > 0 && warnings_ < 5 && options_.log) {
          ++warnings_;
          fmt::print(options_.log, "freshrec-replay: the server rejected {} line(s) of a batch: {}\n",
                     j["rejected"].get<std::uint64_t>(), j.value("errors", nlohmann::json::array()).dump());
        }
        return;
      }
      // 401/403 (token), 404 (not freshrec), 409 (not an http source), 413 (batch too big):
      // every further request would be refused the same way.
      summary_->failed += lines_;
      summary_->error = "POST " + options_.http_url + "/v1/events: HTTP " + std::to_string(r->status) + " " +
                        error_text(r->body);
      return;
    }
    summary_->failed += lines_;
    summary_->error = "POST " + options_.http_url + "/v1/events: " + last_problem + " after " +
                      std::to_string(options_.retries + 1) + " tries";
  }

  static std::string error_text(const std::string& body) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
    return body.substr(0, 200);
  }

  const ReplayOptions& options_;
  httplib::Client client_;
  const std::atomic<bool>* stop_ = nullptr;
  httplib::Headers headers_;
  std::string body_;
  std::size_t lines_ = 0;
  int warnings_ = 0;
};

// ---------------------------------------------------------------- Kafka

class KafkaSender final : public Sender {
 public:
  KafkaSender(const ReplayOptions& o, ReplaySummary& summary) : Sender(summary), options_(o) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const std::string& key, const std::string& value, const std::string& option) {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        throw InputError(option + ": librdkafka refused " + key + "=" + value + ": " + err);
      }
    };
    set("bootstrap.servers", o.brokers, "--brokers");
    // Per-user order survives retries only with an idempotent producer.
    set("enable.idempotence", "true", "--kafka-property");
    set("linger.ms", "2", "--kafka-property");
    set("message.timeout.ms", std::to_string(o.delivery_timeout_ms), "--delivery-timeout-ms");
    for (const auto& [k, v] : o.kafka_properties) set(k, v, "--kafka-property");
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSender::on_delivery);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);  // takes conf on success only
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      throw InputError(std::string("--brokers: cannot create the Kafka producer: ") + err);
    }
  }
  ~KafkaSender() override {
    if (rk_) rd_kafka_destroy(rk_);
  }

  void add(std::string_view user_id, std::string_view line) override {
    for (;;) {
      const rd_kafka_resp_err_t e = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(options_.topic.c_str()), RD_KAFKA_V_KEY(user_id.data(), user_id.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(line.data()), line.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk_, 10);  // backpressure: wait for deliveries to free the queue
        continue;
      }
      ++summary_->failed;
      note_error(std::string("produce: ") + rd_kafka_err2str(e));
      break;
    }
    rd_kafka_poll(rk_, 0);  // serve delivery reports as we go
  }

  void flush() override { rd_kafka_poll(rk_, 0); }

  void finish() override {
    rd_kafka_flush(rk_, options_.delivery_timeout_ms + 5000);
    // Anything still queued after the delivery timeout was never acknowledged.
    const int left = rd_kafka_outq_len(rk_);
    if (left > 0) {
      summary_->failed += static_cast<std::uint64_t>(left);
      note_error(std::to_string(left) + " message(s) still undelivered after the flush");
    }
    if (summary_->failed > 0 && summary_->error.empty())
      summary_->error = "Kafka: " + std::to_string(summary_->failed) + " message(s) not delivered (" + first_error_ + ")";
  }

  std::size_t buffered() const override { return 0; }  // librdkafka owns its queue

 private:
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaSender*>(opaque);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++self->summary_->sent;
    } else {
      ++self->summary_->failed;
      self->note_error(rd_kafka_err2str(m->err));
    }
  }
  void note_error(const std::string& e) {
    if (first_error_.empty()) {
      first_error_ = e;
      if (options_.log) fmt::print(options_.log, "freshrec-replay: Kafka: {}\n", e);
    }
  }

  const ReplayOptions& options_;
  rd_kafka_t* rk_ = nullptr;
  std::string first_error_;
};

void validate(const ReplayOptions& o) {
  if (o.input.empty()) throw InputError("--input: an NDJSON file is required");
  if (o.target == ReplayTarget::kHttp) {
    if (o.http_url.rfind("http://", 0) != 0 && o.http_url.rfind("https://", 0) != 0)
      throw InputError("--http: expected http://host:port or https://host:port, got '" + o.http_url + "'");
    if (o.batch_lines == 0) throw InputError("--batch: must be at least 1");
    if (!(o.http_timeout_seconds > 0) || !std::isfinite(o.http_timeout_seconds))
      throw InputError("--http-timeout: must be a positive number of seconds");
    if (o.retries < 0) throw InputError("--retries: must be >= 0");
  } else {
    if (o.brokers.empty()) throw InputError("--brokers: required for the Kafka target");
    if (o.topic.empty()) throw InputError("--topic: required for the Kafka target");
    if (o.delivery_timeout_ms <= 0) throw InputError("--delivery-timeout-ms: must be positive");
  }
  if (!(o.max_batch_delay_ms >= 0) || !std::isfinite(o.max_batch_delay_ms))
    throw InputError("--max-batch-delay-ms: must be >= 0");
}

}  // namespace

nlohmann::json ReplaySummary::to_json() const {
  return {{"lines", lines},
          {"invalid", invalid},
          {"sent", sent},
          {"failed", failed},
          {"requests", requests},
          {"throttled", throttled},
          {"elapsed_seconds", elapsed_seconds},
          {"achieved_rate", achieved_rate()},
          {"event_time_span", event_time_span},
          {"stopped", stopped},
          {"error", error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error)}};
}

ReplayPacer::ReplayPacer(double rate, double speedup) : rate_(rate), speedup_(speedup) {
  if (!std::isfinite(rate) || rate < 0) throw InputError("--rate: must be a finite number of events/s >= 0");
  if (!std::isfinite(speedup) || speedup < 0) throw InputError("--speedup: must be a finite factor >= 0");
  if (rate > 0 && speedup > 0) throw InputError("--rate and --speedup: choose one way of pacing, not both");
}

double ReplayPacer::next_due(double event_time) {
  double due = 0;
  if (rate_ > 0) {
    due = static_cast<double>(index_) / rate_;
  } else if (speedup_ > 0) {
    if (index_ == 0) first_time_ = event_time;
    due = std::max(last_due_, (event_time - first_time_) / speedup_);
  }
  ++index_;
  last_due_ = due;
  return due;
}

ReplaySummary replay_events(const ReplayOptions& options, const std::atomic<bool>* stop) {
  validate(options);
  ReplayPacer pacer(options.rate, options.speedup);
  LineReader reader(options.input);
  ReplaySummary summary;
  std::unique_ptr<Sender> sender;
  if (options.target == ReplayTarget::kHttp)
    sender = std::make_unique<HttpSender>(options, summary, stop);
  else
    sender = std::make_unique<KafkaSender>(options, summary);

  NdjsonEventParser parser;
  EventView view;
  std::string reason;
  std::string user;
  std::uint64_t events = 0;
  double first_time = 0, last_time = 0;
  int warnings = 0;
  Clock::time_point start{};
  Clock::time_point batch_started{};
  Clock::time_point next_progress{};
  const auto max_batch_delay = std::chrono::duration<double>(options.max_batch_delay_ms / 1000.0);

  std::string_view line;
  while (!sender->aborted() && (options.limit == 0 || events < options.limit) && reader.next(line)) {
    if (stop && stop->load(std::memory_order_relaxed)) {
      summary.stopped = true;
      break;
    }
    ++summary.lines;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (!parser.parse_padded(line, reader.readable_from(line.data()), view, reason)) {
      if (options.strict)
        throw InputError(options.input + ":" + std::to_string(reader.line_number()) + ": not an event: " + reason);
      ++summary.invalid;
      if (warnings++ < 5 && options.log)
        fmt::print(options.log, "freshrec-replay: {}:{}: skipped, not an event: {}\n", options.input,
                   reader.line_number(), reason);
      continue;
    }
    user.assign(view.user_id);  // the parser's views die with the next parse; the line does not
    const double t = view.timestamp;
    const double due = pacer.next_due(t);
    const auto now = Clock::now();
    if (events == 0) {
      start = now;
      next_progress = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.progress_seconds));
      first_time = t;
    }
    const auto due_at = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(due));
    if (due_at > now) {
      // Ahead of schedule: a partial batch goes out rather than wait past its delay bound.
      if (sender->buffered() > 0 && due_at - batch_started > max_batch_delay) sender->flush();
      std::this_thread::sleep_until(due_at);
    }
    if (sender->buffered() == 0) batch_started = Clock::now();
    sender->add(user, line);
    ++events;
    last_time = t;
    if (options.progress_seconds > 0 && options.log && Clock::now() >= next_progress) {
      const double el = seconds_between(start, Clock::now());
      fmt::print(options.log, "freshrec-replay: {} events in {:.1f} s ({:.0f}/s), acknowledged {}, failed {}\n", events,
                 el, static_cast<double>(events) / el, summary.sent, summary.failed);
      next_progress += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.progress_seconds));
    }
  }
  if (stop && stop->load(std::memory_order_relaxed)) summary.stopped = true;
  sender->finish();
  if (events > 0) summary.elapsed_seconds = seconds_between(start, Clock::now());
  summary.event_time_span = last_time - first_time;
  return summary;
}

}  // namespace freshrec
