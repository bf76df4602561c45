#include "cpu/train/parallel.hpp"

#include <omp.h>

namespace freshrec {

int resolve_threads(int requested) noexcept {
  if (requested > 0) return requested;
  const int n = omp_get_max_threads();
  return n > 0 ? n : 1;
}

}  // namespace freshrec
