#include <hio/dashboard/dashboard.hpp>

#include <doctest/doctest.h>

#include <regex>
#include <string>

namespace dash = hio::dashboard;

TEST_CASE("the page, its script, style and the vendored chart library are embedded with their types") {
  auto index = dash::find("index.html");
  REQUIRE(index);
  CHECK(index->content_type == "text/html; charset=utf-8");
  CHECK(index->bytes.find("<!doctype html>") == 0);
  auto js = dash::find("/app.js");
  REQUIRE(js);
  CHECK(js->content_type == "text/javascript; charset=utf-8");
  CHECK(js->bytes.find("/v1/history") != std::string_view::npos);
  REQUIRE(dash::find("style.css"));
  CHECK(dash::find("style.css")->content_type == "text/css; charset=utf-8");
  auto lib = dash::find("vendor/chart.umd.min.js");
  REQUIRE(lib);
  CHECK(lib->bytes.size() > 100'000);
  CHECK(lib->bytes.find("Chart") != std::string_view::npos);
  REQUIRE(dash::find("vendor/LICENSE.chart.js.md"));
}

TEST_CASE("every file the page links to is embedded") {
  const std::string html(dash::find("index.html")->bytes);
  const std::regex ref(R"re((?:src|href)="/dashboard/([^"?]+))re");
  int refs = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator(); ++it) {
    ++refs;
    CHECK_MESSAGE(dash::find((*it)[1].str()), (*it)[1].str());
  }
  CHECK(refs >= 3);
}

TEST_CASE("paths that are not embedded files are not found") {
  CHECK_FALSE(dash::find("nope.js"));
  CHECK_FALSE(dash::find("../CMakeLists.txt"));
  CHECK_FALSE(dash::find("vendor"));
  CHECK_FALSE(dash::find(""));
  CHECK(dash::files().size() == 5);
}
