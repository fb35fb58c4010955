#include "features_processor.hpp"

#include <hio/common/json.hpp>
#include <hio/common/log.hpp>
#include <hio/features/features.hpp>
#include <hio/features/gpu.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <utility>

namespace hio::worker::detail {

namespace {

// Species names from the tuple's metadata ({"species": ["mRNA", "protein"]}); none when absent or malformed.
std::vector<std::string> species_names(std::string_view metadata) {
  if (metadata.empty()) return {};
  auto j = hio::parse_json_or_discarded(metadata);
  if (j.is_discarded() || !j.is_object() || !j.contains("species") || !j["species"].is_array()) return {};
  std::vector<std::string> names;
  for (const auto& s : j["species"]) {
    if (!s.is_string()) return {};
    names.push_back(s.get<std::string>());
  }
  return names;
}

// The preview the dashboard plots: each species' series summed over voxels (Sm) of the first realization,
// at no more than `points` evenly spaced timepoints. Reads points x voxels elements, not the whole array.
std::vector<named_series> summed_series(const features::npy_array& a, const std::vector<std::string>& names,
                                        std::size_t points = 256) {
  std::vector<named_series> out;
  const std::size_t stride = (a.timepoints + points - 1) / points;
  for (std::size_t s = 0; s < a.species; ++s) {
    named_series series;
    series.name = s < names.size() ? names[s] : "species " + std::to_string(s);
    for (std::size_t t = 0; t < a.timepoints; t += stride) {
      double sum = 0;
      for (std::size_t v = 0; v < a.voxels; ++v) sum += a.at(0, s, t, v);
      series.values.push_back(static_cast<float>(sum));
    }
    out.push_back(std::move(series));
  }
  return out;
}

class features_processor : public processor {
 public:
  features_processor(std::string spec, std::unique_ptr<features::gpu_extractor> gpu, std::string device,
                     features::feature_definitions definitions = features::feature_definitions::hio)
      : spec_(std::move(spec)), gpu_(std::move(gpu)), device_(std::move(device)), definitions_(definitions) {}

  result<std::vector<feature>> process(const received_tuple& t) override {
    auto array = features::parse_npy(t.payload);
    if (!array) return make_error(400, "not a usable .npy realization: " + array.error().message);
    features::options o;
    o.definitions = definitions_;
    o.species_names = species_names(t.metadata);
    if (!o.species_names.empty() && o.species_names.size() != array->species)
      o.species_names.clear();  // names that do not match the array are ignored, not fatal
    auto extracted = gpu_ ? gpu_->extract(*array, o) : cpu_.extract(*array, o);
    if (!extracted) return make_error(400, "feature extraction failed: " + extracted.error().message);
    series_ = summed_series(*array, o.species_names);
    std::vector<feature> out;
    const bool prefix = extracted->size() > 1;
    for (std::size_t r = 0; r < extracted->size(); ++r) {
      const auto& rf = (*extracted)[r];
      const std::string p = prefix ? "r" + std::to_string(r) + "." : "";
      for (std::size_t i = 0; i < rf.values.size(); ++i) out.push_back({p + rf.names->at(i), rf.values[i]});
    }
    return out;
  }
  std::vector<named_series> take_series() override { return std::exchange(series_, {}); }
  std::string name() const override { return spec_; }
  std::string device() const override { return device_; }

 private:
  std::vector<named_series> series_;
  std::string spec_;
  std::unique_ptr<features::gpu_extractor> gpu_;
  std::string device_;
  features::feature_definitions definitions_;
  features::extractor cpu_;
};

}  // namespace

result<std::unique_ptr<processor>> make_features_processor(std::string_view arg, const processor_options& options) {
  const std::string spec = arg.empty() ? "features" : "features:" + std::string(arg);
  if (!arg.empty() && arg != "gpu" && arg != "cpu" && arg != "harmonicpe")
    return make_error(400, "features takes no argument, or :gpu, :cpu or :harmonicpe (got '" + std::string(arg) + "')");
  if (arg == "cpu") return std::unique_ptr<processor>(new features_processor(spec, nullptr, "cpu"));
  if (arg == "harmonicpe") {
    static std::atomic<bool> logged{false};
    if (!logged.exchange(true))
      spdlog::info("channel {}: features:harmonicpe (the original HarmonicPE definitions) runs on the CPU: the GPU "
                   "kernels implement only the default feature set",
                   options.channel);
    return std::unique_ptr<processor>(
        new features_processor(spec, nullptr, "cpu", features::feature_definitions::harmonicpe));
  }
  auto gpu = features::gpu_extractor::create();
  if (!gpu) {
    if (arg == "gpu") return make_error(400, "features:gpu needs a CUDA device: " + gpu.error().message);
    spdlog::warn("channel {}: features on the CPU: {}", options.channel, gpu.error().message);
    return std::unique_ptr<processor>(new features_processor(spec, nullptr, "cpu"));
  }
  const std::string device = "cuda:0";
  spdlog::info("channel {}: features on {} ({})", options.channel, device, (*gpu)->device_name());
  return std::unique_ptr<processor>(new features_processor(spec, std::move(*gpu), device));
}

}  // namespace hio::worker::detail
