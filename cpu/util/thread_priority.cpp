#include "cpu/util/thread_priority.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace freshrec {

bool lower_current_thread_priority(int delta) noexcept {
  if (delta <= 0) return true;
  // PRIO_PROCESS with a thread id sets that thread's nice value alone (Linux; POSIX would
  // apply it to the whole process).
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);
  if (now == -1 && errno != 0) return false;
  const int target = now + delta > 19 ? 19 : now + delta;
  return ::setpriority(PRIO_PROCESS, tid, target) == 0;
}

}  // namespace freshrec
