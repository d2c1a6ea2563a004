#include "data/images/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "kvtie/error.h"

namespace kvtie {
namespace {

bool has_gzip_magic(int fd) {
  unsigned char magic[2] = {0, 0};
  return ::pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

std::string inflate_gzip(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) fail("{}: cannot open: {}", path, std::strerror(errno));
  gzbuffer(gz, 1 << 18);
  std::string out;
  constexpr size_t kChunk = 1 << 20;
  while (true) {
    const size_t old = out.size();
    out.resize(old + kChunk);
    const int n = gzread(gz, out.data() + old, static_cast<unsigned>(kChunk));
    if (n < 0) {
      out.resize(old);
      break;
    }
    out.resize(old + static_cast<size_t>(n));
    if (n == 0) break;
  }
  // zlib reports a stream cut short, a bad CRC or corrupt deflate data here, after the fact.
  int code = Z_OK;
  const char* message = gzerror(gz, &code);
  std::string reason = message ? message : "";
  // zlib puts the path in front of its message; ours already starts with it.
  if (reason.starts_with(path + ": ")) reason.erase(0, path.size() + 2);
  gzclose(gz);
  if (code != Z_OK && code != Z_STREAM_END)
    fail("{}: corrupt or truncated gzip data ({})", path, reason.empty() ? "zlib error" : reason);
  return out;
}

}  // namespace

ByteSource::ByteSource(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("{}: cannot open: {}", path_, std::strerror(errno));
  if (has_gzip_magic(fd_)) {
    ::close(fd_);
    fd_ = -1;
    inflated_ = inflate_gzip(path_);
    size_ = inflated_.size();
    return;
  }
  struct stat st{};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fail("{}: cannot stat: {}", path_, std::strerror(err));
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

ByteSource::~ByteSource() {
  if (fd_ >= 0) ::close(fd_);
}

ByteSource::ByteSource(ByteSource&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      inflated_(std::move(other.inflated_)) {}

ByteSource& ByteSource::operator=(ByteSource&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    inflated_ = std::move(other.inflated_);
  }
  return *this;
}

void ByteSource::read(uint64_t offset, size_t n, void* out) const {
  if (offset > size_ || n > size_ - offset)
    fail("{}: truncated: need bytes [{}, {}) but the {} has {}", path_, offset, offset + n,
         gzipped() ? "decompressed data" : "file", size_);
  if (gzipped()) {
    std::memcpy(out, inflated_.data() + offset, n);
    return;
  }
  auto* dst = static_cast<char*>(out);
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("{}: read failed: {}", path_, std::strerror(errno));
    // The file shrank since it was opened.
    if (got == 0) fail("{}: truncated: file ended at byte {} while reading [{}, {})", path_, offset + done, offset, offset + n);
    done += static_cast<size_t>(got);
  }
}

}  // namespace kvtie
