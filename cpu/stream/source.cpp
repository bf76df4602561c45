#include "cpu/stream/source.hpp"

#include <chrono>
#include <thread>

namespace freshrec {

bool EventSource::wait(int timeout_ms) {
  if (timeout_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
  return false;
}

}  // namespace freshrec
