// lower_current_thread_priority: per-thread nice on Linux (the serving threads' http.reader_nice).
#include "cpu/util/thread_priority.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

namespace freshrec {
namespace {

int thread_nice() { return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid))); }

TEST(ThreadPriority, LowersOnlyTheCallingThread) {
  const int before_main = thread_nice();
  int before = 0, after = 0, capped = 0;
  std::thread t([&] {
    before = thread_nice();
    EXPECT_TRUE(lower_current_thread_priority(3));
    after = thread_nice();
    EXPECT_TRUE(lower_current_thread_priority(40));  // capped at 19
    capped = thread_nice();
  });
  t.join();
  EXPECT_EQ(after, std::min(19, before + 3));
  EXPECT_EQ(capped, 19);
  EXPECT_EQ(thread_nice(), before_main);  // the other threads keep theirs
  EXPECT_TRUE(lower_current_thread_priority(0));  // nothing to do
  EXPECT_EQ(thread_nice(), before_main);
}

}  // namespace
}  // namespace freshrec
