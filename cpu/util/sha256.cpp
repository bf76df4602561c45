#include "cpu/util/sha256.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include <openssl/evp.h>

#include "cpu/util/error.hpp"

namespace freshrec {
namespace {

EVP_MD_CTX* as_ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

void init_or_throw(EVP_MD_CTX* ctx) {
  // Failure here means OpenSSL itself is broken (allocation, provider missing), not
  // the caller's input; it is still reported as an exception so a long-lived process
  // can refuse one artefact instead of dying.
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: EVP_DigestInit_ex(sha256) failed");
}

}  // namespace

Sha256::Sha256() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) throw std::runtime_error("OpenSSL: EVP_MD_CTX_new failed");
  ctx_ = ctx;
  try {
    init_or_throw(ctx);
  } catch (...) {
    EVP_MD_CTX_free(ctx);
    ctx_ = nullptr;
    throw;
  }
}

Sha256::~Sha256() {
  if (ctx_ != nullptr) EVP_MD_CTX_free(as_ctx(ctx_));
}

Sha256::Sha256(Sha256&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

Sha256& Sha256::operator=(Sha256&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) EVP_MD_CTX_free(as_ctx(ctx_));
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

void Sha256::update(const void* data, std::size_t size) {
  FRESHREC_ASSERT(ctx_ != nullptr);  // used after move
  if (size == 0) return;
  if (EVP_DigestUpdate(as_ctx(ctx_), data, size) != 1)
    throw std::runtime_error("OpenSSL: EVP_DigestUpdate failed");
}

std::string Sha256::hex_digest() {
  FRESHREC_ASSERT(ctx_ != nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(as_ctx(ctx_), digest, &len) != 1)
    throw std::runtime_error("OpenSSL: EVP_DigestFinal_ex failed");
  init_or_throw(as_ctx(ctx_));
  static const char kHex[] = "0123456789abcdef";
  std::string out(2 * static_cast<std::size_t>(len), '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0x0f];
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

std::string sha256_file_hex(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw IoError(path + ": read failed: " + std::strerror(err));
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return h.hex_digest();
}

}  // namespace freshrec
