#include <hio/features/npy.hpp>

#include "features_support.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>

using namespace hio::features;
using namespace hio::features::test;

namespace {

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A version 1.0 buffer with the given header text (padded with a newline) and payload bytes.
std::vector<std::byte> npy_v1(const std::string& header, std::size_t payload_bytes, std::byte fill = std::byte{0}) {
  std::string h = header + "\n";
  std::string s = std::string("\x93NUMPY\x01\x00", 8);
  s += static_cast<char>(h.size() & 0xff);
  s += static_cast<char>(h.size() >> 8);
  s += h;
  auto out = bytes_of(s);
  out.insert(out.end(), payload_bytes, fill);
  return out;
}

double value_range(dtype t, double x) {
  // Keep test values representable in every dtype: unsigned types get non-negative values.
  const bool is_unsigned = t == dtype::u1 || t == dtype::u2 || t == dtype::u4 || t == dtype::u8;
  return is_unsigned ? std::fabs(x) : x;
}

}  // namespace

TEST_CASE("npy: every dtype, byte order, memory order, version and rank reads back the values written") {
  const dtype types[] = {dtype::i1, dtype::u1, dtype::i2, dtype::u2, dtype::i4,
                         dtype::u4, dtype::i8, dtype::u8, dtype::f4, dtype::f8};
  const std::vector<std::vector<std::size_t>> shapes = {{5, 3}, {2, 4, 3}, {3, 2, 4, 5}, {1, 1}, {1, 7}, {7, 1}};
  int checked = 0;
  for (dtype type : types)
    for (const auto& shape : shapes)
      for (int version : {1, 2, 3})
        for (bool big : {false, true})
          for (bool fortran : {false, true}) {
            std::vector<double> values(product(shape));
            for (std::size_t i = 0; i < values.size(); ++i)
              values[i] = value_range(type, static_cast<double>(static_cast<int>(i * 7 % 23) - 11));
            const auto buffer = write_npy(values, shape, type, {version, big, fortran});
            CAPTURE(to_string(type));
            CAPTURE(version);
            CAPTURE(big);
            CAPTURE(fortran);
            CAPTURE(shape.size());
            auto a = parse_npy(buffer);
            REQUIRE(a.has_value());
            CHECK(a->type == type);
            CHECK(a->fortran_order == fortran);
            CHECK(a->shape == shape);
            CHECK(a->element_count() == values.size());
            CHECK(a->voxels == shape.back());
            CHECK(a->timepoints == shape[shape.size() - 2]);
            CHECK(to_float64(*a) == values);
            ++checked;
          }
  CHECK(checked == 10 * 6 * 3 * 2 * 2);
}

TEST_CASE("npy: rank 2, 3 and 4 arrays are read as [R][S][T][V]") {
  std::vector<double> v(2 * 3 * 4 * 5);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  const auto buffer = write_npy(v, dims({2, 3, 4, 5}), dtype::f8);
  auto a = parse_or_fail(buffer);
  CHECK(a.realizations == 2);
  CHECK(a.species == 3);
  CHECK(a.timepoints == 4);
  CHECK(a.voxels == 5);
  CHECK(a.at(1, 2, 3, 4) == 119);
  CHECK(a.at(1, 0, 2, 1) == 60 + 10 + 1);
  const auto fortran = write_npy(std::span(v).first(60), dims({3, 4, 5}), dtype::f8, {1, false, true});
  auto b = parse_or_fail(fortran);
  CHECK(b.realizations == 1);
  CHECK(b.species == 3);
  CHECK(b.at(0, 2, 3, 4) == 59);
  CHECK(b.at(0, 1, 0, 2) == 22);
}

