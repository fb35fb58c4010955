#include <hio/features/gpu.hpp>

#include "detail/host_memory.hpp"

#include <utility>

namespace hio::features {

pinned_buffer::pinned_buffer(std::size_t bytes) : size_(bytes) { data_ = detail::pinned_allocate(bytes, pinned_); }

pinned_buffer::~pinned_buffer() { release(); }

pinned_buffer::pinned_buffer(pinned_buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      pinned_(std::exchange(other.pinned_, false)) {}

pinned_buffer& pinned_buffer::operator=(pinned_buffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    pinned_ = std::exchange(other.pinned_, false);
  }
  return *this;
}

void pinned_buffer::release() noexcept {
  if (data_) detail::pinned_free(data_, pinned_);
  data_ = nullptr;
  size_ = 0;
  pinned_ = false;
}

}  // namespace hio::features
