#include <hio/features/npy.hpp>

#include "detail/element.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cctype>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

namespace hio::features {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::truncated: return "truncated";
    case errc::bad_magic: return "bad_magic";
    case errc::unsupported_version: return "unsupported_version";
    case errc::bad_header: return "bad_header";
    case errc::unsupported_dtype: return "unsupported_dtype";
    case errc::unsupported_shape: return "unsupported_shape";
    case errc::size_mismatch: return "size_mismatch";
    case errc::invalid_argument: return "invalid_argument";
    case errc::non_finite_input: return "non_finite_input";
    case errc::no_device: return "no_device";
    case errc::cuda_error: return "cuda_error";
  }
  return "unknown";
}

std::size_t item_size(dtype t) noexcept {
  switch (t) {
    case dtype::i1: case dtype::u1: return 1;
    case dtype::i2: case dtype::u2: return 2;
    case dtype::i4: case dtype::u4: case dtype::f4: return 4;
    case dtype::i8: case dtype::u8: case dtype::f8: return 8;
  }
  return 1;
}

std::string_view to_string(dtype t) noexcept {
  switch (t) {
    case dtype::i1: return "i1";
    case dtype::u1: return "u1";
    case dtype::i2: return "i2";
    case dtype::u2: return "u2";
    case dtype::i4: return "i4";
    case dtype::u4: return "u4";
    case dtype::i8: return "i8";
    case dtype::u8: return "u8";
    case dtype::f4: return "f4";
    case dtype::f8: return "f8";
  }
  return "?";
}

std::size_t npy_array::index_of(std::size_t r, std::size_t s, std::size_t t, std::size_t v) const noexcept {
  if (fortran_order) return r + realizations * (s + species * (t + timepoints * v));
  return ((r * species + s) * timepoints + t) * voxels + v;
}

double npy_array::at(std::size_t r, std::size_t s, std::size_t t, std::size_t v) const noexcept {
  const std::size_t size = item_size(type);
  return detail::load_element(payload.data() + index_of(r, s, t, v) * size, type, !detail::native_order(*this));
}

