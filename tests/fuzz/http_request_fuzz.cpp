// libFuzzer target: the HTTP request path of freshrec-stream (issue 7), end to end.
//
// A one-time init writes a small model snapshot into the scratch directory and starts the
// real StreamService in-process (source.type http: POST /v1/events appends to a journal the
// updater follows; an admin token; checkpoints; no Redis, no Kafka) on a free loopback port.
// Each input then becomes one TCP connection to it: the bytes below are sent and the answer
// is read until the server closes (5 s at most; raw inputs get their write side shut down
// once the server is quiet, see round_trip). So every byte goes through cpp-httplib's request
// parser and our routes/handlers (cpu/serve/http_api.cpp), the NDJSON parser and journal,
// and — asynchronously — the updater applying the accepted events.
//
// Input layout: data[0] % 8 picks the request, data[0] / 8 a variant; the rest is the
// fuzzed part, framed so that the request is complete (Content-Length or chunked body;
// bytes that would end the request line or a header percent-encoded or replaced):
//   0  raw bytes, sent as they are (one or more pipelined requests, or garbage)
//   1  GET /v1/recommend?<rest>
//   2  POST /v1/events, body <rest> (Content-Length)
//   3  GET /v1/features/<rest>
//   4  POST /v1/admin/checkpoint (variant odd: /v1/admin/reload), Authorization: <rest>
//   5  <method and path picked by the variant>, then <rest> as the header block
//   6  POST /v1/events, body <rest> sent chunked (chunk size from the variant)
//   7  GET /metrics, /readyz or /healthz (variant) with <rest> as the query
//
// Invariants beyond "no crash, no sanitizer report, no leak":
//   - what comes back is a sequence of well-formed HTTP/1.1 responses (status line, headers,
//     Content-Length matching the body), or nothing at all for garbage (raw/header modes);
//   - never a 5xx: bad input is the client's fault (4xx), nothing here is a server fault;
//   - JSON endpoints answer JSON; every 4xx carries {"error": "<reason>"} (or, for an
//     events body without an accepted line, the per-line {"rejected", "errors"} report);
//   - per mode, only the statuses that request can get (e.g. admin: 401 without a token,
//     200 with exactly the right one, 403 otherwise; events: 200 iff a line was accepted,
//     accepted + rejected = the non-blank lines of the body); a recommend answer holds at
//     most k (<= http.max_k) items with finite scores;
//   - the service keeps running: its thread has not ended and GET /healthz still answers
//     200 (checked every 64 inputs and after every input that got no answer).
// A failure prints the request, the answer and the reason to stderr and aborts (run
// without -close_fd_mask to see it), leaving the input as a crash artifact.
// FRESHREC_FUZZ_VERBOSE=1 prints one line per input (mode, statuses, the start of the
// last body): handy when running the binary on single files.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/model/snapshot.hpp"
#include "cpu/serve/stream_service.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace freshrec;

namespace {

constexpr const char* kToken = "fuzz-admin-token";
constexpr int kMaxK = 1000;
constexpr int kAnswerTimeoutSeconds = 5;
constexpr int kHealthEvery = 64;

// ------------------------------------------------------------------ the service

/// A small implicit model: 24 users, 40 items, 4 factors, deterministic values.
FactorModel serving_model() {
  FactorModel m;
  m.kind = ModelKind::kImplicit;
  const int users = 24, items = 40, k = 4;
  m.user_factors.resize(users, k);
  m.item_factors.resize(items, k);
  m.user_bias = Eigen::VectorXf::Zero(users);
  m.item_bias = Eigen::VectorXf::Zero(items);
  for (int r = 0; r < users; ++r) {
    for (int c = 0; c < k; ++c) m.user_factors(r, c) = 0.3f * std::sin(0.7f * float(r + 1) + 1.3f * float(c));
    m.user_ids.intern("u" + std::to_string(r));
  }
  for (int r = 0; r < items; ++r) {
    for (int c = 0; c < k; ++c) m.item_factors(r, c) = 0.3f * std::cos(0.5f * float(r + 1) + 0.9f * float(c));
    m.item_ids.intern("i" + std::to_string(r));
  }
  m.data_cutoff = 1700000000.0;
  m.hyperparameters["factors"] = std::to_string(k);
  return m;
}

struct Service {
  std::unique_ptr<StreamService> service;
  std::atomic<bool> stop{false};
  std::atomic<bool> ended{false};
  std::string error;  // set by the run thread before `ended`
  std::thread runner;
  int port = 0;
};

Service* g_service = nullptr;  // never deleted: reachable until exit, stopped by an atexit handler

[[noreturn]] void fail(const std::string& why, std::string_view request = {}, std::string_view answer = {}) {
  auto show = [](std::string_view s) {
    std::string out;
    for (const char ch : s.substr(0, 2048)) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (c == '\n') out += "\\n\n";
      else if (c == '\r') out += "\\r";
      else if (c < 0x20 || c >= 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      } else out += ch;
    }
    if (s.size() > 2048) out += "... (" + std::to_string(s.size()) + " bytes)";
    return out;
  };
  std::fprintf(stderr, "\nhttp-request fuzz: INVARIANT FAILED: %s\n--- request ---\n%s\n--- answer ---\n%s\n---\n",
               why.c_str(), show(request).c_str(), show(answer).c_str());
  std::fflush(stderr);
  std::abort();
}