TEST_CASE("npy: hand-written headers in the forms numpy and Python 2 wrote are accepted") {
  const std::string good[] = {
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
      "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2, 3)}",
      "{'shape': (2L, 3L), 'fortran_order': False, 'descr': '<f8'}",
      "{ 'descr' : '<f8' , 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }   ",
      "{'descr': '=f8', 'fortran_order': False, 'shape': (2,3)}",
  };
  for (const auto& header : good) {
    CAPTURE(header);
    const auto buffer = npy_v1(header, 48);
    auto a = parse_npy(buffer);
    REQUIRE(a.has_value());
    CHECK(a->timepoints == 2);
    CHECK(a->voxels == 3);
  }
  const auto bytes = npy_v1("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }", 6, std::byte{7});
  auto one_byte = parse_npy(bytes);
  REQUIRE(one_byte.has_value());
  CHECK(one_byte->at(0, 0, 1, 2) == 7);
}

TEST_CASE("npy: malformed buffers give a specific error and never crash") {
  const std::string ok_header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  struct bad_case {
    const char* what;
    std::vector<std::byte> buffer;
    errc expected;
  };
  auto with_version = [&](unsigned char major, unsigned char minor) {
    auto b = npy_v1(ok_header, 48);
    b[6] = std::byte{major};
    b[7] = std::byte{minor};
    return b;
  };
  auto header_len_beyond = [&] {
    auto b = npy_v1(ok_header, 0);
    b[8] = std::byte{0xff};
    b[9] = std::byte{0x7f};
    return b;
  };
  const std::vector<bad_case> cases = {
      {"empty buffer", {}, errc::truncated},
      {"truncated magic", bytes_of(std::string("\x93NUM")), errc::truncated},
      {"wrong magic", bytes_of(std::string("\x93NUMPZ\x01\x00\x10\x00{}")), errc::bad_magic},
      {"a text file", bytes_of("descr,shape\n1,2\n"), errc::bad_magic},
      {"no version", bytes_of(std::string("\x93NUMPY\x01")), errc::truncated},
      {"version 4.0", with_version(4, 0), errc::unsupported_version},
      {"version 1.1", with_version(1, 1), errc::unsupported_version},
      {"truncated header length", bytes_of(std::string("\x93NUMPY\x01\x00\x10", 9)), errc::truncated},
      {"header longer than the buffer", header_len_beyond(), errc::truncated},
      {"not a dict", npy_v1("['descr', '<f8']", 48), errc::bad_header},
      {"missing shape", npy_v1("{'descr': '<f8', 'fortran_order': False}", 48), errc::bad_header},
      {"extra key", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 48), errc::bad_header},
      {"duplicate key", npy_v1("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}", 48),
       errc::bad_header},
      {"unterminated string", npy_v1("{'descr: '<f8', 'fortran_order': False, 'shape': (2, 3)}", 48), errc::bad_header},
      {"missing closing brace", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)", 48), errc::bad_header},
      {"text after the dict", npy_v1(ok_header + " x", 48), errc::bad_header},
      {"fortran_order not a bool", npy_v1("{'descr': '<f8', 'fortran_order': 0, 'shape': (2, 3)}", 48), errc::bad_header},
      {"negative dimension", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (-2, 3)}", 48), errc::bad_header},
      {"dimension beyond 64 bits",
       npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999, 3)}", 48), errc::bad_header},
      {"complex dtype", npy_v1("{'descr': '<c16', 'fortran_order': False, 'shape': (2, 3)}", 96), errc::unsupported_dtype},
      {"half dtype", npy_v1("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3)}", 12), errc::unsupported_dtype},
      {"object dtype", npy_v1("{'descr': '|O', 'fortran_order': False, 'shape': (2, 3)}", 48), errc::unsupported_dtype},
      {"'|' on a multi-byte type", npy_v1("{'descr': '|f8', 'fortran_order': False, 'shape': (2, 3)}", 48),
       errc::unsupported_dtype},
      {"structured dtype", npy_v1("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3)}", 24),
       errc::unsupported_dtype},
      {"0-dimensional", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': ()}", 8), errc::unsupported_shape},
      {"rank 1", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (6,)}", 48), errc::unsupported_shape},
      {"rank 5", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 2, 3)}", 48), errc::unsupported_shape},
      {"zero-length dimension", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3)}", 0),
       errc::unsupported_shape},
      {"payload one byte short", npy_v1(ok_header, 47), errc::size_mismatch},
      {"payload one byte long", npy_v1(ok_header, 49), errc::size_mismatch},
      {"no payload", npy_v1(ok_header, 0), errc::size_mismatch},
      {"huge declared shape", npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}", 48),
       errc::size_mismatch},
      {"shape product overflows 64 bits",
       npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", 64),
       errc::size_mismatch},
      {"product wraps to the payload size",
       npy_v1("{'descr': '<u1', 'fortran_order': False, 'shape': (18446744073709551615, 2, 1, 1)}", 0),
       errc::size_mismatch},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto a = parse_npy(c.buffer);
    REQUIRE_FALSE(a.has_value());
    CHECK(a.error().code == c.expected);
    CHECK_FALSE(a.error().message.empty());
  }
}

