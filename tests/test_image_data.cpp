// Image data: IDX (raw and gzip), CIFAR-10/100 batches and the TinyImageNet tree, each written here
// byte for byte in the real format, read back, and broken in the ways real files break; the
// normalisation and augmentation; and the real Fashion-MNIST that scripts/setup installs.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <zlib.h>

// Static: the library compiles its own copy (analysis/png.cpp) without the stdio writers.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "core/atomic_file.h"
#include "data/images/byte_source.h"
#include "data/images/cifar_dataset.h"
#include "data/images/idx_dataset.h"
#include "data/images/image_transform.h"
#include "data/images/open_image_dataset.h"
#include "data/images/tinyimagenet_dataset.h"
#include "kvtie/error.h"
#include "test_files.h"
#include "test_helpers.h"

namespace kvtie {
namespace {

namespace fs = std::filesystem;

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

// error_of, and the message must name `file`.
std::string error_naming(const std::function<void()>& f, const std::string& file) {
  const std::string message = error_of(f);
  EXPECT_NE(message.find(file), std::string::npos) << "message does not name " << file << ": " << message;
  return message;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---- IDX ------------------------------------------------------------------------------------

// Three 2x3 images whose pixel p of image k is 10·k + p, labelled 7, 0, 9.
constexpr int kIdxCount = 3, kIdxRows = 2, kIdxCols = 3;
const std::vector<uint8_t> kIdxLabels = {7, 0, 9};

std::string idx_images(uint32_t magic = 0x00000803, uint32_t count = kIdxCount) {
  std::string b = test::be32(magic) + test::be32(count) + test::be32(kIdxRows) + test::be32(kIdxCols);
  for (int k = 0; k < kIdxCount; k++)
    for (int p = 0; p < kIdxRows * kIdxCols; p++) b += static_cast<char>(10 * k + p);
  return b;
}

std::string idx_labels(const std::vector<uint8_t>& labels = kIdxLabels, uint32_t magic = 0x00000801) {
  std::string b = test::be32(magic) + test::be32(static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) b += static_cast<char>(l);
  return b;
}

void expect_idx_fixture(const ImageDataset& data) {
  ASSERT_EQ(data.size(), kIdxCount);
  EXPECT_EQ(data.channels(), 1);
  EXPECT_EQ(data.height(), kIdxRows);
  EXPECT_EQ(data.width(), kIdxCols);
  EXPECT_EQ(data.n_classes(), 10);
  for (int k = 0; k < kIdxCount; k++) EXPECT_EQ(data.label(k), kIdxLabels[k]);
  std::vector<uint8_t> bytes(6);
  std::vector<float> floats(6);
  // Read out of order: nothing depends on reading sequentially.
  for (int k : {2, 0, 1}) {
    data.read(k, bytes.data());
    data.read(k, floats.data());
    for (int p = 0; p < 6; p++) {
      EXPECT_EQ(bytes[p], 10 * k + p);
      EXPECT_FLOAT_EQ(floats[p], static_cast<float>(10 * k + p) / 255.0f);
    }
  }
}

TEST(IdxDataset, ReadsRawFilesImageByImage) {
  const std::string dir = test::temp_dir("image_data", "idx_raw");
  write_file_atomic(dir + "/train-images-idx3-ubyte", idx_images());
  write_file_atomic(dir + "/train-labels-idx1-ubyte", idx_labels());
  const IdxDataset data(dir + "/train-images-idx3-ubyte", dir + "/train-labels-idx1-ubyte");
  expect_idx_fixture(data);
  EXPECT_FALSE(ByteSource(dir + "/train-images-idx3-ubyte").gzipped());
  // The factory finds the standard names in a folder.
  expect_idx_fixture(*open_image_dataset({"mnist", {dir}, "train"}));
}

TEST(IdxDataset, ReadsGzipFilesWhateverTheirName) {
  const std::string dir = test::temp_dir("image_data", "idx_gz");
  write_gzip(dir + "/t10k-images-idx3-ubyte.gz", idx_images());
  write_gzip(dir + "/t10k-labels-idx1-ubyte.gz", idx_labels());
  write_gzip(dir + "/images-no-suffix", idx_images());
  expect_idx_fixture(IdxDataset(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz"));
  expect_idx_fixture(IdxDataset(dir + "/images-no-suffix", dir + "/t10k-labels-idx1-ubyte.gz"));
  EXPECT_TRUE(ByteSource(dir + "/images-no-suffix").gzipped());
  expect_idx_fixture(*open_image_dataset({"fashion-mnist", {dir}, "test"}));
}

TEST(IdxDataset, CorruptFilesNameTheFile) {
  const std::string dir = test::temp_dir("image_data", "idx_bad");
  const std::string images = dir + "/images", labels = dir + "/labels";
  write_file_atomic(labels, idx_labels());
  const auto open = [&] { IdxDataset data(images, labels); };

  write_file_atomic(images, idx_images(0x00000801));
  EXPECT_TRUE(contains(error_naming(open, images), "bad magic 0x00000801")) << "labels file given as images";
  write_file_atomic(images, idx_images(0x12345678));
  EXPECT_TRUE(contains(error_naming(open, images), "bad magic 0x12345678"));
  write_file_atomic(images, idx_images().substr(0, 10));
  EXPECT_TRUE(contains(error_naming(open, images), "truncated IDX header"));
  write_file_atomic(images, idx_images().substr(0, idx_images().size() - 1));
  EXPECT_TRUE(contains(error_naming(open, images), "truncated"));
  write_file_atomic(images, idx_images() + "x");
  EXPECT_TRUE(contains(error_naming(open, images), "1 bytes after"));

  write_file_atomic(images, idx_images());
  write_file_atomic(labels, idx_labels({7, 0}));
  const std::string mismatch = error_naming(open, labels);
  EXPECT_TRUE(contains(mismatch, "2 labels")) << mismatch;
  EXPECT_TRUE(contains(mismatch, images)) << "names both files: " << mismatch;
  write_file_atomic(labels, idx_labels({7, 10, 9}));
  EXPECT_TRUE(contains(error_naming(open, labels), "label 10 at index 1 is out of range [0, 10)"));
  write_file_atomic(labels, idx_labels().substr(0, 9));
  EXPECT_TRUE(contains(error_naming(open, labels), "truncated"));
  write_file_atomic(labels, idx_labels(kIdxLabels, 0x00000803));
  EXPECT_TRUE(contains(error_naming(open, labels), "bad magic 0x00000803"));

  const std::string absent = dir + "/absent";
  EXPECT_TRUE(contains(error_naming([&] { IdxDataset data(absent, labels); }, absent), "cannot open"));
  write_file_atomic(labels, idx_labels());
  const IdxDataset data(images, labels);
  std::vector<uint8_t> pixels(6);
  EXPECT_TRUE(contains(error_naming([&] { data.read(3, pixels.data()); }, images), "index 3 out of range"));
}

TEST(IdxDataset, TruncatedOrCorruptGzipNamesTheFile) {
  const std::string dir = test::temp_dir("image_data", "idx_bad_gz");
  const std::string good = dir + "/good.gz", images = dir + "/images.gz", labels = dir + "/labels";
  write_file_atomic(labels, idx_labels());
  // Pixels that do not compress to almost nothing, so that cutting the stream loses data.
  std::string big = test::be32(0x00000803) + test::be32(1) + test::be32(64) + test::be32(64);
  for (int p = 0; p < 64 * 64; p++) big += static_cast<char>((p * 7919) >> 3);
  write_gzip(good, big);
  const std::string gz = read_file(good);
  const auto open = [&] { IdxDataset data(images, labels); };
  write_file_atomic(images, gz.substr(0, gz.size() / 2));
  EXPECT_TRUE(contains(error_naming(open, images), "gzip")) << "cut in the middle of the stream";
  write_file_atomic(images, gz.substr(0, gz.size() - 4));
  EXPECT_TRUE(contains(error_naming(open, images), "gzip")) << "the trailer (length) cut off";
  std::string flipped = gz;
  flipped[flipped.size() - 6] ^= 0x55;  // inside the CRC
  write_file_atomic(images, flipped);
  EXPECT_TRUE(contains(error_naming(open, images), "gzip")) << "a bad CRC";
}

// ---- CIFAR ----------------------------------------------------------------------------------

// A record's pixel: channel c, row y, column x of record r, stored planar (R plane, G, B).
uint8_t cifar_pixel(int r, int c, int y, int x) { return static_cast<uint8_t>(r * 31 + c * 80 + y * 3 + x); }

std::string cifar_records(int first, int count, const std::vector<uint8_t>& label_bytes_per_record) {
  std::string b;
  for (int r = first; r < first + count; r++) {
    for (size_t l = 0; l < label_bytes_per_record.size(); l++)
      b += static_cast<char>(label_bytes_per_record[l] + (r % 2));
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) b += static_cast<char>(cifar_pixel(r, c, y, x));
  }
  return b;
}

void expect_cifar_pixels(const ImageDataset& data, int r) {
  std::vector<uint8_t> chw(3 * 32 * 32);
  data.read(r, chw.data());
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < 32; y++)
      for (int x = 0; x < 32; x++) ASSERT_EQ(chw[(c * 32 + y) * 32 + x], cifar_pixel(r, c, y, x)) << r << c << y << x;
}

TEST(CifarDataset, Cifar10BatchesReadAsOneDataSet) {
  const std::string dir = test::temp_dir("image_data", "cifar10");
  // Label 3 for even records, 4 for odd ones; records 0-1 in batch 1, 2-4 in batch 2.
  write_file_atomic(dir + "/data_batch_1.bin", cifar_records(0, 2, {3}));
  write_file_atomic(dir + "/data_batch_2.bin", cifar_records(2, 3, {3}));
  const CifarDataset data(CifarVariant::cifar10, {dir + "/data_batch_1.bin", dir + "/data_batch_2.bin"});
  ASSERT_EQ(data.size(), 5);
  EXPECT_EQ(data.shape().numel(), 3072);
  EXPECT_EQ(data.n_classes(), 10);
  EXPECT_EQ(data.record_bytes(), 3073);
  for (int r = 0; r < 5; r++) {
    EXPECT_EQ(data.label(r), 3 + r % 2);
    expect_cifar_pixels(data, r);
  }
  // A folder expands to the standard names: data_batch_1..5 for train, test_batch for test.
  for (int b = 3; b <= 5; b++) write_file_atomic(fmt::format("{}/data_batch_{}.bin", dir, b), cifar_records(0, 1, {3}));
  write_file_atomic(dir + "/test_batch.bin", cifar_records(0, 2, {3}));
  EXPECT_EQ(open_image_dataset({"cifar10", {dir}, "train"})->size(), 8);
  EXPECT_EQ(open_image_dataset({"cifar10", {dir}, "test"})->size(), 2);
}

TEST(CifarDataset, Cifar100HasCoarseThenFineLabels) {
  const std::string dir = test::temp_dir("image_data", "cifar100");
  write_file_atomic(dir + "/train.bin", cifar_records(0, 3, {17, 98}));
  const CifarDataset fine(CifarVariant::cifar100_fine, {dir + "/train.bin"});
  const CifarDataset coarse(CifarVariant::cifar100_coarse, {dir + "/train.bin"});
  ASSERT_EQ(fine.size(), 3);
  EXPECT_EQ(fine.n_classes(), 100);
  EXPECT_EQ(coarse.n_classes(), 20);
  EXPECT_EQ(fine.record_bytes(), 3074);
  for (int r = 0; r < 3; r++) {
    EXPECT_EQ(fine.label(r), 98 + r % 2);
    EXPECT_EQ(coarse.label(r), 17 + r % 2);
    expect_cifar_pixels(fine, r);
  }
  EXPECT_EQ(open_image_dataset({"cifar100-coarse", {dir}, "train"})->n_classes(), 20);
}

TEST(CifarDataset, CorruptBatchesNameTheFile) {
  const std::string dir = test::temp_dir("image_data", "cifar_bad");
  const std::string good = dir + "/data_batch_1.bin", bad = dir + "/data_batch_2.bin";
  write_file_atomic(good, cifar_records(0, 2, {1}));
  const auto open10 = [&] { CifarDataset data(CifarVariant::cifar10, {good, bad}); };

  write_file_atomic(bad, cifar_records(0, 2, {1}).substr(0, 3073 + 100));
  EXPECT_TRUE(contains(error_naming(open10, bad), "not a multiple of the 3073-byte CIFAR-10 record"));
  write_file_atomic(bad, "");
  EXPECT_TRUE(contains(error_naming(open10, bad), "empty"));
  write_file_atomic(bad, cifar_records(0, 2, {9}));  // the second record's label is 10
  EXPECT_TRUE(contains(error_naming(open10, bad), "record 1: label 10 is out of range [0, 10)"));
  EXPECT_TRUE(contains(error_naming(open10, bad), bad));

  // CIFAR-100 batches of two records are 6148 bytes: not CIFAR-10 records.
  write_file_atomic(bad, cifar_records(0, 2, {1, 1}));
  EXPECT_TRUE(contains(error_naming(open10, bad), "not a multiple"));
  const auto open100 = [&] { CifarDataset data(CifarVariant::cifar100_fine, {bad}); };
  write_file_atomic(bad, cifar_records(0, 2, {1, 99}));
  EXPECT_TRUE(contains(error_naming(open100, bad), "record 1: fine label 100 is out of range [0, 100)"));
  write_file_atomic(bad, cifar_records(0, 1, {20, 5}));
  EXPECT_TRUE(contains(error_naming(open100, bad), "record 0: coarse label 20 is out of range [0, 20)"));
  EXPECT_TRUE(contains(error_naming([&] { open_image_dataset({"cifar10", {dir + "/nothing"}, "train"}); }, "nothing"),
                       "cannot open"));
}

// ---- TinyImageNet ---------------------------------------------------------------------------

// A 64x64 RGB image (HWC, as image files store it) that differs in every channel and position.
std::vector<uint8_t> rgb_pattern(int seed, int size = 64) {
  std::vector<uint8_t> hwc(static_cast<size_t>(size * size * 3));
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      for (int c = 0; c < 3; c++) hwc[(y * size + x) * 3 + c] = static_cast<uint8_t>(seed * 50 + c * 70 + y * 2 + x);
  return hwc;
}

void write_png(const std::string& path, const std::vector<uint8_t>& pixels, int size, int channels) {
  ASSERT_NE(stbi_write_png(path.c_str(), size, size, channels, pixels.data(), size * channels), 0) << path;
}

void write_flat_jpeg(const std::string& path, uint8_t r, uint8_t g, uint8_t b) {
  std::vector<uint8_t> hwc;
  for (int p = 0; p < 64 * 64; p++) hwc.insert(hwc.end(), {r, g, b});
  ASSERT_NE(stbi_write_jpg(path.c_str(), 64, 64, 3, hwc.data(), 95), 0) << path;
}

const std::vector<std::string> kWnids = {"n02124075", "n01443537"};

// tiny-imagenet-200 in miniature: two classes (listed out of alphabetical order, as the real
// wnids.txt is), two training images each plus the boxes file, three validation images.
std::string write_tinyimagenet(const std::string& name) {
  const std::string root = test::temp_dir("image_data", name);
  write_file_atomic(root + "/wnids.txt", kWnids[0] + "\n" + kWnids[1] + "\n");
  write_file_atomic(root + "/words.txt", "n01443537\tgoldfish, Carassius auratus\nn02124075\tEgyptian cat\n");
  for (size_t c = 0; c < kWnids.size(); c++) {
    const std::string dir = root + "/train/" + kWnids[c];
    fs::create_directories(dir + "/images");
    write_file_atomic(dir + "/" + kWnids[c] + "_boxes.txt",
                      kWnids[c] + "_0.JPEG\t0\t0\t63\t63\n" + kWnids[c] + "_1.JPEG\t1\t2\t40\t50\n");
    // A PNG under the real .JPEG name: the decoder goes by content, and PNG keeps pixels exact.
    write_png(dir + "/images/" + kWnids[c] + "_0.JPEG", rgb_pattern(static_cast<int>(c)), 64, 3);
    write_flat_jpeg(dir + "/images/" + kWnids[c] + "_1.JPEG", 200, 100, static_cast<uint8_t>(20 + 100 * c));
  }
  fs::create_directories(root + "/val/images");
  write_png(root + "/val/images/val_0.JPEG", rgb_pattern(3), 64, 3);
  write_flat_jpeg(root + "/val/images/val_1.JPEG", 10, 250, 128);
  std::vector<uint8_t> gray(64 * 64);
  for (size_t p = 0; p < gray.size(); p++) gray[p] = static_cast<uint8_t>(p % 251);
  write_png(root + "/val/images/val_2.JPEG", gray, 64, 1);
  write_file_atomic(root + "/val/val_annotations.txt",
                    "val_0.JPEG\tn01443537\t0\t32\t44\t62\r\n"
                    "val_1.JPEG\tn02124075\t52\t37\t63\t63\r\n"
                    "val_2.JPEG\tn01443537\t4\t0\t60\t55\r\n");
  // The unlabelled test split is there too, and ignored.
  fs::create_directories(root + "/test/images");
  write_flat_jpeg(root + "/test/images/test_0.JPEG", 1, 2, 3);
  return root;
}

void expect_pattern(const ImageDataset& data, int64_t i, int seed) {
  const auto hwc = rgb_pattern(seed);
  std::vector<uint8_t> chw(3 * 64 * 64);
  data.read(i, chw.data());
  for (int c = 0; c < 3; c++)
    for (int p = 0; p < 64 * 64; p++) ASSERT_EQ(chw[c * 64 * 64 + p], hwc[p * 3 + c]) << "image " << i;
}

void expect_flat(const ImageDataset& data, int64_t i, std::array<int, 3> rgb) {
  std::vector<float> chw(3 * 64 * 64);
  data.read(i, chw.data());
  for (int c = 0; c < 3; c++)
    for (int p = 0; p < 64 * 64; p++) ASSERT_NEAR(chw[c * 64 * 64 + p] * 255.0f, rgb[c], 3.0f) << "JPEG is lossy";
}

TEST(TinyImageNetDataset, TrainSplitIsLabelledByWnidsOrder) {
  const std::string root = write_tinyimagenet("tin_train");
  const TinyImageNetDataset data(root, "train");
  ASSERT_EQ(data.size(), 4);
  EXPECT_EQ(data.shape().numel(), 3 * 64 * 64);
  EXPECT_EQ(data.n_classes(), 2);
  EXPECT_EQ(data.wnids(), kWnids);
  for (int i = 0; i < 4; i++) EXPECT_EQ(data.label(i), i / 2);
  EXPECT_EQ(fs::path(data.file(0)).filename().string(), "n02124075_0.JPEG");
  expect_pattern(data, 0, 0);
  expect_flat(data, 1, {200, 100, 20});
  expect_pattern(data, 2, 1);
  expect_flat(data, 3, {200, 100, 120});
}

TEST(TinyImageNetDataset, ValSplitIsLabelledByTheAnnotations) {
  const std::string root = write_tinyimagenet("tin_val");
  const auto data = open_image_dataset({"tinyimagenet", {root}, "test"});  // "test" reads val
  ASSERT_EQ(data->size(), 3);
  EXPECT_EQ(data->label(0), 1);
  EXPECT_EQ(data->label(1), 0);
  EXPECT_EQ(data->label(2), 1);
  expect_pattern(*data, 0, 3);
  expect_flat(*data, 1, {10, 250, 128});
  // A grayscale image comes out as three equal channels.
  std::vector<uint8_t> chw(3 * 64 * 64);
  data->read(2, chw.data());
  for (int p = 0; p < 64 * 64; p++)
    for (int c = 0; c < 3; c++) ASSERT_EQ(chw[c * 64 * 64 + p], p % 251);
}

TEST(TinyImageNetDataset, BrokenTreesNameTheFile) {
  const std::string root = write_tinyimagenet("tin_bad");
  const std::string annotations = root + "/val/val_annotations.txt";
  const auto open_val = [&] { TinyImageNetDataset data(root, "val"); };
  const auto open_train = [&] { TinyImageNetDataset data(root, "train"); };

  write_file_atomic(annotations, "val_0.JPEG\tn01443537\t0\t32\t44\t62\nval_1.JPEG\tn09999999\t0\t0\t1\t1\n");
  EXPECT_TRUE(contains(error_naming(open_val, annotations), ":2: unknown wnid 'n09999999'"));
  write_file_atomic(annotations, "val_7.JPEG\tn01443537\t0\t32\t44\t62\n");
  EXPECT_TRUE(contains(error_naming(open_val, root + "/val/images/val_7.JPEG"), "missing image"));
  write_file_atomic(annotations, "val_0.JPEG n01443537 0 32 44 62\n");
  EXPECT_TRUE(contains(error_naming(open_val, annotations), "expected 6 tab-separated fields"));
  write_file_atomic(annotations, "val_0.JPEG\tn01443537\t0\tx\t44\t62\n");
  EXPECT_TRUE(contains(error_naming(open_val, annotations), "'x' is not an integer"));

  // Images are decoded on read(i), so a bad image is reported then, naming it.
  write_file_atomic(annotations, "val_0.JPEG\tn01443537\t0\t32\t44\t62\nval_1.JPEG\tn02124075\t0\t0\t1\t1\n");
  const std::string garbage = root + "/val/images/val_0.JPEG", small = root + "/val/images/val_1.JPEG";
  write_file_atomic(garbage, "\xff\xd8\xff\xe0 this is not really a JPEG");
  write_png(small, rgb_pattern(0, 32), 32, 3);
  const TinyImageNetDataset val(root, "val");
  std::vector<uint8_t> chw(3 * 64 * 64);
  EXPECT_TRUE(contains(error_naming([&] { val.read(0, chw.data()); }, garbage), "cannot decode image"));
  EXPECT_TRUE(contains(error_naming([&] { val.read(1, chw.data()); }, small), "image is 32x32, expected 64x64"));
  fs::remove(small);
  EXPECT_TRUE(contains(error_naming([&] { val.read(1, chw.data()); }, small), "cannot open"));

  fs::create_directories(root + "/train/n07777777/images");
  EXPECT_TRUE(contains(error_naming(open_train, root + "/train/n07777777"), "unknown wnid 'n07777777'"));
  fs::remove_all(root + "/train/n07777777");
  fs::remove_all(root + "/train/" + kWnids[1] + "/images");
  EXPECT_TRUE(contains(error_naming(open_train, root + "/train/" + kWnids[1] + "/images"), "missing folder"));
  write_file_atomic(root + "/wnids.txt", kWnids[0] + "\n" + kWnids[0] + "\n");
  EXPECT_TRUE(contains(error_naming(open_train, root + "/wnids.txt"), "listed twice"));
  fs::remove(root + "/wnids.txt");
  EXPECT_TRUE(contains(error_naming(open_train, root + "/wnids.txt"), "missing"));
  EXPECT_TRUE(contains(error_naming([&] { TinyImageNetDataset data(root, "test"); }, root), "split 'test'"));
}

TEST(OpenImageDataset, UnknownFormatIsAnError) {
  try {
    open_image_dataset({"svhn", {"/tmp"}, "train"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "'svhn'")) << e.what();
  }
}

// ---- normalisation and augmentation ---------------------------------------------------------

TEST(ImageTransform, ChannelStatsAreExact) {
  const std::string dir = test::temp_dir("image_data", "stats");
  write_file_atomic(dir + "/images", idx_images());
  write_file_atomic(dir + "/labels", idx_labels());
  const IdxDataset data(dir + "/images", dir + "/labels");
  double sum = 0, sum_sq = 0;
  for (int v = 0; v < 26; v++)
    if (v % 10 < 6) sum += v / 255.0, sum_sq += (v / 255.0) * (v / 255.0);
  const double mean = sum / 18, sd = std::sqrt(sum_sq / 18 - mean * mean);
  const ChannelStats stats = compute_channel_stats(data);
  ASSERT_EQ(stats.mean.size(), 1u);
  EXPECT_NEAR(stats.mean[0], mean, 1e-7);
  EXPECT_NEAR(stats.std[0], sd, 1e-7);

  const ImageTransform transform(data.shape(), stats);
  std::vector<float> image(6);
  data.read(1, image.data());
  transform.eval(image.data(), image.data());
  for (int p = 0; p < 6; p++) EXPECT_NEAR(image[p], ((10 + p) / 255.0 - mean) / sd, 1e-5);
}

// Whether `out` is `in` shifted by some (dy, dx) within the padding, possibly mirrored, with
// zeros where the shift uncovers the padding.
bool is_crop_of(const std::vector<float>& in, const std::vector<float>& out, ImageShape s, int pad, bool* flipped) {
  for (int flip = 0; flip < 2; flip++)
    for (int dy = -pad; dy <= pad; dy++)
      for (int dx = -pad; dx <= pad; dx++) {
        bool same = true;
        for (int c = 0; c < s.channels && same; c++)
          for (int y = 0; y < s.height && same; y++)
            for (int x = 0; x < s.width && same; x++) {
              const int sy = y + dy, sx = (flip ? s.width - 1 - x : x) + dx;
              const bool inside = sy >= 0 && sy < s.height && sx >= 0 && sx < s.width;
              const float want = inside ? in[(c * s.height + sy) * s.width + sx] : 0.0f;
              same = out[(c * s.height + y) * s.width + x] == want;
            }
        if (same) {
          *flipped = flip == 1;
          return true;
        }
      }
  return false;
}

TEST(ImageTransform, CropAndFlipAreSeededPerSample) {
  const ImageShape shape{3, 8, 8};
  std::vector<float> in(static_cast<size_t>(shape.numel()));
  for (size_t k = 0; k < in.size(); k++) in[k] = 0.5f + static_cast<float>(k);  // all distinct, none 0
  // Unit stats: the transform's output is the augmented image itself.
  const ChannelStats unit{{0, 0, 0}, {1, 1, 1}};
  const ImageTransform transform(shape, unit, {.crop_padding = 2, .horizontal_flip = true}, 1234);
  std::vector<float> a(in.size()), b(in.size());
  std::set<std::vector<float>> distinct;
  int flips = 0;
  for (int index = 0; index < 64; index++) {
    transform.train(in.data(), a.data(), 3, index);
    transform.train(in.data(), b.data(), 3, index);
    ASSERT_EQ(a, b) << "same (seed, epoch, index), same view";
    bool flipped = false;
    ASSERT_TRUE(is_crop_of(in, a, shape, 2, &flipped)) << "index " << index;
    flips += flipped;
    distinct.insert(a);
  }
  EXPECT_GT(distinct.size(), 20u);
  EXPECT_GT(flips, 16);
  EXPECT_LT(flips, 48);
  // Another epoch or another seed gives other views.
  const ImageTransform reseeded(shape, unit, {.crop_padding = 2, .horizontal_flip = true}, 99);
  std::vector<float> c(in.size());
  int other_epoch = 0, other_seed = 0;
  for (int index = 0; index < 16; index++) {
    transform.train(in.data(), a.data(), 0, index);
    transform.train(in.data(), b.data(), 1, index);
    reseeded.train(in.data(), c.data(), 0, index);
    other_epoch += a != b;
    other_seed += a != c;
  }
  EXPECT_GT(other_epoch, 8);
  EXPECT_GT(other_seed, 8);

  // Without augmentation options, train() is eval().
  const ImageTransform plain(shape, {{0.5f, 0.25f, 0}, {2, 1, 0.5f}});
  plain.train(in.data(), a.data(), 7, 7);
  plain.eval(in.data(), b.data());
  EXPECT_EQ(a, b);
  EXPECT_FLOAT_EQ(b[0], (in[0] - 0.5f) / 2);
  EXPECT_FLOAT_EQ(b[2 * 64 + 5], in[2 * 64 + 5] / 0.5f);
}

TEST(ImageTransform, BadStatsAreErrors) {
  const ImageShape shape{3, 8, 8};
  EXPECT_THROW(ImageTransform(shape, {{0}, {1}}), Error);
  EXPECT_THROW(ImageTransform(shape, {{0, 0, 0}, {1, 0, 1}}), Error);
  EXPECT_THROW(ImageTransform(shape, {{0, 0, 0}, {1, 1, 1}}, {.crop_padding = 9}), Error);
}

// ---- the real Fashion-MNIST (Debian dataset-fashion-mnist, installed by scripts/setup) -------

TEST(FashionMnist, DebianPackageReadsAsDocumented) {
  const auto train_files = find_fashion_mnist("train");
  if (!train_files) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup installs it)";
  const IdxDataset train(train_files->images, train_files->labels);
  const auto test = open_image_dataset({"fashion-mnist", {}, "test"});
  ASSERT_EQ(train.size(), 60000);
  ASSERT_EQ(test->size(), 10000);
  for (const ImageDataset* data : std::vector<const ImageDataset*>{&train, test.get()}) {
    EXPECT_EQ(data->channels(), 1);
    EXPECT_EQ(data->height(), 28);
    EXPECT_EQ(data->width(), 28);
    std::vector<int64_t> per_class(10, 0);
    for (int64_t i = 0; i < data->size(); i++) per_class[data->label(i)]++;
    // Fashion-MNIST is balanced: 6000 (train) or 1000 (test) of each class.
    for (int64_t n : per_class) EXPECT_EQ(n, data->size() / 10);
  }
  EXPECT_EQ(train.label(0), 9);  // ankle boot
  EXPECT_EQ(train.label(1), 0);  // T-shirt/top
  EXPECT_EQ(test->label(1), 2);  // pullover
  std::vector<uint8_t> first(28 * 28);
  train.read(0, first.data());
  int64_t sum = 0;
  for (uint8_t v : first) sum += v;
  EXPECT_EQ(sum, 76247);
  // The statistics commonly quoted for Fashion-MNIST's training set.
  const ChannelStats stats = compute_channel_stats(train);
  EXPECT_NEAR(stats.mean[0], 0.2860, 1e-4);
  EXPECT_NEAR(stats.std[0], 0.3530, 1e-4);
}

}  // namespace
}  // namespace kvtie
