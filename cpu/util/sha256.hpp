#pragma once
/// SHA-256 digests (OpenSSL EVP) for checksumming stored artefacts.
#include <cstddef>
#include <string>
#include <string_view>

namespace freshrec {

/// Incremental SHA-256. Owns an OpenSSL digest context (host memory); move-only.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;

  /// Feeds `size` bytes at `data` into the digest.
  void update(const void* data, std::size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  /// Finishes the digest and returns it as 64 lowercase hex characters; the object
  /// then starts a fresh digest, so it can be reused.
  std::string hex_digest();

 private:
  void* ctx_ = nullptr;  // EVP_MD_CTX*, kept opaque so callers need no OpenSSL header
};

/// SHA-256 of `bytes` as 64 lowercase hex characters.
std::string sha256_hex(std::string_view bytes);

/// SHA-256 of the whole file at `path` (read in chunks); throws IoError when unreadable.
std::string sha256_file_hex(const std::string& path);

}  // namespace freshrec
