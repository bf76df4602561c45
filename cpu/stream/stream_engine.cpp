// The public StreamEngine: one Core behind a shared_mutex (one writer, many readers).
#include "cpu/stream/stream_engine.hpp"

#include <mutex>
#include <shared_mutex>
#include <sstream>

#include "cpu/stream/engine_core.hpp"
#include "cpu/util/sha256.hpp"

namespace freshrec {

class StreamEngine::Impl {
 public:
  Impl(const StreamConfig& config, std::shared_ptr<const FactorModel> baseline)
      : core(std::make_unique<stream::Core>(config, std::move(baseline))) {}
  mutable std::shared_mutex mutex;
  std::unique_ptr<stream::Core> core;
};

StreamEngine::StreamEngine(const StreamConfig& config, std::shared_ptr<const FactorModel> baseline)
    : impl_(std::make_unique<Impl>(config, std::move(baseline))) {}
StreamEngine::~StreamEngine() = default;

ApplyResult StreamEngine::apply(const Event& event) {
  std::unique_lock lock(impl_->mutex);
  return impl_->core->apply(event);
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
  std::ostringstream out;
  {
    std::shared_lock lock(impl_->mutex);
    impl_->core->save(out);
  }
  return sha256_hex(out.str());
}

std::string StreamEngine::learned_state_digest() const {
  std::ostringstream out;
  {
    std::shared_lock lock(impl_->mutex);
    impl_->core->save(out, /*learned_only=*/true);
  }
  return sha256_hex(out.str());
}

std::size_t StreamEngine::tracked_users() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->tracked_users();
}

StreamCounters StreamEngine::counters() const {
  std::shared_lock lock(impl_->mutex);
  return impl_->core->counters();
}

const StreamConfig& StreamEngine::config() const { return impl_->core->config(); }

}  // namespace freshrec
