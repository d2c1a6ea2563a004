// Token files: uint16 and int32 .npy, and clear errors for everything else.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/npy.h"
#include "kvtie/error.h"
#include "test_files.h"

namespace kvtie {
namespace {

// A .npy file as numpy writes it (version 1.0 header padded to 64 bytes).
std::string npy(const std::string& descr, const std::string& shape, const std::string& data) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size());
  out += '\0';
  return out + header + data;
}

std::string error_reading(const std::string& bytes) {
  const std::string path = test::temp_path("npy", "bad.npy");
  write_file_atomic(path, bytes);
  try {
    read_tokens_npy(path);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    return e.what();
  }
  return "(no error)";
}

TEST(Npy, RoundTripsUint16AndInt32) {
  const std::string path = test::temp_path("npy", "t.npy");
  const std::vector<int32_t> small = {0, 1, 65535, 7};
  write_tokens_npy(path, small);
  EXPECT_NE(read_file(path).find("<u2"), std::string::npos);
  EXPECT_EQ(read_tokens_npy(path), small);
  const std::vector<int32_t> big = {0, 70000, 3};
  write_tokens_npy(path, big);
  EXPECT_NE(read_file(path).find("<i4"), std::string::npos);
  EXPECT_EQ(read_tokens_npy(path), big);
  EXPECT_EQ(read_file(path).size() % 4, 0u);
}

TEST(Npy, ReadsNumpyLayout) {
  const std::string path = test::temp_path("npy", "np.npy");
  write_file_atomic(path, npy("<u2", "(3,)", std::string("\x01\x00\x02\x01\xff\xff", 6)));
  EXPECT_EQ(read_tokens_npy(path), (std::vector<int32_t>{1, 258, 65535}));
}

TEST(Npy, RejectsWhatIsNotATokenArray) {
  EXPECT_NE(error_reading("hello").find("not a .npy"), std::string::npos);
  EXPECT_NE(error_reading(npy("<f8", "(1,)", std::string(8, '\0'))).find("'<f8'"), std::string::npos);
  EXPECT_NE(error_reading(npy("<u2", "(2, 2)", std::string(8, '\0'))).find("1-D"), std::string::npos);
  EXPECT_NE(error_reading(npy("<i4", "(4,)", std::string(8, '\0'))).find("truncated"), std::string::npos);
  EXPECT_NE(error_reading(npy("<u2", "(2,)", std::string(4, '\0')).substr(0, 20)).find("truncated"),
            std::string::npos);
}

TEST(Npy, EmptyArrayReadsAsEmpty) {
  const std::string path = test::temp_path("npy", "empty.npy");
  write_file_atomic(path, npy("<u2", "(0,)", ""));
  EXPECT_TRUE(read_tokens_npy(path).empty());
}

}  // namespace
}  // namespace kvtie
