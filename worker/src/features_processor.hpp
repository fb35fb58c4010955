#pragma once

#include <hio/worker/processor.hpp>

namespace hio::worker::detail {

// The built-in `features` processor (docs/features.md): `features` uses the GPU when one is usable and
// says so, else the CPU; `features:gpu` refuses to start without a GPU; `features:cpu` never uses one;
// `features:harmonicpe` computes the original HarmonicPE definitions, always on the CPU (logged once per
// process). Error (400) for any other argument, listing the valid ones.
result<std::unique_ptr<processor>> make_features_processor(std::string_view arg, const processor_options& options);

}  // namespace hio::worker::detail