// ------------------------------------------------------------------ one exchange

struct Exchange {
  bool connected = false;
  bool reset = false;      // the server reset the connection (it closed with our bytes unread)
  bool timed_out = false;  // no end of the answer within kAnswerTimeoutSeconds
  std::string answer;
};

/// True when `answer` is empty or ends exactly after a complete response (headers, then
/// as many body bytes as its Content-Length says; 1xx responses have none, nor HEAD
/// answers when `may_be_head`: see parse_answer).
bool ends_after_response(std::string_view answer, bool may_be_head) {
  while (!answer.empty()) {
    const std::size_t end = answer.find("\r\n\r\n");
    if (end == std::string_view::npos) return false;
    std::string head(answer.substr(0, end));
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::size_t n = 0;
    const bool informational = head.size() > 9 && head[9] == '1';
    const std::size_t at = head.find("\r\ncontent-length:");
    if (at != std::string::npos && !informational) n = std::strtoull(head.c_str() + at + 17, nullptr, 10);
    const std::string_view after = answer.substr(end + 4);
    if (may_be_head && (after.empty() || after.substr(0, 9) == "HTTP/1.1 ")) n = 0;
    if (after.size() < n) return false;
    answer.remove_prefix(end + 4 + n);
  }
  return true;
}

/// Connects, sends `request` (as much as the server takes) and reads until the server
/// closes. A complete request with "Connection: close" usually needs nothing more.
/// But raw bytes (`raw`) may be an unfinished request or keep the connection alive, and
/// cpp-httplib keeps a connection alive after a request line it rejected (it never read
/// the "Connection: close" header); so once the server has been quiet for kQuietMs after
/// sending nothing or whole responses (raw), or after a whole response (framed), the
/// write side is shut down, which ends the connection. Not at once: cpp-httplib takes a
/// peer that has half-closed for gone and drops the answer of a request it is still
/// handling then, so a raw input may see fewer answers than it held requests (raw modes
/// allow that).
constexpr int kQuietMs = 25;

Exchange round_trip(int port, std::string_view request, bool raw, bool may_be_head = false) {
  Exchange x;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(std::string("socket: ") + std::strerror(errno));
  timeval tv{kAnswerTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return x;
  }
  x.connected = true;
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server closed early (it answered, or refused, before the end)
    sent += static_cast<std::size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kAnswerTimeoutSeconds);
  bool shut = false;
  char buf[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      x.timed_out = true;
      break;
    }
    const bool may_shut = !shut && (raw || !x.answer.empty()) && ends_after_response(x.answer, may_be_head);
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, may_shut ? std::min<int>(kQuietMs, left.count()) : static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      if (may_shut) {
        ::shutdown(fd, SHUT_WR);
        shut = true;
      }
      continue;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      x.answer.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR || errno == EAGAIN) continue;
    x.reset = true;
    break;
  }
  ::close(fd);
  return x;
}

struct Response {
  int status = 0;
  bool bodiless = false;  // taken for the answer to a HEAD request
  std::string head;       // the status line and the header lines, each ending in CRLF
  std::string body;
  std::string header(const std::string& lower_name) const {
    const std::string key = "\n" + lower_name + ":";
    std::string lower = head;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::size_t at = lower.find(key);
    if (at == std::string::npos) return "";
    std::size_t b = at + key.size();
    const std::size_t e = head.find("\r\n", b);
    while (b < e && (head[b] == ' ' || head[b] == '\t')) ++b;
    return head.substr(b, e - b);
  }
};

