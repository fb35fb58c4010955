// The .npy parser (features/src/npy.cpp parse_npy): every tuple payload a features processor reads.
// Input: the payload.
#include <hio/features/npy.hpp>

#include "fuzz_check.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hio::features;
  const std::span<const std::byte> buffer(reinterpret_cast<const std::byte*>(data), size);
  const auto a = parse_npy(buffer);
  if (!a) {
    HIO_FUZZ_CHECK(!a.error().message.empty());
    return 0;
  }
  // A parsed array views its payload inside the buffer, exactly shape x itemsize bytes of it.
  HIO_FUZZ_CHECK(a->shape.size() >= 2 && a->shape.size() <= 4);
  std::size_t product = 1;
  for (std::size_t d : a->shape) {
    HIO_FUZZ_CHECK(d > 0);
    product *= d;
  }
  HIO_FUZZ_CHECK(product == a->element_count());
  HIO_FUZZ_CHECK(a->payload.size() == a->element_count() * item_size(a->type));
  HIO_FUZZ_CHECK(a->payload.data() >= buffer.data() &&
                 a->payload.data() + a->payload.size() == buffer.data() + buffer.size());

  // Every element can be read; written again and parsed, the array holds the same values. (64-bit
  // integers are left out: beyond 2^53 they do not survive the trip through double.)
  const std::vector<double> values = to_float64(*a);
  HIO_FUZZ_CHECK(values.size() == a->element_count());
  if (a->type == dtype::i8 || a->type == dtype::u8) return 0;
  const auto bytes = write_npy(values, a->shape, a->type, {.big_endian = a->big_endian, .fortran_order = a->fortran_order});
  const auto b = parse_npy(std::span<const std::byte>(bytes));
  HIO_FUZZ_CHECK(b.has_value());
  HIO_FUZZ_CHECK(b->type == a->type && b->shape == a->shape && b->fortran_order == a->fortran_order);
  const std::vector<double> again = to_float64(*b);
  for (std::size_t i = 0; i < values.size(); ++i)
    HIO_FUZZ_CHECK(again[i] == values[i] || (std::isnan(again[i]) && std::isnan(values[i])));
  return 0;
}
