// The kernels compiled for AVX2 (without FMA, so they return the baseline's bits); kernels() picks them
// only on processors that have AVX2.
#define HIO_KERNEL_QUERY_BLOCK 4
#define HIO_KERNEL_ROW_BLOCK 8
#include "detail/kernels_impl.hpp"

namespace hio::discovery::detail {

constinit const kernel_table avx2_kernels = make_table();

}  // namespace hio::discovery::detail
