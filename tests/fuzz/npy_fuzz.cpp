// libFuzzer target: a .npy file image through parse_npy and parse_npy_layout. Both must
// agree (same verdict, same shape), and an accepted image's data must fit in it.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cpu/model/npy.hpp"
#include "cpu/util/error.hpp"

using namespace freshrec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bool ok_full = false, ok_layout = false;
  NpyArray array;
  NpyLayout layout;
  try {
    array = parse_npy(bytes, "fuzz.npy");
    ok_full = true;
  } catch (const IntegrityError&) {
  }
  try {
    layout = parse_npy_layout(bytes, "fuzz.npy");
    ok_layout = true;
  } catch (const IntegrityError&) {
  }
  if (ok_full != ok_layout) std::abort();
  if (ok_full) {
    if (array.shape != layout.shape) std::abort();
    std::uint64_t n = 1;
    for (std::uint64_t d : layout.shape) n *= d;
    if (array.data.size() != n) std::abort();
    if (layout.data_offset + n * 4 != size) std::abort();
  }
  return 0;
}
