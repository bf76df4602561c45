// The public StreamEngine: one Core behind a shared_mutex (one writer, many readers).
#include "cpu/stream/stream_engine.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <ostream>
#include <sstream>
#include <streambuf>

#include "cpu/stream/engine_core.hpp"
#include "cpu/util/error.hpp"
#include "cpu/util/sha256.hpp"
#include "cpu/util/writer_priority_mutex.hpp"

namespace freshrec {

namespace {
// An output stream buffer that feeds SHA-256 instead of storing: the digest of a state
// written by save() costs one streaming pass and no copy of the state.
class HashBuf : public std::streambuf {
 public:
  std::string hex() { return sha_.hex_digest(); }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    sha_.update(s, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      const char ch = traits_type::to_char_type(c);
      sha_.update(&ch, 1);
    }
    return traits_type::not_eof(c);
  }

 private:
  Sha256 sha_;
};
}  // namespace

class StreamEngine::Impl {
 public:
  Impl(const StreamConfig& config, std::shared_ptr<const FactorModel> baseline)
      : core(std::make_unique<stream::Core>(config, std::move(baseline))) {}
  mutable WriterPriorityMutex mutex;
  std::unique_ptr<stream::Core> core;
};

StreamEngine::StreamEngine(const StreamConfig& config, std::shared_ptr<const FactorModel> baseline)
    : impl_(std::make_unique<Impl>(config, std::move(baseline))) {}
StreamEngine::~StreamEngine() = default;

ApplyResult StreamEngine::apply(const Event& event) {
  std::unique_lock lock(impl_->mutex);
  return impl_->core->apply(event);
}

std::size_t StreamEngine::apply_batch(const Event* events, std::size_t n, ApplyResult* results, std::uint64_t* apply_ns,
                                      std::uint64_t max_hold_ns) {
  using Clock = std::chrono::steady_clock;
  const auto ns = [](Clock::duration d) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  };
  const bool timed = apply_ns || max_hold_ns > 0;
  const auto asked = max_hold_ns > 0 ? Clock::now() : Clock::time_point{};
  std::unique_lock lock(impl_->mutex);
  stream::Core& core = *impl_->core;
  const auto held_since = timed ? Clock::now() : Clock::time_point{};
  // The hold matches the wait for the lock (readers in flight finishing), within
  // [kMinHoldNs, max_hold_ns]: under heavy read load the writer applies as long as it waited,
  // so hand-overs cost at most half its time; a lone reader waits about one short hold.
  constexpr std::uint64_t kMinHoldNs = 100'000;
  if (max_hold_ns > 0) max_hold_ns = std::min(max_hold_ns, std::max(ns(held_since - asked), kMinHoldNs));
  auto t0 = held_since;
  for (std::size_t j = 0; j < n; ++j) {
    try {
      results[j] = core.apply(events[j]);
    } catch (const InputError& e) {
      // The contract is to reject, not throw; if it throws on bad input anyway, that event
      // is only a rejected one and the rest of the batch still runs.
      results[j] = ApplyResult{false, std::string("engine error: ") + e.what(), true};
    }
    if (!timed) continue;
    // Without per-event timings the hold is checked every few events: a clock read costs
    // ~2% of an event, overshooting the hold by a few events costs a reader ~10 us.
    constexpr std::size_t kHoldCheckEvery = 8;
    if (!apply_ns && (j + 1) % kHoldCheckEvery != 0) continue;
    const auto t1 = Clock::now();
    if (apply_ns) apply_ns[j] = ns(t1 - t0);
    t0 = t1;
    if (max_hold_ns > 0 && ns(t1 - held_since) >= max_hold_ns) return j + 1;
  }
  return n;
}

Recommendation StreamEngine::recommend(const RecommendRequest& request) const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->recommend(request);
}

SessionFeatures StreamEngine::features(std::string_view user_id) const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->features(user_id);
}

float StreamEngine::score(std::string_view user_id, std::string_view item_id, std::optional<double> time) const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->score(user_id, item_id, time);
}

double StreamEngine::watermark() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->watermark();
}

std::shared_ptr<const FactorModel> StreamEngine::baseline() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->baseline();
}

// Rebuilds under the exclusive lock: readers wait for the (bounded) journal replay rather
// than ever seeing a model whose items and deltas disagree. The snapshot itself is loaded
// and verified by the caller before this call, off the lock.
void StreamEngine::swap_baseline(std::shared_ptr<const FactorModel> next) {
  std::unique_lock lock(impl_->mutex);
  impl_->core->swap_baseline(std::move(next));
}

void StreamEngine::save(std::ostream& out) const {
  std::shared_lock lock(impl_->mutex);
  impl_->core->save(out);
}

void StreamEngine::restore(std::istream& in) {
  // Decode into a fresh Core first (sharing the baseline's hash and Gram): a malformed or
  // foreign checkpoint throws and leaves the running state untouched.
  std::shared_ptr<const FactorModel> base;
  std::shared_ptr<const stream::BaselineInfo> info;
  StreamConfig cfg;
  {
    std::shared_lock lock(impl_->mutex);
    base = impl_->core->baseline();
    info = impl_->core->baseline_info();
    cfg = impl_->core->config();
  }
  auto fresh = std::make_unique<stream::Core>(cfg, base, info);
  fresh->restore(in);
  std::unique_lock lock(impl_->mutex);
  impl_->core.swap(fresh);
}

std::string StreamEngine::state_digest() const {
  HashBuf buf;
  std::ostream out(&buf);
  {
    std::shared_lock lock(impl_->mutex);
    impl_->core->save(out);
  }
  return buf.hex();
}

std::string StreamEngine::learned_state_digest() const {
  HashBuf buf;
  std::ostream out(&buf);
  {
    std::shared_lock lock(impl_->mutex);
    impl_->core->save(out, /*learned_only=*/true);
  }
  return buf.hex();
}

std::size_t StreamEngine::tracked_users() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->tracked_users();
}

std::size_t StreamEngine::user_ids_held() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->user_ids_held();
}

StreamCounters StreamEngine::counters() const {
  std::shared_lock lock(impl_->mutex);
  StreamCounters c = impl_->core->counters();
  if (const stream::Explorer* x = impl_->core->explorer()) {
    c.impressions = x->counters().impressions;
    c.impression_rewards = x->counters().rewards;
    c.weak_negatives = x->counters().weak_negatives;
    c.explored_users = x->tracked_users();
  }
  return c;
}

const StreamConfig& StreamEngine::config() const { return impl_->core->config(); }

}  // namespace freshrec
