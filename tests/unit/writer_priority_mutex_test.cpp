// The engine's lock lets a waiting writer in before new readers (the streaming writer must
// not starve behind overlapping recommend scans).
#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include <gtest/gtest.h>

#include "cpu/util/writer_priority_mutex.hpp"

namespace freshrec {
namespace {

TEST(WriterPriorityMutex, ReadersShareAndWritersExclude) {
  WriterPriorityMutex m;
  m.lock_shared();
  EXPECT_TRUE(m.try_lock_shared());  // no writer waiting: readers share
  EXPECT_FALSE(m.try_lock());
  m.unlock_shared();
  m.unlock_shared();
  EXPECT_TRUE(m.try_lock());
  EXPECT_FALSE(m.try_lock_shared());
  m.unlock();
}

TEST(WriterPriorityMutex, AWaitingWriterBlocksNewReaders) {
  WriterPriorityMutex m;
  m.lock_shared();  // a reader in the middle of a scan
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    std::unique_lock lock(m);
    writer_done = true;
  });
  // Once the writer waits, a new reader must not get in ahead of it (with a
  // reader-preferring lock try_lock_shared keeps succeeding and this loop runs out).
  bool blocked = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!blocked && std::chrono::steady_clock::now() < give_up) {
    if (m.try_lock_shared()) {
      m.unlock_shared();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      blocked = true;
    }
  }
  EXPECT_TRUE(blocked) << "a new reader overtook a waiting writer";
  EXPECT_FALSE(writer_done.load());
  m.unlock_shared();  // the scan ends: the writer goes next
  writer.join();
  EXPECT_TRUE(writer_done.load());
  std::shared_lock reader(m);  // and readers come back after it
  SUCCEED();
}

}  // namespace
}  // namespace freshrec
