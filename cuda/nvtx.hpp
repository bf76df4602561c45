#pragma once
/// NVTX ranges for the CUDA backend's own stages (upload, build, each iteration and
/// half-step, download), so Nsight shows them on the timeline beside the kernels.
#include <nvtx3/nvToolsExt.h>

namespace freshrec {

/// Pushes a named NVTX range for its lifetime. `name` must outlive it (a literal).
class NvtxRange {
 public:
  explicit NvtxRange(const char* name) noexcept { nvtxRangePushA(name); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace freshrec
