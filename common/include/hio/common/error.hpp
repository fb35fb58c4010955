#pragma once
// Expected failures as values: hio::result<T> holds a T or an hio::error with a message a user can act on.

#include <boost/system/result.hpp>

#include <stdexcept>
#include <string>
#include <utility>

namespace hio {

struct error {
  // Not an aggregate on purpose: result<T, error> must not see an integer T as convertible to an error.
  error() = default;
  error(int c, std::string m) : code(c), message(std::move(m)) {}

  int code = 0;         // component-specific code (wire::error_code for the data path, HTTP status for REST)
  std::string message;  // one line, says what went wrong and, where possible, what to do
};

// Thrown only by result<T>::value() on an error; code that checks has_value() never sees it.
class error_exception : public std::runtime_error {
 public:
  explicit error_exception(hio::error e) : std::runtime_error(e.message), error_(std::move(e)) {}
  const hio::error& err() const noexcept { return error_; }

 private:
  hio::error error_;
};

[[noreturn]] inline void throw_exception_from_error(const error& e, const boost::source_location&) {
  throw error_exception(e);
}

template <class T>
using result = boost::system::result<T, error>;

inline error make_error(int code, std::string message) { return error{code, std::move(message)}; }

}  // namespace hio
