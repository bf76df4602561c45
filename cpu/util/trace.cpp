#include "cpu/util/trace.hpp"

#include <atomic>

namespace freshrec {
namespace {
// One atomic pointer to a (push, pop) pair, so a range can never pair one installer's
// push with another's pop.
std::atomic<const TraceHooks*> g_hooks{nullptr};
}  // namespace

void set_trace_hooks(const TraceHooks* hooks) noexcept { g_hooks.store(hooks, std::memory_order_release); }

const TraceHooks* trace_hooks() noexcept { return g_hooks.load(std::memory_order_acquire); }

TraceRange::TraceRange(const char* name) noexcept : hooks_(trace_hooks()) {
  if (hooks_ != nullptr && hooks_->push != nullptr) hooks_->push(name);
}

TraceRange::~TraceRange() {
  if (hooks_ != nullptr && hooks_->pop != nullptr) hooks_->pop();
}

}  // namespace freshrec
