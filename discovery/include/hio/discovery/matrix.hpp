#pragma once
// The dense matrix every discovery algorithm works on: one row per observation, one column per feature.

#include <cassert>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

namespace hio::discovery {

// A row-major matrix of doubles (rows contiguous, so per-row loops vectorise). Owns its values; a const
// matrix may be read from many threads, a mutable one belongs to one thread.
class matrix {
 public:
  matrix() = default;
  matrix(std::size_t rows, std::size_t cols) : rows_(rows), cols_(cols), values_(rows * cols, 0.0) {}
  // `values` holds rows * cols doubles, row after row.
  matrix(std::size_t rows, std::size_t cols, std::vector<double> values)
      : rows_(rows), cols_(cols), values_(std::move(values)) {
    assert(values_.size() == rows_ * cols_);
  }

  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  bool empty() const noexcept { return rows_ == 0; }

  std::span<const double> row(std::size_t i) const noexcept {
    assert(i < rows_);
    return {values_.data() + i * cols_, cols_};
  }
  std::span<double> row(std::size_t i) noexcept {
    assert(i < rows_);
    return {values_.data() + i * cols_, cols_};
  }
  double operator()(std::size_t i, std::size_t j) const noexcept { return values_[i * cols_ + j]; }
  double& operator()(std::size_t i, std::size_t j) noexcept { return values_[i * cols_ + j]; }

  const double* data() const noexcept { return values_.data(); }
  double* data() noexcept { return values_.data(); }
  const std::vector<double>& values() const noexcept { return values_; }

  friend bool operator==(const matrix&, const matrix&) = default;

 private:
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::vector<double> values_;
};

}  // namespace hio::discovery
