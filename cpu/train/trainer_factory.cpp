#include <cstdio>
#include <memory>
#include <string>

#include "cpu/train/als_trainer.hpp"
#include "cpu/train/sgd_trainer.hpp"
#include "cpu/train/trainer.hpp"
#include "cpu/util/error.hpp"

#if FRESHREC_WITH_CUDA
#include "cuda/cuda_backend.hpp"
#endif

namespace freshrec {

std::unique_ptr<Trainer> make_cpu_trainer(const TrainConfig& config) {
  switch (config.algorithm) {
    case Algorithm::kAls:
      return std::make_unique<AlsTrainer>(config);
    case Algorithm::kSgd:
      return std::make_unique<SgdTrainer>(config);
  }
  throw InputError("train.algorithm: unknown value " + std::to_string(static_cast<int>(config.algorithm)));
}

std::unique_ptr<Trainer> make_trainer(const TrainConfig& config, std::string* chosen) {
  auto cpu = [&] {
    if (chosen) *chosen = "cpu";
    return make_cpu_trainer(config);
  };
  switch (config.backend) {
    case Backend::kCpu:
      return cpu();
    case Backend::kCuda:
#if FRESHREC_WITH_CUDA
      if (chosen) *chosen = "cuda";
      return make_cuda_trainer(config);
#else
      throw InputError("train.backend: cuda requested but this build has no CUDA backend");
#endif
    case Backend::kAuto: {
      std::string reason;
#if FRESHREC_WITH_CUDA
      if (cuda_device_available(&reason)) {
        if (chosen) *chosen = "cuda";
        return make_cuda_trainer(config);
      }
      if (reason.empty()) reason = "no device answered";
#else
      reason = "this build has no CUDA backend";
#endif
      std::fprintf(stderr, "freshrec: no CUDA device (%s); training on the CPU\n", reason.c_str());
      return cpu();
    }
  }
  throw InputError("train.backend: unknown value " + std::to_string(static_cast<int>(config.backend)));
}

}  // namespace freshrec
