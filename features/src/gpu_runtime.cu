// Device discovery and pinned host memory in a build with CUDA.
#include <hio/features/gpu.hpp>

#include "detail/host_memory.hpp"

#include <cuda_runtime.h>

namespace hio::features {

bool built_with_cuda() noexcept { return true; }

int cuda_device_count() noexcept {
  // Without a driver cudaGetDeviceCount fails (cudaErrorInsufficientDriver, 35): that means "no GPU".
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

namespace detail {

std::byte* pinned_allocate(std::size_t bytes, bool& pinned) {
  pinned = false;
  if (cuda_device_count() > 0) {
    void* p = nullptr;
    if (cudaHostAlloc(&p, bytes == 0 ? 1 : bytes, cudaHostAllocDefault) == cudaSuccess) {
      pinned = true;
      return static_cast<std::byte*>(p);
    }
    cudaGetLastError();
  }
  return aligned_allocate(bytes);
}

void pinned_free(std::byte* p, bool pinned) noexcept {
  if (pinned) cudaFreeHost(p);
  else aligned_free(p);
}

}  // namespace detail
}  // namespace hio::features
