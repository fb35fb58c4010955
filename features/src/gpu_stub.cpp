// The GPU API in a build without CUDA: no device, ordinary memory.
#include <hio/features/gpu.hpp>

#include "detail/host_memory.hpp"

namespace hio::features {

bool built_with_cuda() noexcept { return false; }
int cuda_device_count() noexcept { return 0; }

namespace detail {
std::byte* pinned_allocate(std::size_t bytes, bool& pinned) {
  pinned = false;
  return aligned_allocate(bytes);
}
void pinned_free(std::byte* p, bool) noexcept { aligned_free(p); }
}  // namespace detail

struct gpu_extractor::impl {};

result<std::unique_ptr<gpu_extractor>> gpu_extractor::create(const gpu_options&) {
  return make_error(errc::no_device, "this build of hio::features has no CUDA kernels (HIO_WITH_CUDA=OFF)");
}
gpu_extractor::gpu_extractor(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
gpu_extractor::~gpu_extractor() = default;
result<std::vector<realization_features>> gpu_extractor::extract(const npy_array&, const options&, cuda_stream) {
  return make_error(errc::no_device, "this build of hio::features has no CUDA kernels");
}
double gpu_extractor::last_device_ms() const noexcept { return 0; }
std::string gpu_extractor::device_name() const { return {}; }
result<gpu_ceilings> gpu_extractor::measure_ceilings(std::size_t, int) {
  return make_error(errc::no_device, "this build of hio::features has no CUDA kernels");
}

}  // namespace hio::features
