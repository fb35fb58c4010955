#pragma once
// Where each feature sits in a realization's vector; shared by the CPU and the CUDA implementation.
// Plain C++ (no standard headers beyond <cstddef>) so that .cu files can include it.

#include <cstddef>

namespace hio::features::detail {

// Offsets within one species' block, in name order.
enum species_feature : int {
  f_mean_sm = 0,
  f_burstiness_sm,
  f_burstiness_smt,
  f_skew_sm,
  f_cv_sm,
  f_cv_smt,
  f_acf_norm_sm,
  f_fft_norm_sm,
  f_fft_norm_smt,
  f_tp_first,  // 9 per-timepoint summaries: {burstiness, skew, cv} x {norm, mean, var}
  f_vx_first = f_tp_first + 9,  // 9 per-voxel summaries, same order
  f_spec_period_mean = f_vx_first + 9,
  f_spec_period_std,
  f_spec_share_mean,
  f_spec_peaked_fraction,
};
enum list_stat : int { l_burstiness = 0, l_skew = 1, l_cv = 2 };
enum list_summary : int { l_norm = 0, l_mean = 1, l_var = 2 };
constexpr int list_offset(int stat, int summary) { return stat * 3 + summary; }

// Offsets within one pair's block.
enum pair_feature : int { f_corr_sm = 0, f_tp_corr_norm, f_tp_corr_var, f_vx_corr_norm, f_vx_corr_var };

constexpr std::size_t core_per_species = f_spec_period_mean;  // 27
constexpr std::size_t spectral_per_species = 4;
constexpr std::size_t per_pair = 5;

// Power within this relative distance of the largest counts as a tie for the dominant peak; the lowest
// such frequency wins. Keeps the dominant period reproducible across FFT implementations.
constexpr double peak_tie_tolerance = 1e-9;
// A voxel whose dominant peak holds more than this share of the power counts as "peaked".
constexpr double peaked_share = 0.5;

struct layout {
  std::size_t species = 0;
  bool spectral = true;

  std::size_t per_species() const { return core_per_species + (spectral ? spectral_per_species : 0); }
  std::size_t pairs() const { return species * (species - 1) / 2; }
  std::size_t total() const { return species * per_species() + pairs() * per_pair; }
  std::size_t species_offset(std::size_t s) const { return s * per_species(); }
  std::size_t pair_offset(std::size_t p) const { return species * per_species() + p * per_pair; }
};

// Pairs are numbered in order (0,1), (0,2), ..., (0,S-1), (1,2), ...
inline std::size_t pair_index(std::size_t s, std::size_t u, std::size_t species) {
  return s * species - s * (s + 1) / 2 + (u - s - 1);
}

}  // namespace hio::features::detail
