#pragma once
// The feature set on a CUDA device (float64 throughout, cuFFT for the per-voxel spectra), and pinned
// host memory for the tuples it reads. Plain C++: no CUDA header is needed to use it. Without a device,
// or in a build without CUDA, gpu_extractor::create returns an error (no_device) and pinned_buffer
// falls back to ordinary memory.

#include <hio/features/features.hpp>
#include <hio/features/npy.hpp>
#include <hio/features/result.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

struct CUstream_st;

namespace hio::features {

using cuda_stream = CUstream_st*;  // a cudaStream_t; nullptr means "the extractor's own stream"

// Whether this build has the CUDA kernels (HIO_WITH_CUDA); a device may still be absent at run time.
bool built_with_cuda() noexcept;
// Number of usable CUDA devices; 0 without a driver, a device, or CUDA in the build.
int cuda_device_count() noexcept;

// Host memory for tuples: page-locked (cudaHostAlloc) when a CUDA device exists, so that copies to the
// device run asynchronously at full speed; ordinary 64-byte aligned memory otherwise. Move-only; owns
// its memory. Throws std::bad_alloc only when even ordinary memory cannot be had.
class pinned_buffer {
 public:
  pinned_buffer() = default;
  explicit pinned_buffer(std::size_t bytes);
  ~pinned_buffer();
  pinned_buffer(pinned_buffer&& other) noexcept;
  pinned_buffer& operator=(pinned_buffer&& other) noexcept;
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool pinned() const noexcept { return pinned_; }

 private:
  void release() noexcept;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool pinned_ = false;
};

struct gpu_options {
  int device = 0;              // CUDA device ordinal
  std::size_t block_size = 256;  // threads per block of the reduction kernels (a power of two, 64..1024)
};

// Bandwidth ceilings measured on the device, to judge extraction times against.
struct gpu_ceilings {
  std::string device_name;
  double host_to_device_gbps = 0;  // pinned host -> device cudaMemcpyAsync
  double device_memory_gbps = 0;   // device -> device cudaMemcpyAsync (read + write counted)
};

// Extracts the same features as `extractor` on one CUDA device, in float64. Owns a CUDA stream, device
// buffers sized to the largest array seen and cuFFT plans per shape. Not thread-safe: one extract() at a
// time per object; use one object per channel (each with its own stream) to keep several tuples in
// flight on one device.
class gpu_extractor {
 public:
  // Error no_device when CUDA is absent from the build, no driver or device is present, or the device
  // ordinal is out of range; cuda_error when the stream cannot be created.
  static result<std::unique_ptr<gpu_extractor>> create(const gpu_options& o = {});
  ~gpu_extractor();
  gpu_extractor(const gpu_extractor&) = delete;
  gpu_extractor& operator=(const gpu_extractor&) = delete;

  // Copies a's payload to the device (asynchronously when it lies in pinned memory), runs the kernels on
  // `stream` (nullptr: the extractor's own) and waits for the results. Errors: invalid_argument,
  // non_finite_input as for extractor::extract, and invalid_argument for feature_definitions::harmonicpe
  // (the kernels implement only the hio set); cuda_error with the failing call when CUDA fails.
  result<std::vector<realization_features>> extract(const npy_array& a, const options& o = {},
                                                    cuda_stream stream = nullptr);

  // Device time of the last successful extract(), copies included, measured with CUDA events.
  double last_device_ms() const noexcept;
  std::string device_name() const;

  // Measures pinned host->device and device->device copy bandwidth with `bytes`-sized copies (median of
  // `runs` after a warm-up) on this extractor's device.
  result<gpu_ceilings> measure_ceilings(std::size_t bytes, int runs = 20);

 private:
  struct impl;
  explicit gpu_extractor(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace hio::features
