#include <hio/repository/store.hpp>

#include "backends.hpp"

namespace hio::repository {

bool is_postgres(std::string_view store) noexcept {
  // libpq takes a URL or key=value pairs; a directory name rarely holds '=' (and then --data-dir serves).
  return store.starts_with("postgres://") || store.starts_with("postgresql://") ||
         store.find('=') != std::string_view::npos;
}

std::string redacted(std::string_view store) {
  std::string out(store);
  if (out.starts_with("postgres://") || out.starts_with("postgresql://")) {
    // scheme://user:password@host...: the password runs from the first ':' after "//" to the last '@'.
    const auto begin = out.find("//") + 2;
    const auto at = out.rfind('@');
    if (at != std::string::npos && at > begin) {
      const auto colon = out.find(':', begin);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // key=value conninfo, and a URL's ?password= parameter.
  for (std::size_t at = out.find("password="); at != std::string::npos; at = out.find("password=", at + 1)) {
    const auto value = at + 9;
    std::size_t end = value;
    if (end < out.size() && out[end] == '\'') {
      for (++end; end < out.size() && out[end] != '\''; ++end) {
        if (out[end] == '\\') ++end;
      }
      if (end < out.size()) ++end;
    } else {
      while (end < out.size() && out[end] != ' ' && out[end] != '&') ++end;
    }
    out.replace(value, std::min(end, out.size()) - value, "***");
  }
  return out;
}

result<std::unique_ptr<store>> store::open(store_options options) {
  if (options.store.empty()) return detail::open_sqlite(std::move(options));
  if (!is_postgres(options.store)) {
    return make_error(500, "--store must be a postgres:// or postgresql:// URL or a libpq key=value "
                           "conninfo, not '" + redacted(options.store) + "'; a SQLite store is chosen with --data-dir");
  }
  return detail::open_postgres(std::move(options));
}

}  // namespace hio::repository
