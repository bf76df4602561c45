#include "cpu/model/npy.hpp"

#include <cstring>
#include <limits>
#include <utility>

#include "cpu/util/error.hpp"
#include "cpu/util/fs.hpp"

// The payload is written and read as the host's float bytes and labelled '<f4'.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy I/O assumes a little-endian host");
static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559, "npy I/O assumes IEEE float32");

namespace freshrec {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;

// Minimal reader for the Python dict literal in a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  void parse(std::string& descr, bool& fortran, std::vector<std::uint64_t>& shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    ws();
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      const std::string key = string_literal();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        descr = string_literal();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = boolean();
        have_order = true;
      } else if (key == "shape") {
        shape = tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "' in header");
      }
      ws();
      if (peek() == ',') ++pos_;
      else if (peek() != '}') fail("expected ',' or '}' in header");
    }
    if (!have_descr || !have_order || !have_shape)
      fail("header lacks one of 'descr', 'fortran_order', 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw IntegrityError(name_ + ": not a valid .npy file: " + what);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "' in header");
    ++pos_;
  }
  std::string string_literal() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string in header");
    const std::size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string in header");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("expected True or False for 'fortran_order'");
  }
  std::vector<std::uint64_t> tuple() {
    std::vector<std::uint64_t> out;
    expect('(');
    for (;;) {
      ws();
      if (peek() == ')') {
        ++pos_;
        return out;
      }
      if (peek() < '0' || peek() > '9') fail("expected a non-negative integer in 'shape'");
      std::uint64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        const auto d = static_cast<std::uint64_t>(peek() - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) fail("dimension overflows in 'shape'");
        v = v * 10 + d;
        ++pos_;
      }
      out.push_back(v);
      ws();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("expected ',' or ')' in 'shape'");
    }
  }

  std::string_view s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";  // Python's 1-tuple
  return out + ")";
}

}  // namespace

std::string npy_header(const std::vector<std::uint64_t>& shape) {
  FRESHREC_ASSERT(shape.size() == 1 || shape.size() == 2);
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  // magic(6) + version(2) + header_len(2) + dict + padding + '\n' ≡ 0 (mod 64).
  const std::size_t unpadded = kMagicLen + 2 + 2 + dict.size() + 1;
  const std::size_t total = (unpadded + 63) / 64 * 64;
  const std::size_t header_len = total - kMagicLen - 4;
  // Version 1.0 stores the length in 16 bits; our dicts are < 200 bytes.
  FRESHREC_ASSERT(header_len <= 0xffff);
  dict.append(total - unpadded, ' ');
  dict.push_back('\n');
  std::string out(kMagic, kMagicLen);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header_len & 0xff));
  out.push_back(static_cast<char>(header_len >> 8));
  out += dict;
  return out;
}

void write_npy(const std::string& path, const float* data, const std::vector<std::uint64_t>& shape) {
  std::uint64_t n = 1;
  for (std::uint64_t d : shape) n *= d;
  DurableFile f(path, /*exclusive=*/true);
  f.write(npy_header(shape));
  f.write(data, static_cast<std::size_t>(n) * sizeof(float));
  f.commit();
}

NpyLayout parse_npy_layout(std::string_view bytes, const std::string& name) {
  auto fail = [&](const std::string& what) -> IntegrityError {
    return IntegrityError(name + ": not a valid .npy file: " + what);
  };
  if (bytes.size() < kMagicLen + 4 || std::memcmp(bytes.data(), kMagic, kMagicLen) != 0)
    throw fail("bad magic (expected \\x93NUMPY)");
  const auto major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, prefix = 0;
  const auto byte = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i])); };
  if (major == 1) {
    header_len = byte(8) | byte(9) << 8;
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw fail("truncated header");
    header_len = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
    prefix = 12;
  } else {
    throw fail("unsupported format version " + std::to_string(major));
  }
  if (bytes.size() - prefix < header_len)
    throw fail("truncated header (" + std::to_string(bytes.size()) + " bytes in file)");
  std::string descr;
  bool fortran = false;
  NpyLayout out;
  HeaderParser(bytes.substr(prefix, header_len), name).parse(descr, fortran, out.shape);
  if (descr != "<f4") throw fail("dtype '" + descr + "' is not little-endian float32 '<f4'");
  if (fortran) throw fail("Fortran-order arrays are not supported (need C order)");
  if (out.shape.size() != 1 && out.shape.size() != 2)
    throw fail("shape " + shape_text(out.shape) + " is not 1-D or 2-D");
  std::uint64_t count = 1;
  for (std::uint64_t d : out.shape) {
    if (d != 0 && count > std::numeric_limits<std::uint64_t>::max() / 4 / d)
      throw fail("shape " + shape_text(out.shape) + " overflows");
    count *= d;
  }
  const std::uint64_t data_bytes = bytes.size() - prefix - header_len;
  if (data_bytes != count * 4)
    throw fail("shape " + shape_text(out.shape) + " needs " + std::to_string(count * 4) +
               " data bytes, file has " + std::to_string(data_bytes) +
               (data_bytes < count * 4 ? " (truncated)" : " (trailing bytes)"));
  out.data_offset = prefix + header_len;
  return out;
}

NpyArray parse_npy(std::string_view bytes, const std::string& name) {
  NpyLayout layout = parse_npy_layout(bytes, name);
  NpyArray out;
  std::uint64_t count = 1;
  for (std::uint64_t d : layout.shape) count *= d;
  out.shape = std::move(layout.shape);
  out.data.resize(static_cast<std::size_t>(count));
  if (count > 0) std::memcpy(out.data.data(), bytes.data() + layout.data_offset, count * 4);
  return out;
}

NpyArray read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

}  // namespace freshrec
