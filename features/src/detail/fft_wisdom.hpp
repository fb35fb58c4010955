#pragma once
// The FFTW plans of the CPU extractor and the wisdom that fixes them (docs/features.md, "FFT plans").
// Shared by extractor.cpp and the tool that regenerates the shipped wisdom (features/wisdom_tool.cpp).

#include <cstddef>
#include <string>
#include <vector>

namespace hio::features::detail {

// The wisdom compiled into the library (fft_wisdom.inc): plans for the series lengths that matter, found
// once by timing and then fixed, so that every run and every process uses the same factorisation.
const char* shipped_fft_wisdom() noexcept;

// Forgets all wisdom of this process, plans the extractor's transforms for each series length with
// FFTW_PATIENT (or FFTW_EXHAUSTIVE) and returns the wisdom FFTW exports afterwards. Slow (seconds per
// length); for the regeneration tool only. Plans made later in this process will use that wisdom.
std::string generate_fft_wisdom(const std::vector<std::size_t>& lengths, bool exhaustive);

// fftw_sprint_plan of the per-voxel transform an extractor with these settings uses for length t.
std::string describe_voxel_plan(std::size_t t, bool measure);

// Whether an extractor's per-voxel transform for length t (t >= 2) is built from the shipped wisdom
// (false: FFTW_ESTIMATE, for lengths the wisdom does not cover).
bool voxel_plan_from_wisdom(std::size_t t);

}  // namespace hio::features::detail
