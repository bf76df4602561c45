#pragma once
/// Two kinds of error (as in faiss): the caller's mistakes throw an exception whose
/// message names the file, line or key at fault; broken internal invariants abort.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace freshrec {

/// Bad input: a malformed data file, config key, argument. The message says where.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A stored artefact failed verification (checksum mismatch, truncated file).
class IntegrityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An operating-system call failed (open, write, fsync, rename); carries errno text.
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void assertion_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "freshrec: internal invariant violated: %s at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace freshrec

/// Internal invariant (never the caller's fault): aborts with file:line in every build type.
#define FRESHREC_ASSERT(cond) \
  ((cond) ? static_cast<void>(0) : ::freshrec::assertion_failed(#cond, __FILE__, __LINE__))
