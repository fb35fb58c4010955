#pragma once
// HIO_CUDA_TRY / HIO_CUFFT_TRY: check a CUDA runtime or cuFFT call and return an error (errc::cuda_error)
// naming the call from the enclosing function, whose return type must be constructible from an error.

#include <hio/features/result.hpp>

#include <cuda_runtime.h>
#include <cufft.h>

#include <string>

namespace hio::features::detail {

inline error cuda_failure(const char* call, cudaError_t e, const char* file, int line) {
  cudaGetLastError();  // clear a sticky launch error so that the next call starts clean
  return make_error(errc::cuda_error, std::string(call) + " failed: " + cudaGetErrorName(e) + " (" +
                                          cudaGetErrorString(e) + ") at " + file + ":" + std::to_string(line));
}

inline error cufft_failure(const char* call, cufftResult r, const char* file, int line) {
  return make_error(errc::cuda_error, std::string(call) + " failed: cufftResult " + std::to_string(static_cast<int>(r)) +
                                          " at " + file + ":" + std::to_string(line));
}

}  // namespace hio::features::detail

#define HIO_CUDA_TRY(call)                                                                  \
  do {                                                                                      \
    const cudaError_t hio_cuda_status_ = (call);                                            \
    if (hio_cuda_status_ != cudaSuccess)                                                    \
      return ::hio::features::detail::cuda_failure(#call, hio_cuda_status_, __FILE__, __LINE__); \
  } while (0)

#define HIO_CUFFT_TRY(call)                                                                  \
  do {                                                                                       \
    const cufftResult hio_cufft_status_ = (call);                                            \
    if (hio_cufft_status_ != CUFFT_SUCCESS)                                                  \
      return ::hio::features::detail::cufft_failure(#call, hio_cufft_status_, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: configuration errors surface from cudaGetLastError.
#define HIO_CUDA_TRY_LAUNCH() HIO_CUDA_TRY(cudaGetLastError())