/// Splits the answer into responses; fails on anything that is not HTTP/1.1. A response
/// cut short is accepted only when the server reset the connection (`reset`). When the
/// request bytes hold a HEAD request (`may_be_head`), a response directly followed by the
/// next status line or the end is taken as a HEAD answer (no body; ours never start so).
std::vector<Response> parse_answer(std::string_view request, const Exchange& x, bool may_be_head) {
  std::vector<Response> out;
  std::string_view rest(x.answer);
  while (!rest.empty()) {
    if (rest.size() < 12 || rest.substr(0, 9) != "HTTP/1.1 ") {
      if (x.reset && std::string_view("HTTP/1.1 ").substr(0, rest.size()) == rest.substr(0, 9)) break;
      fail("the answer is not an HTTP/1.1 status line", request, x.answer);
    }
    Response r;
    for (int i = 9; i < 12; ++i) {
      if (rest[i] < '0' || rest[i] > '9') fail("malformed status code", request, x.answer);
      r.status = r.status * 10 + (rest[i] - '0');
    }
    const std::size_t end = rest.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (x.reset) break;
      fail("response headers not terminated", request, x.answer);
    }
    r.head = std::string(rest.substr(0, end + 2));
    rest.remove_prefix(end + 4);
    if (r.status >= 100 && r.status < 200) continue;  // 100 Continue: the real answer follows
    const std::string length = r.header("content-length");
    std::size_t n = 0;
    if (!length.empty()) {
      for (const char c : length) {
        if (c < '0' || c > '9') fail("malformed Content-Length in the answer", request, x.answer);
        n = n * 10 + static_cast<std::size_t>(c - '0');
        if (n > (std::size_t{1} << 30)) fail("absurd Content-Length in the answer", request, x.answer);
      }
    } else if (!r.header("transfer-encoding").empty()) {
      fail("unexpected chunked answer", request, x.answer);
    }
    r.bodiless = may_be_head && n > 0 && (rest.empty() || rest.substr(0, 9) == "HTTP/1.1 ");
    if (!r.bodiless) {
      if (rest.size() < n) {
        if (x.reset) break;
        fail("answer body shorter than its Content-Length", request, x.answer);
      }
      r.body = std::string(rest.substr(0, n));
      rest.remove_prefix(n);
    }
    out.push_back(std::move(r));
  }
  return out;
}

/// The checks every response gets, whatever the request was.
void check_generic(const Response& r, std::string_view request, const Exchange& x) {
  if (r.status < 200 || r.status > 599) fail("status outside 200..599: " + std::to_string(r.status), request, x.answer);
  if (r.status >= 500) fail("5xx answer to a client's request: " + std::to_string(r.status), request, x.answer);
  // Ranges cut bodies (cpp-httplib applies them to error answers too); Accept-Encoding
  // may compress them.
  if (r.bodiless || r.status == 206 || r.status == 416 || !r.header("content-range").empty() ||
      !r.header("content-encoding").empty())
    return;
  const bool json = r.header("content-type").rfind("application/json", 0) == 0;
  if (r.status >= 400) {
    // Every error we send explains itself (the error handler fills in the rest); an events
    // body without an accepted line gets its per-line report instead.
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    const bool explained = j.is_object() && ((j.contains("error") && j["error"].is_string()) ||
                                             (j.contains("errors") && j["errors"].is_array() && j.contains("rejected")));
    if (!explained || !json) fail("4xx without a JSON {\"error\": ...} body", request, x.answer);
  } else if (json) {
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded()) fail("application/json answer that does not parse", request, x.answer);
  }
}

// A complete GET of `target` (already encoded) on a connection the server closes after it.
std::string get_request(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
}

bool healthy(int port) {
  const std::string req = get_request("/healthz");
  const Exchange x = round_trip(port, req, false);
  if (!x.connected || x.timed_out) return false;
  const auto rs = parse_answer(req, x, false);
  return rs.size() == 1 && rs[0].status == 200 && rs[0].body == R"({"status":"ok"})";
}

