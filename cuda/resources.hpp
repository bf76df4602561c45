#pragma once
/// The one owner of device state (as faiss's GpuResources and raft's resources): the
/// device, a non-blocking stream, the cuBLAS handle bound to it, and the accounting of
/// every allocation. Created once per trainer and passed by reference to algorithms,
/// which never create streams or handles and never touch the default stream.
/// Compiles with the host compiler: the CUDA types are forward-declared (cudaStream_t is
/// CUstream_st*, cublasHandle_t is cublasContext*).
#include <cstddef>
#include <memory>
#include <string>

struct CUstream_st;
struct cublasContext;

namespace freshrec {

class GpuResources {
 public:
  /// Selects `device`, creates the stream and the cuBLAS handle. Throws CudaError.
  explicit GpuResources(int device = 0);
  ~GpuResources();
  GpuResources(const GpuResources&) = delete;
  GpuResources& operator=(const GpuResources&) = delete;

  int device() const noexcept;
  const std::string& device_name() const noexcept;
  int multiprocessors() const noexcept;
  /// Largest dynamic shared memory one block may opt into (bytes).
  std::size_t max_shared_per_block_optin() const noexcept;

  /// The stream every kernel, copy, cuBLAS and Thrust call of this owner runs on.
  CUstream_st* stream() const noexcept;
  /// cuBLAS handle bound to stream().
  cublasContext* cublas() const noexcept;
  /// Blocks until everything queued on stream() is done. Throws CudaError.
  void synchronize() const;

  /// Free and total device memory now (bytes), from cudaMemGetInfo.
  void memory_info(std::size_t* free_bytes, std::size_t* total_bytes) const;

  /// Throws CudaError "<who>: needs X GiB of device memory, Y GiB free (of Z GiB on
  /// <device>)" when `bytes` exceed the free memory now: the up-front check, so a problem
  /// that cannot fit fails before the first allocation rather than half-way through.
  void require_free(std::size_t bytes, const std::string& who) const;

  /// cudaMalloc of `bytes` (device memory), counted. Throws CudaError naming the size.
  void* allocate(std::size_t bytes);
  /// Returns memory from allocate(); never throws.
  void deallocate(void* ptr, std::size_t bytes) noexcept;
  std::size_t bytes_in_use() const noexcept;
  std::size_t peak_bytes() const noexcept;
  void reset_peak() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshrec
