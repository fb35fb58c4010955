#pragma once
// The live dashboard hio-master serves at `/`: its HTML, script, style and the vendored charting library,
// embedded into the binary at build time (dashboard/embed.cmake), so the page works with no network and
// no files beside the executable. The bytes are static: they live as long as the program. Thread-safe.

#include <optional>
#include <string_view>
#include <vector>

namespace hio::dashboard {

struct asset {
  std::string_view bytes;         // the file's content
  std::string_view content_type;  // e.g. "text/html; charset=utf-8"
};

// The file at `path` relative to dashboard/ ("index.html", "app.js", "vendor/chart.umd.min.js"); a
// leading '/' is ignored. nullopt for anything that is not one of the embedded files.
std::optional<asset> find(std::string_view path);

// The relative paths of every embedded file.
std::vector<std::string_view> files();

}  // namespace hio::dashboard
