#pragma once
/// RAII device memory (copy deleted, move noexcept), allocated through GpuResources so
/// every byte is counted; copies run on the owner's stream.
#include <cstddef>
#include <utility>

#include <cuda_runtime_api.h>

#include "cuda/check.hpp"
#include "cuda/resources.hpp"
#include "cpu/util/error.hpp"

namespace freshrec {

/// `size()` elements of T in device memory.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() noexcept = default;
  /// Uninitialised device memory for `n` elements.
  DeviceBuffer(GpuResources& res, std::size_t n)
      : res_(&res), data_(static_cast<T*>(res.allocate(n * sizeof(T)))), size_(n) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : res_(std::exchange(other.res_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      res_ = std::exchange(other.res_, nullptr);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t bytes() const noexcept { return size_ * sizeof(T); }
  bool empty() const noexcept { return size_ == 0; }

  /// Frees the memory (cudaFree waits for work using it); never throws.
  void reset() noexcept {
    if (res_ != nullptr && data_ != nullptr) res_->deallocate(data_, size_ * sizeof(T));
    data_ = nullptr;
    size_ = 0;
  }

  /// Asynchronous host -> device copy of `n` elements (n <= size()) on the owner's stream.
  void upload(const T* host, std::size_t n) {
    FRESHREC_ASSERT(n <= size_);
    if (n > 0) CUDA_CHECK(cudaMemcpyAsync(data_, host, n * sizeof(T), cudaMemcpyHostToDevice, res_->stream()));
  }
  /// Asynchronous device -> host copy of the first `n` elements on the owner's stream.
  void download(T* host, std::size_t n) const {
    FRESHREC_ASSERT(n <= size_);
    if (n > 0) CUDA_CHECK(cudaMemcpyAsync(host, data_, n * sizeof(T), cudaMemcpyDeviceToHost, res_->stream()));
  }
  /// Sets every byte to zero, asynchronously.
  void zero() {
    if (size_ > 0) CUDA_CHECK(cudaMemsetAsync(data_, 0, bytes(), res_->stream()));
  }

 private:
  GpuResources* res_ = nullptr;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Times stream work with a pair of CUDA events (RAII; destroyed without throwing).
class EventTimer {
 public:
  explicit EventTimer(GpuResources& res) : stream_(res.stream()) {
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~EventTimer() {
    CUDA_CHECK_NO_THROW(cudaEventDestroy(start_));
    CUDA_CHECK_NO_THROW(cudaEventDestroy(stop_));
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  void start() { CUDA_CHECK(cudaEventRecord(start_, stream_)); }
  void stop() { CUDA_CHECK(cudaEventRecord(stop_, stream_)); }
  /// Waits for the stop event; seconds between start() and stop().
  double seconds() const {
    CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return static_cast<double>(ms) * 1e-3;
  }

 private:
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

}  // namespace freshrec
