// The baseline build of the kernels, and the choice between it and the AVX2 and AVX-512 builds.
#define HIO_KERNEL_QUERY_BLOCK 2
#define HIO_KERNEL_ROW_BLOCK 4
#include "detail/kernels_impl.hpp"

namespace hio::discovery::detail {

constinit const kernel_table baseline_kernels = make_table();

const kernel_table& kernels() noexcept {
#if defined(__x86_64__) && defined(__GNUC__)
  static const kernel_table& chosen = __builtin_cpu_supports("avx512f") ? avx512_kernels
                                      : __builtin_cpu_supports("avx2")  ? avx2_kernels
                                                                        : baseline_kernels;
  return chosen;
#else
  return baseline_kernels;
#endif
}

}  // namespace hio::discovery::detail
