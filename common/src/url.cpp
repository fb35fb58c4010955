#include <hio/common/http.hpp>

#include <boost/url/parse.hpp>

#include <string>

namespace hio::http {

result<url_parts> parse_url(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return make_error(0, "URL '" + std::string(url) + "' " + std::string(why) + " (expected http://host:port)");
  };
  // "host:port" alone would read as scheme "host"; a URL names its scheme before "://".
  const std::string text = url.find("://") == std::string_view::npos ? "http://" + std::string(url) : std::string(url);
  const auto u = boost::urls::parse_uri(text);
  if (!u) return bad("is not a URL: " + u.error().message());
  if (u->scheme_id() != boost::urls::scheme::http) return bad("is not http:// (hio's REST ports speak plain HTTP)");
  if (u->has_userinfo()) return bad("holds a user name or password (sources authenticate with a token)");
  if (u->host_type() == boost::urls::host_type::none || u->encoded_host().empty()) return bad("has no host");
  if (!u->has_port() || u->port().empty()) return bad("has no port");
  // Boost.URL 1.81 reads "h:80x" as port 80 and path "x"; after an authority a path starts with '/'.
  if (const auto path = u->encoded_path(); !path.empty() && path.front() != '/')
    return bad("is not a URL: junk after the port");
  const auto port = u->port_number();  // 0 when it does not fit 16 bits
  if (port == 0) return bad("has an invalid port");
  return url_parts{u->host_address(), port};
}

}  // namespace hio::http