namespace {

constexpr std::size_t max_header_bytes = 1 << 20;  // numpy itself refuses headers over 10 000 bytes by default

// A cursor over the header text that recognises the few Python literals a .npy header holds.
class header_parser {
 public:
  explicit header_parser(std::string_view text) : text_(text) {}

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r'))
      ++pos_;
  }
  bool at_end() {
    skip_space();
    return pos_ == text_.size();
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  bool consume_word(std::string_view w) {
    skip_space();
    if (text_.substr(pos_, w.size()) != w) return false;
    const std::size_t end = pos_ + w.size();
    if (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_'))
      return false;
    pos_ = end;
    return true;
  }
  // A quoted string without escapes.
  std::optional<std::string_view> string_literal() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return std::nullopt;
    const char quote = text_[pos_];
    const std::size_t start = pos_ + 1;
    const std::size_t end = text_.find(quote, start);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view s = text_.substr(start, end - start);
    if (s.find('\\') != std::string_view::npos) return std::nullopt;
    pos_ = end + 1;
    return s;
  }
  // A non-negative integer (Python 2 files may append 'L'); nullopt on overflow.
  std::optional<std::uint64_t> integer() {
    skip_space();
    if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) return std::nullopt;
    std::uint64_t value = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const std::uint64_t digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;
    return value;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

error header_error(std::string what) { return make_error(errc::bad_header, ".npy header: " + what); }

result<std::pair<dtype, bool>> parse_descr(std::string_view d) {
  auto unsupported = [&] {
    return make_error(errc::unsupported_dtype,
                      ".npy dtype '" + std::string(d) +
                          "' is not supported: use one of i1 u1 i2 u2 i4 u4 i8 u8 f4 f8 (either byte order)");
  };
  if (d.size() != 3) return unsupported();
  const char order = d[0];
  if (order != '<' && order != '>' && order != '|' && order != '=') return unsupported();
  static constexpr std::pair<std::string_view, dtype> known[] = {
      {"i1", dtype::i1}, {"u1", dtype::u1}, {"i2", dtype::i2}, {"u2", dtype::u2}, {"i4", dtype::i4},
      {"u4", dtype::u4}, {"i8", dtype::i8}, {"u8", dtype::u8}, {"f4", dtype::f4}, {"f8", dtype::f8}};
  for (const auto& [code, type] : known) {
    if (d.substr(1) != code) continue;
    if (order == '|' && item_size(type) != 1) return unsupported();  // '|' means "no byte order"
    const bool big = order == '>' || (order == '=' && std::endian::native == std::endian::big);
    return std::pair{type, big};
  }
  return unsupported();
}

}  // namespace

result<npy_array> parse_npy(std::span<const std::byte> buffer) {
  static constexpr unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  const auto byte_at = [&](std::size_t i) { return std::to_integer<unsigned char>(buffer[i]); };
  for (std::size_t i = 0; i < sizeof magic; ++i) {
    if (i >= buffer.size())
      return make_error(errc::truncated, ".npy buffer of " + std::to_string(buffer.size()) +
                                             " bytes ends inside the magic string");
    if (byte_at(i) != magic[i]) return make_error(errc::bad_magic, "not a .npy buffer: the magic string \\x93NUMPY is missing");
  }
  if (buffer.size() < 8) return make_error(errc::truncated, ".npy buffer ends before the format version");
  const unsigned major = byte_at(6), minor = byte_at(7);
  if (major < 1 || major > 3 || minor != 0)
    return make_error(errc::unsupported_version, ".npy format version " + std::to_string(major) + "." +
                                                     std::to_string(minor) + " is not supported (1.0, 2.0, 3.0 are)");
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  if (buffer.size() < 8 + length_bytes)
    return make_error(errc::truncated, ".npy buffer ends inside the header length");
  std::size_t header_len = 0;
  for (std::size_t i = 0; i < length_bytes; ++i) header_len |= std::size_t{byte_at(8 + i)} << (8 * i);
  const std::size_t header_start = 8 + length_bytes;
  if (header_len > max_header_bytes)
    return header_error("declared length " + std::to_string(header_len) + " exceeds the limit of " +
                        std::to_string(max_header_bytes) + " bytes");
  if (buffer.size() - header_start < header_len)
    return make_error(errc::truncated, ".npy header declares " + std::to_string(header_len) + " bytes but the buffer holds " +
                                           std::to_string(buffer.size() - header_start));
  const std::string_view text(reinterpret_cast<const char*>(buffer.data() + header_start), header_len);

  header_parser p(text);
  if (!p.consume('{')) return header_error("expected '{'");
  std::optional<std::pair<dtype, bool>> descr;
  std::optional<bool> fortran;
  std::optional<std::vector<std::size_t>> shape;
  while (!p.consume('}')) {
    const auto key = p.string_literal();
    if (!key) return header_error("expected a quoted key or '}'");
    if (!p.consume(':')) return header_error("expected ':' after '" + std::string(*key) + "'");
    if (*key == "descr") {
      if (descr) return header_error("'descr' appears twice");
      if (p.peek('[')) return make_error(errc::unsupported_dtype, ".npy structured dtypes are not supported");
      const auto d = p.string_literal();
      if (!d) return header_error("'descr' must be a quoted string");
      auto parsed = parse_descr(*d);
      if (!parsed) return parsed.error();
      descr = *parsed;
    } else if (*key == "fortran_order") {
      if (fortran) return header_error("'fortran_order' appears twice");
      if (p.consume_word("True")) fortran = true;
      else if (p.consume_word("False")) fortran = false;
      else return header_error("'fortran_order' must be True or False");
    } else if (*key == "shape") {
      if (shape) return header_error("'shape' appears twice");
      if (!p.consume('(')) return header_error("'shape' must be a tuple");
      std::vector<std::size_t> dims;
      while (!p.consume(')')) {
        if (dims.size() >= 32) return header_error("'shape' has more than 32 dimensions");
        const auto n = p.integer();
        if (!n || *n > std::numeric_limits<std::size_t>::max())
          return header_error("'shape' must hold non-negative integers that fit in 64 bits");
        dims.push_back(static_cast<std::size_t>(*n));
        if (!p.consume(',')) {
          if (!p.consume(')')) return header_error("expected ',' or ')' in 'shape'");
          break;
        }
      }
      shape = std::move(dims);
    } else {
      return header_error("unexpected key '" + std::string(*key) + "' (only descr, fortran_order, shape)");
    }
    if (!p.consume(',')) {
      if (!p.consume('}')) return header_error("expected ',' or '}'");
      break;
    }
  }
  if (!p.at_end()) return header_error("unexpected text after the closing '}'");
  if (!descr || !fortran || !shape) return header_error("'descr', 'fortran_order' and 'shape' are all required");

  npy_array a;
  a.type = descr->first;
  a.big_endian = descr->second;
  a.fortran_order = *fortran;
  a.shape = std::move(*shape);
  const std::size_t rank = a.shape.size();
  if (rank < 2 || rank > 4)
    return make_error(errc::unsupported_shape, ".npy array has rank " + std::to_string(rank) +
                                                   "; expected (T, V), (S, T, V) or (R, S, T, V)");
  for (std::size_t d : a.shape)
    if (d == 0) return make_error(errc::unsupported_shape, ".npy array has a zero-length dimension");

  const std::size_t payload_bytes = buffer.size() - header_start - header_len;
  const std::size_t size = item_size(a.type);
  // Multiply with a ceiling: a declared shape larger than the buffer is refused before anything overflows.
  const std::size_t max_elements = payload_bytes / size;
  std::size_t elements = 1;
  for (std::size_t d : a.shape) {
    if (d > max_elements || elements > max_elements / d)
      return make_error(errc::size_mismatch, ".npy shape declares more elements than the " + std::to_string(payload_bytes) +
                                                 "-byte payload holds");
    elements *= d;
  }
  if (elements * size != payload_bytes)
    return make_error(errc::size_mismatch, ".npy payload is " + std::to_string(payload_bytes) + " bytes; shape x itemsize is " +
                                               std::to_string(elements * size));
  a.voxels = a.shape[rank - 1];
  a.timepoints = a.shape[rank - 2];
  a.species = rank >= 3 ? a.shape[rank - 3] : 1;
  a.realizations = rank == 4 ? a.shape[0] : 1;
  a.payload = buffer.subspan(header_start + header_len);
  return a;
}

std::vector<double> to_float64(const npy_array& a) {
  std::vector<double> out(a.element_count());
  std::size_t i = 0;
  for (std::size_t r = 0; r < a.realizations; ++r)
    for (std::size_t s = 0; s < a.species; ++s)
      for (std::size_t t = 0; t < a.timepoints; ++t)
        for (std::size_t v = 0; v < a.voxels; ++v) out[i++] = a.at(r, s, t, v);
  return out;
}

namespace {

template <class U>
void store_bits(std::byte* p, U u, bool swap) {
  if constexpr (sizeof(U) > 1) {
    if (swap) u = detail::byteswap(u);
  }
  std::memcpy(p, &u, sizeof(U));
}

void store_element(std::byte* p, double x, dtype type, bool swap) {
  switch (type) {
    case dtype::i1: store_bits(p, static_cast<std::uint8_t>(static_cast<std::int8_t>(x)), swap); break;
    case dtype::u1: store_bits(p, static_cast<std::uint8_t>(x), swap); break;
    case dtype::i2: store_bits(p, static_cast<std::uint16_t>(static_cast<std::int16_t>(x)), swap); break;
    case dtype::u2: store_bits(p, static_cast<std::uint16_t>(x), swap); break;
    case dtype::i4: store_bits(p, static_cast<std::uint32_t>(static_cast<std::int32_t>(x)), swap); break;
    case dtype::u4: store_bits(p, static_cast<std::uint32_t>(x), swap); break;
    case dtype::i8: store_bits(p, static_cast<std::uint64_t>(static_cast<std::int64_t>(x)), swap); break;
    case dtype::u8: store_bits(p, static_cast<std::uint64_t>(x), swap); break;
    case dtype::f4: store_bits(p, std::bit_cast<std::uint32_t>(static_cast<float>(x)), swap); break;
    case dtype::f8: store_bits(p, std::bit_cast<std::uint64_t>(x), swap); break;
  }
}

}  // namespace

std::vector<std::byte> write_npy(std::span<const double> values, std::span<const std::size_t> shape, dtype type,
                                 const npy_write_options& options) {
  assert(options.major_version >= 1 && options.major_version <= 3);
  std::size_t count = 1;
  for (std::size_t d : shape) count *= d;
  assert(count == values.size());
  const std::size_t size = item_size(type);
  const char order = size == 1 ? '|' : (options.big_endian ? '>' : '<');
  std::string header = "{'descr': '";
  header += order;
  header += to_string(type);
  header += "', 'fortran_order': ";
  header += options.fortran_order ? "True" : "False";
  header += ", 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    header += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) header += ", ";
  }
  if (shape.size() == 1) header.pop_back();
  header += "), }";
  const std::size_t preamble = options.major_version == 1 ? 10 : 12;
  const std::size_t total = (preamble + header.size() + 1 + 63) / 64 * 64;  // numpy pads to 64 bytes
  header.append(total - preamble - header.size() - 1, ' ');
  header += '\n';

  std::vector<std::byte> out(total + count * size);
  const unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  std::memcpy(out.data(), magic, sizeof magic);
  out[6] = std::byte(options.major_version);
  out[7] = std::byte(0);
  for (std::size_t i = 0; i < preamble - 8; ++i) out[8 + i] = std::byte((header.size() >> (8 * i)) & 0xff);
  std::memcpy(out.data() + preamble, header.data(), header.size());

  const bool swap = options.big_endian != (std::endian::native == std::endian::big);
  std::byte* payload = out.data() + total;
  if (!options.fortran_order) {
    for (std::size_t i = 0; i < count; ++i) store_element(payload + i * size, values[i], type, swap);
    return out;
  }
  // Column-major: the C index i maps to the Fortran index sum_k i_k * prod_{j<k} n_j.
  std::vector<std::size_t> idx(shape.size(), 0);
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t f = 0, stride = 1;
    for (std::size_t k = 0; k < shape.size(); ++k) {
      f += idx[k] * stride;
      stride *= shape[k];
    }
    store_element(payload + f * size, values[i], type, swap);
    for (std::size_t k = shape.size(); k-- > 0;) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

}  // namespace hio::features