void start_service() {
  const std::string& dir = fuzz::scratch_dir();
  write_snapshot(serving_model(), dir + "/models", "v1");
  StreamProcessConfig c = parse_stream_config("source: {type: stdin}", "http-request fuzz");
  c.model.dir = dir + "/models";
  c.model.poll_ms = 0;
  c.source.type = SourceType::kHttp;
  c.source.poll_ms = 20;
  c.source.max_line_bytes = 4096;  // the fuzzer's lines can exceed it: the "too long" path too
  c.checkpoint.dir = dir + "/checkpoints";
  c.checkpoint.every_seconds = 0;
  c.checkpoint.every_events = 5000;
  c.checkpoint.keep = 2;
  c.dead_letter.path = dir + "/dead-letters.ndjson";
  c.stats.interval_seconds = 0;
  c.http.enabled = true;
  c.http.host = "127.0.0.1";
  c.http.port = 0;
  c.http.threads = 2;
  c.http.request_timeout_seconds = 2.0;
  c.http.admin_token = kToken;
  c.http.journal = dir + "/journal.ndjson";
  c.http.max_k = kMaxK;
  // Generous under the sanitizers, so that the full blend (not the popularity fallback)
  // is what answers the fuzzed recommend parameters.
  c.http.recommend_budget_ms = 1000.0;
  UpdaterOptions o;
  o.log = nullptr;
  o.warn = nullptr;

  auto* s = new Service();
  s->service = std::make_unique<StreamService>(c, o);
  s->port = s->service->http_port();
  s->runner = std::thread([s] {
    try {
      s->service->run(s->stop);
    } catch (const std::exception& e) {
      s->error = e.what();
    } catch (...) {
      s->error = "unknown exception";
    }
    s->ended.store(true);
  });
  g_service = s;
  // Runs before scratch_dir's clean-up (registered earlier, so it runs later).
  std::atexit([] {
    if (!g_service) return;
    g_service->stop.store(true);
    if (g_service->runner.joinable()) g_service->runner.join();
    g_service->service.reset();
  });
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    const std::string req = get_request("/readyz");
    const Exchange x = round_trip(s->port, req, false);
    if (x.answer.rfind("HTTP/1.1 200", 0) == 0) break;
    if (s->ended.load()) fail("the service ended while starting: " + s->error);
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(60)) fail("the service never became ready");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// ------------------------------------------------------------------ building requests

/// Percent-encodes what would end or split the request line; keeps '%' so that broken
/// escapes reach the decoder.
std::string target_bytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

/// A header value: CR and LF (which would end it) become spaces.
std::string header_value(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\r' || c == '\n') c = ' ';
  return out;
}

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

/// The non-blank lines of an events body, counted like the handler does.
std::uint64_t event_lines(std::string_view body) {
  std::uint64_t n = 0;
  while (!body.empty()) {
    const std::size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) ++n;
  }
  return n;
}

void expect_status(const Response& r, std::initializer_list<int> allowed, std::string_view request, const Exchange& x) {
  for (const int s : allowed)
    if (r.status == s) return;
  fail("unexpected status " + std::to_string(r.status) + " for this request", request, x.answer);
}

