#pragma once
/// NumPy .npy (format 1.0) for float32 arrays, so `numpy.load` opens our factors directly.
/// Only what the snapshot needs: little-endian float32 ('<f4'), C order, 1-D or 2-D.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace freshrec {

/// A float32 array read from a .npy file; data in C (row-major) order, host memory.
struct NpyArray {
  std::vector<std::uint64_t> shape;  ///< 1 or 2 dimensions
  std::vector<float> data;           ///< product(shape) values
};

/// The complete .npy header (magic, version 1.0, header length, dict padded with
/// spaces and a final '\n' so that the data starts at a multiple of 64 bytes) for a
/// '<f4', C-order array of `shape` (1 or 2 dims). The raw float32 data follows it.
std::string npy_header(const std::vector<std::uint64_t>& shape);

/// Writes a new file at `path` (must not exist) holding `data` (product(shape) floats,
/// C order) and fsyncs it. Throws IoError on OS failure.
void write_npy(const std::string& path, const float* data, const std::vector<std::uint64_t>& shape);

/// Where the float32 payload of a validated .npy image starts, and its shape.
struct NpyLayout {
  std::vector<std::uint64_t> shape;  ///< 1 or 2 dimensions
  std::size_t data_offset = 0;       ///< byte offset of the first value in the image
};

/// Validates a whole .npy file image exactly as parse_npy does, without copying the
/// data: the product(shape) float32 values lie at bytes.data() + data_offset (not
/// necessarily 4-byte aligned; memcpy them).
NpyLayout parse_npy_layout(std::string_view bytes, const std::string& name);

/// Parses a whole .npy file image. Accepts format versions 1.0, 2.0 and 3.0 with
/// 'descr' '<f4' (little-endian float32), 'fortran_order' False and a 1-D or 2-D
/// shape, and requires the data size to match the shape exactly.
/// Throws IntegrityError whose message starts with `name` and says what is wrong
/// (bad magic, unsupported dtype, Fortran order, truncated or oversized data).
NpyArray parse_npy(std::string_view bytes, const std::string& name);

/// Reads and parses the file at `path` (see parse_npy); IoError when unreadable.
NpyArray read_npy(const std::string& path);

}  // namespace freshrec
