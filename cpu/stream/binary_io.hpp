#pragma once
/// Canonical little-endian binary encoding for checkpoints: fixed-width integers and IEEE
/// floats, strings and arrays length-prefixed (u64). The reader checks every length against
/// what is left and throws IntegrityError on truncated or malformed bytes.
#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu/util/error.hpp"

namespace freshrec::stream {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint encoding assumes a little-endian host");

/// Appends encoded values to a host buffer. With a sink stream the buffer is flushed to it
/// whenever it passes kFlushBytes (and by flush()), so a whole-state write or digest streams
/// in bounded memory instead of building one copy of the state; without one, bytes()
/// holds everything written.
class BinaryWriter {
 public:
  static constexpr std::size_t kFlushBytes = 1 << 20;
  BinaryWriter() = default;
  explicit BinaryWriter(std::ostream* sink) : sink_(sink) { buf_.reserve(kFlushBytes + 4096); }
  ~BinaryWriter() = default;  // no flush here: a destructor must not throw (call flush())
  BinaryWriter(const BinaryWriter&) = delete;
  BinaryWriter& operator=(const BinaryWriter&) = delete;

  template <typename T>
  void put(T v) {
    static_assert(std::is_arithmetic_v<T>);
    append(&v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<std::uint64_t>(s.size());
    append(s.data(), s.size());
  }
  template <typename T>
  void put_array(const T* data, std::size_t n) {
    static_assert(std::is_arithmetic_v<T>);
    put<std::uint64_t>(n);
    append(data, n * sizeof(T));
  }
  template <typename T>
  void put_vector(const std::vector<T>& v) { put_array(v.data(), v.size()); }
  /// Everything written so far (no sink), or what is not flushed yet (sink).
  const std::vector<char>& bytes() const noexcept { return buf_; }
  /// Writes the buffered bytes to the sink (no-op without one); throws IoError on a failed stream.
  void flush() {
    if (!sink_ || buf_.empty()) return;
    sink_->write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    if (!*sink_) throw IoError("stream checkpoint: write failed");
    buf_.clear();
  }

 private:
  void append(const void* p, std::size_t n) {
    if (sink_ && buf_.size() + n > kFlushBytes) {
      flush();
      if (n > kFlushBytes) {  // large arrays go straight through
        sink_->write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
        if (!*sink_) throw IoError("stream checkpoint: write failed");
        return;
      }
    }
    const std::size_t at = buf_.size();
    buf_.resize(at + n);
    if (n) std::memcpy(buf_.data() + at, p, n);
  }
  std::ostream* sink_ = nullptr;
  std::vector<char> buf_;
};

/// Decodes what BinaryWriter wrote; every read is bounds-checked.
class BinaryReader {
 public:
  explicit BinaryReader(std::vector<char> bytes) : buf_(std::move(bytes)) {}
  template <typename T>
  T get() {
    static_assert(std::is_arithmetic_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, buf_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string() {
    const auto n = get<std::uint64_t>();
    need(n);
    std::string s(buf_.data() + pos_, n);
    pos_ += n;
    return s;
  }
  template <typename T>
  std::vector<T> get_vector(std::uint64_t expected = UINT64_MAX) {
    const auto n = get<std::uint64_t>();
    if (expected != UINT64_MAX && n != expected) fail("array length " + std::to_string(n) + " != " + std::to_string(expected));
    if (n > (buf_.size() - pos_) / sizeof(T)) fail("array longer than the data");
    std::vector<T> v(n);
    // memcpy with a null pointer is undefined even for 0 bytes (an empty vector's data()).
    if (n > 0) std::memcpy(v.data(), buf_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return v;
  }
  template <typename T>
  void get_into(T* out, std::uint64_t expected) {
    const auto n = get<std::uint64_t>();
    if (n != expected) fail("array length " + std::to_string(n) + " != " + std::to_string(expected));
    need(n * sizeof(T));
    if (n > 0) std::memcpy(out, buf_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
  }
  /// An element count that the rest of the data can hold (every element takes at least one
  /// byte), so a malformed count fails here instead of reserving unbounded memory.
  std::uint64_t get_count() {
    const auto n = get<std::uint64_t>();
    if (n > buf_.size() - pos_) fail("count " + std::to_string(n) + " exceeds the remaining data");
    return n;
  }
  bool at_end() const noexcept { return pos_ == buf_.size(); }
  [[noreturn]] void fail(const std::string& why) const {
    throw IntegrityError("stream checkpoint: " + why + " at byte " + std::to_string(pos_));
  }

 private:
  void need(std::uint64_t n) const {
    if (n > buf_.size() - pos_) fail("truncated (wanted " + std::to_string(n) + " more bytes)");
  }
  std::vector<char> buf_;
  std::size_t pos_ = 0;
};

}  // namespace freshrec::stream
