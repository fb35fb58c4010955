#pragma once
// The feature set of one realization [S][T][V] (species, timepoints, voxels), defined with formulas in
// docs/features.md, and its CPU reference implementation (float64 accumulation, FFTW).

#include <hio/features/npy.hpp>
#include <hio/features/result.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace hio::features {

// Which definitions and order the features follow (docs/features.md).
enum class feature_definitions {
  hio,         // hio's set: species blocks, then pairs; textbook Pearson skew; ACF about the global mean
  harmonicpe,  // the original HarmonicPE code (batch.py, g2): its skewness, autocorrelation and order
};

struct options {
  std::vector<std::string> species_names;  // names used instead of s0, s1, ...: none, or one per species
  bool spectral = true;                    // add the 4 spectral features per species (off: the study's set);
                                           // ignored with harmonicpe, which has no spectral set
  feature_definitions definitions = feature_definitions::hio;  // harmonicpe: CPU extractor only
};

// Features per species and per pair of species: 27 + 5 per pair is the HarmonicIO/URDME study's set
// (59 for two species); `spectral` adds 4 per species.
constexpr std::size_t core_features_per_species = 27;
constexpr std::size_t spectral_features_per_species = 4;
constexpr std::size_t features_per_pair = 5;
std::size_t feature_count(std::size_t species, bool spectral) noexcept;
// The count for these options: harmonicpe has the study's 27 + 5 per pair whatever `spectral` says.
std::size_t feature_count(std::size_t species, const options& o) noexcept;

// Stable names in output order: for each species its features ("s0.mean_sm", ..., "s0.spec.period_mean"),
// then each pair s < u ("s0_s1.corr_sm", ...); with harmonicpe the original's order and "hpe_" names for
// the features it defines differently (docs/features.md, "features:harmonicpe"). Error (invalid_argument)
// when species_names is neither empty nor one non-empty name per species, or a name holds '.', whitespace
// or a duplicate.
result<std::vector<std::string>> feature_names(std::size_t species, const options& o);

struct realization_features {
  std::shared_ptr<const std::vector<std::string>> names;  // shared by every realization of one call
  std::vector<double> values;                             // values[i] is the feature names->at(i)
};

struct extractor_options {
  bool measure_plans = false;  // plan FFTW_MEASURE where the shipped wisdom does not apply, instead of
                               // FFTW_ESTIMATE (slower first call per T; the plans, hence the last bits
                               // of the spectral features, then depend on timing: docs/features.md)
  bool avx2 = true;            // run the AVX2 build of the hot loops where the processor has AVX2;
                               // false forces the baseline build. Both give bit-identical features.
};

// CPU reference extractor. It caches FFTW plans per series length and scratch buffers sized to the
// largest array seen, so reuse one extractor per thread (e.g. one per worker channel). Not thread-safe:
// one extract() at a time per object; different objects may run in parallel (FFTW planning is guarded
// by a process-wide mutex).
class extractor {
 public:
  explicit extractor(extractor_options o = {});
  ~extractor();
  extractor(extractor&&) noexcept;
  extractor& operator=(extractor&&) noexcept;

  // One feature vector per realization of `a`, in order, with o.definitions. Errors: invalid_argument
  // (species names), non_finite_input (NaN/Inf in the array, or sums that overflow). Never returns NaN or Inf values.
  result<std::vector<realization_features>> extract(const npy_array& a, const options& o = {});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Convenience: a throwaway extractor (plans FFTs on every call).
result<std::vector<realization_features>> extract(const npy_array& a, const options& o = {});

}  // namespace hio::features
