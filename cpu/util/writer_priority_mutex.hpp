#pragma once
/// A shared mutex that lets a waiting writer in before new readers (SharedMutex
/// requirements, so std::unique_lock / std::shared_lock work with it).
///
/// Why not std::shared_mutex: on glibc it is a reader-preferring pthread rwlock. The
/// streaming engine has one writer (the event stream) and many readers (HTTP recommend
/// threads, each holding the lock for a catalogue scan of about a millisecond); with
/// overlapping readers the writer found the lock free only in the gaps between scans, and
/// ingestion fell from hundreds of thousands of events per second to a few thousand under
/// HTTP load. Writer preference bounds the writer's wait by one scan; the writer in turn
/// applies events in batches (StreamEngine::apply_batch) so that wait is paid per batch.
#include <pthread.h>

#include <system_error>

namespace freshrec {

class WriterPriorityMutex {
 public:
  WriterPriorityMutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
#if defined(__GLIBC__)
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    const int rc = pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_rwlock_init");
  }
  ~WriterPriorityMutex() { pthread_rwlock_destroy(&lock_); }
  WriterPriorityMutex(const WriterPriorityMutex&) = delete;
  WriterPriorityMutex& operator=(const WriterPriorityMutex&) = delete;

  void lock() { check(pthread_rwlock_wrlock(&lock_), "pthread_rwlock_wrlock"); }
  bool try_lock() noexcept { return pthread_rwlock_trywrlock(&lock_) == 0; }
  void unlock() noexcept { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { check(pthread_rwlock_rdlock(&lock_), "pthread_rwlock_rdlock"); }
  bool try_lock_shared() noexcept { return pthread_rwlock_tryrdlock(&lock_) == 0; }
  void unlock_shared() noexcept { pthread_rwlock_unlock(&lock_); }

 private:
  static void check(int rc, const char* what) {
    // EDEADLK (a thread re-locking what it holds) is a bug, never a condition to retry.
    if (rc != 0) throw std::system_error(rc, std::generic_category(), what);
  }
  pthread_rwlock_t lock_;
};

}  // namespace freshrec
