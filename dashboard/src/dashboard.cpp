#include <hio/dashboard/dashboard.hpp>

#include "embedded.hpp"

namespace hio::dashboard {

namespace {

std::string_view content_type_of(std::string_view path) {
  const auto dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "json") return "application/json";
  if (ext == "md" || ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace

std::optional<asset> find(std::string_view path) {
  if (path.starts_with('/')) path.remove_prefix(1);
  for (std::size_t i = 0; i < detail::file_count; ++i) {
    const auto& f = detail::files[i];
    if (path == f.path)
      return asset{{reinterpret_cast<const char*>(f.data), f.size}, content_type_of(path)};
  }
  return std::nullopt;
}

std::vector<std::string_view> files() {
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < detail::file_count; ++i) out.emplace_back(detail::files[i].path);
  return out;
}

}  // namespace hio::dashboard
