#pragma once
/// The public face of the CUDA backend. Compiles with the host compiler alone: no CUDA
/// header is included here (the device state lives behind a pimpl in cuda/).
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cpu/train/trainer.hpp"

namespace freshrec {

/// True when the CUDA runtime answers and reports at least one device. Any error from
/// cudaGetDeviceCount (no driver, no device, driver too old) means "no device"; `reason`
/// (optional) then receives the runtime's message, else the device's name.
bool cuda_device_available(std::string* reason = nullptr);

/// The CUDA trainer for `config.algorithm` (implicit ALS with CG or exact solver, or
/// biased SGD MF). Creates nothing on the device until fit(); throws InputError for a
/// configuration the backend cannot run (e.g. factors > 1024).
std::unique_ptr<Trainer> make_cuda_trainer(const TrainConfig& config);

/// Installs the NVTX push/pop functions behind FRESHREC_TRACE_RANGE (cpu/util/trace.hpp).
/// Idempotent and thread-safe; also done at static-init time by the backend's object file
/// and by make_cuda_trainer, so callers rarely need it.
void install_nvtx_hooks() noexcept;

/// Where the time of the last fit() went, measured with CUDA events on the trainer's
/// stream (seconds) and byte counts for the achieved-bandwidth figures.
struct CudaFitStats {
  std::string device_name;
  double upload_seconds = 0.0;        ///< host -> device: CSR + factors
  double build_seconds = 0.0;         ///< CSR/CSC (or SGD sample order) built on the device
  double download_seconds = 0.0;      ///< device -> host: factors and biases
  std::size_t upload_bytes = 0;
  std::size_t download_bytes = 0;
  std::size_t planned_device_bytes = 0;  ///< the up-front estimate checked against free memory
  std::size_t peak_device_bytes = 0;     ///< what the trainer's allocations actually peaked at
  std::vector<double> iteration_seconds;  ///< per iteration, loss excluded
  std::vector<double> user_step_seconds;  ///< ALS: user half-step per iteration
  std::vector<double> item_step_seconds;  ///< ALS: item half-step per iteration
  double loss_seconds = 0.0;              ///< total spent computing losses
  /// Bytes one iteration must move at least (every array it reads or writes, once):
  /// the numerator of the "achieved GB/s" figure against the memory bandwidth.
  double floor_bytes_per_iteration = 0.0;
  /// Bytes one iteration's loads and stores request (every gather counted, whether it
  /// hits L2 or not): the numerator of the "requested GB/s" figure.
  double requested_bytes_per_iteration = 0.0;
};

/// A Trainer that also reports CudaFitStats; make_cuda_trainer returns one of these.
class CudaTrainer : public Trainer {
 public:
  /// Statistics of the most recent fit() (empty before the first).
  virtual const CudaFitStats& last_stats() const noexcept = 0;
};

}  // namespace freshrec
