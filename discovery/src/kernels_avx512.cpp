// The kernels compiled for AVX-512 (without FMA, so they return the baseline's bits); kernels() picks them
// only on processors that have AVX-512F. Only distance_rows uses 8-double vectors.
#define HIO_KERNEL_QUERY_BLOCK 4
#define HIO_KERNEL_ROW_BLOCK 8
#define HIO_KERNEL_WIDE8 1
#include "detail/kernels_impl.hpp"

namespace hio::discovery::detail {

constinit const kernel_table avx512_kernels = make_table();

}  // namespace hio::discovery::detail
