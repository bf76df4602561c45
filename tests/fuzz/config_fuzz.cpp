// libFuzzer target: YAML text through both config loaders (nightly and stream). The
// first byte picks the loader; the rest is the document. A bad document must end in
// InputError naming the origin, never in a crash or another exception type.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cpu/config/nightly_config.hpp"
#include "cpu/config/stream_config_yaml.hpp"
#include "cpu/util/error.hpp"

using namespace freshrec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] & 1) (void)parse_stream_config(text, "fuzz.yaml");
    else (void)parse_nightly_config(text, "fuzz.yaml");
  } catch (const InputError& e) {
    if (std::string(e.what()).find("fuzz.yaml") == std::string::npos) std::abort();
  }
  return 0;
}
