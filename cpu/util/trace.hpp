#pragma once
/// Profiler ranges for CPU code (load, build, snapshot write...). The CUDA backend
/// installs NVTX push/pop functions here, so a profiler's timeline shows the CPU stages
/// beside the kernels; this header includes no CUDA header. Without CUDA the macro
/// compiles to nothing.

namespace freshrec {

/// The pair of functions a TraceRange calls; both must be safe to call from any thread.
struct TraceHooks {
  void (*push)(const char* name);  ///< opens a named range on the calling thread
  void (*pop)();                   ///< closes the innermost range of the calling thread
};

/// Installs `hooks` (a pointer to storage that lives for the whole program, or nullptr to
/// remove them). Thread-safe; ranges already open close through the hooks they opened with.
void set_trace_hooks(const TraceHooks* hooks) noexcept;

/// The hooks installed now, or nullptr.
const TraceHooks* trace_hooks() noexcept;

/// Opens a named range for its lifetime when hooks are installed; otherwise does nothing.
/// `name` must outlive the call (a string literal).
class TraceRange {
 public:
  explicit TraceRange(const char* name) noexcept;
  ~TraceRange();
  TraceRange(const TraceRange&) = delete;
  TraceRange& operator=(const TraceRange&) = delete;

 private:
  const TraceHooks* hooks_;
};

}  // namespace freshrec

#define FRESHREC_TRACE_CONCAT_INNER(a, b) a##b
#define FRESHREC_TRACE_CONCAT(a, b) FRESHREC_TRACE_CONCAT_INNER(a, b)

#if defined(FRESHREC_WITH_CUDA) && FRESHREC_WITH_CUDA
/// Opens a profiler range named `name` (a string literal) until the end of the scope.
#define FRESHREC_TRACE_RANGE(name) \
  ::freshrec::TraceRange FRESHREC_TRACE_CONCAT(freshrec_trace_range_, __LINE__)(name)
#else
#define FRESHREC_TRACE_RANGE(name) static_cast<void>(0)
#endif
