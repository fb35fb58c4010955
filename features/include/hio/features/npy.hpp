#pragma once
// NumPy .npy buffers in memory: a parser that views the payload without copying it, element access in
// any supported dtype, byte order and memory order, and a writer (for tests, benchmarks and sources).
//
// Arrays are read as [R][S][T][V] (realizations, species, timepoints, voxels): a (T, V) array has
// R = S = 1, an (S, T, V) array has R = 1.

#include <hio/features/result.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace hio::features {

enum class dtype { i1, u1, i2, u2, i4, u4, i8, u8, f4, f8 };

std::size_t item_size(dtype t) noexcept;
std::string_view to_string(dtype t) noexcept;  // "f4", "i8", ...

// A parsed .npy buffer. It views the buffer given to parse_npy and is valid as long as that buffer is.
struct npy_array {
  dtype type = dtype::f8;
  bool big_endian = false;             // payload byte order ('>' in descr)
  bool fortran_order = false;          // payload is column-major over `shape`
  std::vector<std::size_t> shape;      // as declared in the header: rank 2, 3 or 4
  std::size_t realizations = 1;        // R
  std::size_t species = 1;             // S
  std::size_t timepoints = 0;          // T
  std::size_t voxels = 0;              // V
  std::span<const std::byte> payload;  // the elements, exactly element_count() * item_size() bytes

  std::size_t element_count() const noexcept { return realizations * species * timepoints * voxels; }
  // Index of element [r][s][t][v] in the payload, in elements; honours fortran_order.
  std::size_t index_of(std::size_t r, std::size_t s, std::size_t t, std::size_t v) const noexcept;
  // Element [r][s][t][v] as a double (64-bit integers beyond 2^53 are rounded). Indices are not checked.
  double at(std::size_t r, std::size_t s, std::size_t t, std::size_t v) const noexcept;
};

// Parses a .npy buffer: magic "\x93NUMPY", version 1.0, 2.0 or 3.0, a header dict with exactly 'descr',
// 'fortran_order' and 'shape'. Supported descr: |i1 |u1 and <i2 <u2 <i4 <u4 <i8 <u8 <f4 <f8 with their
// '>' (big-endian) and '=' (native) variants. Shapes (T, V), (S, T, V), (R, S, T, V), no zero dimension.
// Never allocates more than the header's size and never reads past the buffer. Every malformed buffer
// gives an error: truncated, bad_magic, unsupported_version, bad_header, unsupported_dtype,
// unsupported_shape, or size_mismatch when the payload is not exactly shape x itemsize bytes.
result<npy_array> parse_npy(std::span<const std::byte> buffer);
// The array would view a temporary: keep the buffer in a variable.
result<npy_array> parse_npy(std::vector<std::byte>&& buffer) = delete;

// The whole array as float64 in C order [R][S][T][V].
std::vector<double> to_float64(const npy_array& a);

struct npy_write_options {
  int major_version = 1;       // 1, 2 or 3 (the header format differs only in its length field)
  bool big_endian = false;     // write '>' and byte-swapped elements
  bool fortran_order = false;  // write the payload column-major and fortran_order: True
};

// Serialises `values` (C order over `shape`, converted to `type` by static_cast) as a .npy buffer.
// Programmer errors (values.size() != product of shape, bad version) assert.
std::vector<std::byte> write_npy(std::span<const double> values, std::span<const std::size_t> shape,
                                 dtype type, const npy_write_options& options = {});

}  // namespace hio::features
