#pragma once
// Random access to the bytes of one data file. A plain file is read with pread on demand (nothing
// is loaded up front, and concurrent reads share no file position); a gzip file (recognised by its
// magic bytes, not its name) is decompressed into memory once, since gzip cannot seek — fine for
// the files that come gzipped (MNIST-style IDX: 47 MB for 60000 28x28 images), and a large data
// set can always be stored uncompressed to be streamed.
#include <cstddef>
#include <cstdint>
#include <string>

namespace kvtie {

class ByteSource {
 public:
  explicit ByteSource(std::string path);
  ~ByteSource();
  ByteSource(ByteSource&& other) noexcept;
  ByteSource& operator=(ByteSource&& other) noexcept;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  const std::string& path() const { return path_; }
  // Decompressed size for gzip files.
  uint64_t size() const { return size_; }
  bool gzipped() const { return fd_ < 0; }
  // Fails naming the file when [offset, offset + n) runs past the end.
  void read(uint64_t offset, size_t n, void* out) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string inflated_;
};

}  // namespace kvtie