constexpr const char* kHeaderModeTargets[] = {
    "GET /v1/recommend?user_id=u1&k=5", "POST /v1/events", "GET /v1/features/u1", "POST /v1/admin/checkpoint",
    "GET /metrics",                     "GET /readyz",     "HEAD /healthz",       "GET /nowhere",
    "PUT /v1/events",                   "DELETE /v1/features/u1", "OPTIONS *",    "POST /v1/recommend",
    "GET /v1/events",                   "POST /v1/admin/reload",  "GET /v1/features/", "PATCH /metrics",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool started = (start_service(), true);
  (void)started;
  static std::uint64_t runs = 0;
  if (size == 0) return 0;
  const int mode = data[0] % 8;
  const int variant = data[0] / 8;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int port = g_service->port;

  std::string req;
  switch (mode) {
    case 0:
      req.assign(rest);
      break;
    case 1:
      req = get_request("/v1/recommend?" + target_bytes(rest));
      break;
    case 2:
      req = "POST /v1/events HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\n"
            "Content-Length: " + std::to_string(rest.size()) + "\r\n\r\n";
      req.append(rest);
      break;
    case 3:
      req = get_request("/v1/features/" + target_bytes(rest));
      break;
    case 4:
      req = std::string("POST ") + (variant % 2 ? "/v1/admin/reload" : "/v1/admin/checkpoint") +
            " HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\nContent-Length: 0\r\n";
      if (variant % 4 < 2) req += "Authorization: " + header_value(rest) + "\r\n";  // variants 2, 3: no header at all
      req += "\r\n";
      break;
    case 5: {
      const char* target = kHeaderModeTargets[variant % 16];
      req = std::string(target) + " HTTP/1.1\r\n";
      req.append(rest);
      if (req.size() < 4 || req.compare(req.size() - 4, 4, "\r\n\r\n") != 0) req += "\r\n\r\n";
      break;
    }
    case 6: {
      const std::size_t chunk = 1 + static_cast<std::size_t>(variant) * 97;
      req = "POST /v1/events HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\n"
            "Transfer-Encoding: chunked\r\n\r\n";
      for (std::size_t at = 0; at < rest.size(); at += chunk) {
        const std::string_view piece = rest.substr(at, chunk);
        char len[32];
        std::snprintf(len, sizeof len, "%zx\r\n", piece.size());
        req += len;
        req.append(piece);
        req += "\r\n";
      }
      req += "0\r\n\r\n";
      break;
    }
    default: {
      static constexpr const char* kPaths[] = {"/metrics", "/readyz", "/healthz", "/metrics"};
      req = get_request(std::string(kPaths[variant % 4]) + "?" + target_bytes(rest));
      break;
    }
  }

  const bool framed = mode != 0 && mode != 5;
  const bool may_be_head = !framed && req.find("HEAD") != std::string::npos;
  const Exchange x = round_trip(port, req, !framed, may_be_head);
  if (g_service->ended.load()) fail("the service stopped: " + g_service->error, req, x.answer);
  if (!x.connected) fail("the service no longer accepts connections", req);
  if (x.timed_out) fail("no end of the answer within " + std::to_string(kAnswerTimeoutSeconds) + " s", req, x.answer);
  const std::vector<Response> rs = parse_answer(req, x, may_be_head);
  for (const Response& r : rs) check_generic(r, req, x);
  static const bool verbose = std::getenv("FRESHREC_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::string statuses;
    for (const Response& r : rs) statuses += " " + std::to_string(r.status) + (r.bodiless ? "(head)" : "");
    std::fprintf(stderr, "mode %d variant %d: %zu request bytes -> %zu answer bytes,%s%s%s\n", mode, variant,
                 req.size(), x.answer.size(), statuses.empty() ? " no answer" : statuses.c_str(),
                 x.reset ? " (reset)" : "", rs.empty() ? "" : (" " + rs.back().body.substr(0, 160)).c_str());
  }

  // A framed request (modes 1-4, 6, 7) is complete: it always gets exactly one answer.
  if (framed) {
    if (rs.size() != 1) fail("a complete request got " + std::to_string(rs.size()) + " answers", req, x.answer);
    const Response& r = rs[0];
    switch (mode) {
      case 1: {
        expect_status(r, {200, 400, 414}, req, x);
        if (r.status == 200) {
          const auto j = nlohmann::json::parse(r.body, nullptr, false);
          if (!j.is_object() || !j.contains("items") || !j["items"].is_array() || !j.contains("user_id"))
            fail("recommend 200 without items/user_id", req, x.answer);
          if (j["items"].size() > static_cast<std::size_t>(kMaxK)) fail("more than max_k items", req, x.answer);
          for (const auto& it : j["items"]) {
            if (!it.is_object() || !it.contains("item_id") || !it["item_id"].is_string() || !it.contains("score") ||
                !it["score"].is_number() || !std::isfinite(it["score"].get<double>()))
              fail("recommend item without an id or with a non-finite score", req, x.answer);
          }
        }
        break;
      }
      case 2:
      case 6: {
        expect_status(r, {200, 400}, req, x);
        const auto j = nlohmann::json::parse(r.body, nullptr, false);
        const std::uint64_t lines = event_lines(rest);
        if (lines == 0) {
          if (r.status != 400) fail("an events body without a line was accepted", req, x.answer);
          break;
        }
        if (!j.contains("accepted") || !j.contains("rejected") || !j["accepted"].is_number_unsigned() ||
            !j["rejected"].is_number_unsigned())
          fail("events answer without accepted/rejected counts", req, x.answer);
        const auto ok = j["accepted"].get<std::uint64_t>(), bad = j["rejected"].get<std::uint64_t>();
        if (ok + bad != lines)
          fail("accepted + rejected = " + std::to_string(ok + bad) + ", the body has " + std::to_string(lines) +
                   " non-blank lines", req, x.answer);
        if ((r.status == 200) != (ok > 0)) fail("events status does not match the accepted count", req, x.answer);
        break;
      }
      case 3:
        expect_status(r, {200, 400, 404, 414}, req, x);
        break;
      case 4: {
        const std::string token = std::string("Bearer ") + kToken;
        // What the handler sees: cpp-httplib hands header values out as C strings (cut at
        // the first NUL).
        std::string raw = variant % 4 < 2 ? header_value(rest) : std::string();
        raw.resize(std::strlen(raw.c_str()));
        const std::string value = trim(raw);
        if (raw.empty()) expect_status(r, {401}, req, x);
        else if (raw == token) expect_status(r, {200}, req, x);
        else if (value.empty()) expect_status(r, {401, 403}, req, x);
        else expect_status(r, {200, 403}, req, x);  // 200: httplib trimmed or decoded the value into the token
        break;
      }
      default:  // 400: cpp-httplib refuses some request lines
        expect_status(r, {200, 400, 414}, req, x);
        break;
    }
  }

  if (rs.empty() || ++runs % kHealthEvery == 0) {
    if (!healthy(port)) fail("GET /healthz no longer answers 200 after this input", req, x.answer);
  }
  return 0;
}
