#pragma once
// Expected failures of the features library as values: result<T> holds a T or an error with a message a
// user can act on. The library throws nothing of its own (std::bad_alloc aside) and depends on no other
// hio module, so it can be built and shipped alone.

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hio::features {

enum class errc {
  truncated = 1,        // the buffer ends inside the .npy preamble or header
  bad_magic,            // not a .npy buffer
  unsupported_version,  // .npy format version other than 1.0, 2.0, 3.0
  bad_header,           // the header dict is malformed
  unsupported_dtype,    // descr is not one of the supported numeric types
  unsupported_shape,    // rank other than 2, 3, 4, or a zero-length dimension
  size_mismatch,        // payload length differs from shape x itemsize (includes huge declared shapes)
  invalid_argument,     // bad options, e.g. species names that do not match the array
  non_finite_input,     // the array holds NaN or Inf, or values whose sums overflow
  no_device,            // no usable CUDA device, or built without CUDA
  cuda_error,           // a CUDA or cuFFT call failed
};

std::string_view to_string(errc code) noexcept;

struct error {
  errc code = errc::invalid_argument;
  std::string message;  // one line: what went wrong and, where possible, what to do
};

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(::hio::features::error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { assert(has_value()); return *std::get_if<0>(&v_); }
  const T& value() const& { assert(has_value()); return *std::get_if<0>(&v_); }
  T&& value() && { assert(has_value()); return std::move(*std::get_if<0>(&v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const ::hio::features::error& error() const { assert(!has_value()); return *std::get_if<1>(&v_); }

 private:
  std::variant<T, ::hio::features::error> v_;
};

inline error make_error(errc code, std::string message) { return error{code, std::move(message)}; }

}  // namespace hio::features