TEST_CASE("npy: every truncation and random header corruption of a good buffer is handled without a crash") {
  const auto good = write_npy(random_values(2 * 3 * 4, 7), dims({2, 3, 4}), dtype::f4);
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto a = parse_npy(std::span(good).first(n));
    CAPTURE(n);
    CHECK_FALSE(a.has_value());
  }
  std::mt19937_64 rng(42);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    auto b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % 128] = std::byte(rng() & 0xff);
    auto a = parse_npy(b);
    if (a) {
      ++accepted;
      CHECK(a->payload.data() >= b.data());
      CHECK(a->payload.data() + a->payload.size() == b.data() + b.size());
      CHECK(a->element_count() * item_size(a->type) == a->payload.size());
    }
  }
  MESSAGE(accepted << " of 20000 corrupted buffers still parsed (e.g. a flipped padding byte)");
}

TEST_CASE("npy: files written by numpy (np.save, format versions 2.0 and 3.0) parse to numpy's values") {
  if (!have_numpy()) {
    MESSAGE("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  temp_dir dir;
  const std::string script = R"(
import sys, os, numpy as np
from numpy.lib import format as fmt
d = sys.argv[1]
i = 0
for dt in ['<f8', '>f8', '<f4', '>f4', '<i4', '>i4', '<i8', '>u2', '<u4', '|u1', '|i1', '<i2']:
    for shape in [(4, 3), (2, 4, 3), (2, 3, 4, 5)]:
        for fortran in [False, True]:
            for version in [None, (2, 0), (3, 0)]:
                a = (np.arange(int(np.prod(shape))) % 120).reshape(shape).astype(dt)
                if fortran:
                    a = np.asfortranarray(a)
                name = os.path.join(d, '%03d_%s_%d_%d_%s.npy' % (i, dt.replace('<', 'le').replace('>', 'be').replace('|', 'na'), len(shape), fortran, version))
                if version is None:
                    np.save(name, a)
                else:
                    with open(name, 'wb') as f:
                        fmt.write_array(f, a, version=version)
                i += 1
)";
  temp_dir scripts;
  std::ofstream(scripts.path / "write.py") << script;
  int status = 0;
  run_command("/usr/bin/python3 " + (scripts.path / "write.py").string() + " " + dir.path.string(), status);
  REQUIRE(status == 0);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path)) {
    const auto buffer = read_file(entry.path());
    CAPTURE(entry.path().filename().string());
    auto a = parse_npy(buffer);
    REQUIRE(a.has_value());
    const auto values = to_float64(*a);
    for (std::size_t i = 0; i < values.size(); ++i) REQUIRE(values[i] == static_cast<double>(i % 120));
    const bool fortran = entry.path().filename().string().find("_1_") != std::string::npos;
    CHECK(a->fortran_order == fortran);
    ++files;
  }
  CHECK(files == 12 * 3 * 2 * 3);
}
