#pragma once
// Host allocation behind pinned_buffer: pinned_allocate/pinned_free are defined by the CUDA build
// (cudaHostAlloc when a device exists) or by the stub build (ordinary memory).

#include <cstddef>
#include <new>

namespace hio::features::detail {

inline std::byte* aligned_allocate(std::size_t bytes) {
  return static_cast<std::byte*>(::operator new(bytes == 0 ? 1 : bytes, std::align_val_t{64}));
}
inline void aligned_free(std::byte* p) noexcept { ::operator delete(p, std::align_val_t{64}); }

// Sets `pinned` to whether the memory is page-locked. Throws std::bad_alloc only when even ordinary
// memory is not available.
std::byte* pinned_allocate(std::size_t bytes, bool& pinned);
void pinned_free(std::byte* p, bool pinned) noexcept;

}  // namespace hio::features::detail
