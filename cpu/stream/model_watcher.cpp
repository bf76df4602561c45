#include "cpu/stream/model_watcher.hpp"

#include <chrono>
#include <exception>

#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"

namespace freshrec {

ModelWatcher::ModelWatcher(std::string models_dir, std::string current_version, int poll_ms, std::FILE* log)
    : dir_(std::move(models_dir)), poll_ms_(poll_ms > 0 ? poll_ms : 1000), log_(log), current_(std::move(current_version)) {
  thread_ = std::thread([this] { run(); });
}

ModelWatcher::~ModelWatcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

LoadedSnapshot ModelWatcher::take_pending() {
  std::lock_guard<std::mutex> lock(mutex_);
  LoadedSnapshot out = std::move(pending_);
  pending_ = LoadedSnapshot{};
  has_pending_.store(false, std::memory_order_release);
  return out;
}

void ModelWatcher::set_current(const std::string& version) {
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = version;
  if (pending_.model && pending_.info.version == version) {
    pending_ = LoadedSnapshot{};
    has_pending_.store(false, std::memory_order_release);
  }
}

void ModelWatcher::poll_now() {
  std::lock_guard<std::mutex> poll_lock(poll_mutex_);
  std::string version;
  try {
    version = read_latest(dir_);
  } catch (const std::exception&) {
    return;  // LATEST missing or mid-replacement: keep serving what we have
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (version == current_ || version == last_refused_) return;
  }
  // The load (seconds for a big model) runs without the lock: the updater keeps going.
  try {
    SnapshotInfo info;
    auto model = std::make_shared<const FactorModel>(load_snapshot(join_path(dir_, version), &info));
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ = LoadedSnapshot{std::move(model), std::move(info)};
    current_ = version;
    has_pending_.store(true, std::memory_order_release);
    loaded_.fetch_add(1);
    if (log_) std::fprintf(log_, "freshrec-stream: loaded snapshot %s, swapping it in\n", version.c_str());
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    last_refused_ = version;
    refused_.fetch_add(1);
    if (log_)
      std::fprintf(log_, "freshrec-stream: refused snapshot %s, keeping %s: %s\n", version.c_str(), current_.c_str(),
                   e.what());
  }
}

void ModelWatcher::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    poll_now();
    lock.lock();
  }
}

}  // namespace freshrec
