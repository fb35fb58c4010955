#include <hio/features/features.hpp>

#include "detail/layout.hpp"

#include <algorithm>
#include <cctype>

namespace hio::features {

namespace {

// "s0", "s1", ... or the given names, checked.
result<std::vector<std::string>> species_prefixes(std::size_t species, const options& o) {
  std::vector<std::string> prefix;
  if (o.species_names.empty()) {
    // Appended, not "s" + to_string(s): g++ 12 at -O3 warns falsely (-Wrestrict) on that operator+.
    for (std::size_t s = 0; s < species; ++s) prefix.push_back(std::string("s").append(std::to_string(s)));
    return prefix;
  }
  if (o.species_names.size() != species)
    return make_error(errc::invalid_argument, std::to_string(o.species_names.size()) + " species names given for " +
                                                  std::to_string(species) + " species");
  for (const auto& name : o.species_names) {
    const bool bad_char = std::any_of(name.begin(), name.end(), [](char c) {
      return c == '.' || std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c));
    });
    if (name.empty() || bad_char)
      return make_error(errc::invalid_argument, "species name '" + name + "' must be non-empty, without '.' or whitespace");
    if (std::count(o.species_names.begin(), o.species_names.end(), name) > 1)
      return make_error(errc::invalid_argument, "species name '" + name + "' appears twice");
    prefix.push_back(name);
  }
  return prefix;
}

constexpr const char* summaries[] = {"norm", "mean", "var"};

std::vector<std::string> hio_names(const std::vector<std::string>& prefix, bool with_spectral) {
  static constexpr const char* head[] = {"mean_sm",   "burstiness_sm", "burstiness_smt", "skew_sm",     "cv_sm",
                                         "cv_smt",    "acf_norm_sm",   "fft_norm_sm",    "fft_norm_smt"};
  static constexpr const char* stats[] = {"burstiness", "skew", "cv"};
  static constexpr const char* spectral[] = {"spec.period_mean", "spec.period_std", "spec.share_mean",
                                             "spec.peaked_fraction"};
  static constexpr const char* pair[] = {"corr_sm", "per_timepoint.corr_norm", "per_timepoint.corr_var",
                                         "per_voxel.corr_norm", "per_voxel.corr_var"};
  const std::size_t species = prefix.size();
  std::vector<std::string> names;
  names.reserve(feature_count(species, with_spectral));
  for (std::size_t s = 0; s < species; ++s) {
    const std::string p = prefix[s] + ".";
    for (const char* h : head) names.push_back(p + h);
    for (const char* list : {"per_timepoint.", "per_voxel."})
      for (const char* stat : stats)
        for (const char* summary : summaries) names.push_back(p + list + stat + "_" + summary);
    if (with_spectral)
      for (const char* f : spectral) names.push_back(p + f);
  }
  for (std::size_t s = 0; s < species; ++s)
    for (std::size_t u = s + 1; u < species; ++u)
      for (const char* f : pair) names.push_back(prefix[s] + "_" + prefix[u] + "." + f);
  return names;
}

// The order in which HarmonicPE's g2 appends its features (docs/features.md, "features:harmonicpe"):
// first each species' 9 totals followed by its correlations of Sm with every later species; then, per
// species, its per-timepoint and per-voxel correlations with every later species, followed by its 18
// list summaries, the lists interleaved timepoint, voxel.
std::vector<std::string> harmonicpe_names(const std::vector<std::string>& prefix) {
  static constexpr const char* head[] = {"mean_sm", "burstiness_sm",   "burstiness_smt", "hpe_skew_sm", "cv_sm",
                                         "cv_smt",  "hpe_acf_norm_sm", "fft_norm_sm",    "fft_norm_smt"};
  static constexpr const char* pair[] = {"per_timepoint.corr_norm", "per_voxel.corr_norm", "per_timepoint.corr_var",
                                         "per_voxel.corr_var"};
  static constexpr const char* lists[] = {"per_timepoint.burstiness", "per_voxel.burstiness", "per_timepoint.hpe_skew",
                                          "per_voxel.hpe_skew",       "per_timepoint.cv",     "per_voxel.cv"};
  const std::size_t species = prefix.size();
  std::vector<std::string> names;
  names.reserve(feature_count(species, false));
  for (std::size_t s = 0; s < species; ++s) {
    for (const char* h : head) names.push_back(prefix[s] + "." + h);
    for (std::size_t u = s + 1; u < species; ++u) names.push_back(prefix[s] + "_" + prefix[u] + ".corr_sm");
  }
  for (std::size_t s = 0; s < species; ++s) {
    for (std::size_t u = s + 1; u < species; ++u)
      for (const char* f : pair) names.push_back(prefix[s] + "_" + prefix[u] + "." + f);
    for (const char* list : lists)
      for (const char* summary : summaries) names.push_back(prefix[s] + "." + list + "_" + summary);
  }
  return names;
}

}  // namespace

std::size_t feature_count(std::size_t species, bool spectral) noexcept {
  return detail::layout{species, spectral}.total();
}

std::size_t feature_count(std::size_t species, const options& o) noexcept {
  return feature_count(species, o.definitions == feature_definitions::hio && o.spectral);
}

result<std::vector<std::string>> feature_names(std::size_t species, const options& o) {
  auto prefix = species_prefixes(species, o);
  if (!prefix) return prefix.error();
  if (o.definitions == feature_definitions::harmonicpe) return harmonicpe_names(*prefix);
  return hio_names(*prefix, o.spectral);
}

}  // namespace hio::features
