// discovery_service against a fake repository served on loopback: pulls only new rows, keeps them in its
// row log across restarts, skips failed records, and publishes knowledge.
#include <hio/common/http.hpp>
#include <hio/common/record.hpp>
#include <hio/discovery/service.hpp>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The two endpoints of the repository the service uses, over records held in memory.
class fake_repository {
 public:
  fake_repository() {
    hio::http::server_options o;
    auto s = hio::http::server::start(io_, o, [this](const hio::http::request& r) { return handle(r); });
    REQUIRE(s.has_value());
    server_ = std::move(*s);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~fake_repository() {
    server_->stop();
    io_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  void add(std::uint64_t id, int a, double value, bool failed = false) {
    std::lock_guard lock(mutex_);
    hio::feature_record r;
    r.tuple_id = id;
    r.cursor = records_.size() + 1;
    r.status = failed ? hio::record_status::failed : hio::record_status::stored;
    r.metadata = R"({"params":{"a":)" + std::to_string(a) + "}}";
    if (!failed) r.features = {{"x", value}, {"y", value * 2 + a}};
    records_.push_back(std::move(r));
  }

  std::uint64_t rows_read() const {
    std::lock_guard lock(mutex_);
    return rows_read_;
  }
  std::vector<json> published() const {
    std::lock_guard lock(mutex_);
    return published_;
  }

 private:
  hio::http::response handle(const hio::http::request& r) {
    std::lock_guard lock(mutex_);
    if (r.path == "/v1/features") {
      const auto after = std::stoull(r.query.at("after"));
      const auto limit = std::stoull(r.query.at("limit"));
      CHECK(r.query.at("format") == "binary");
      std::vector<hio::feature_record> page;
      for (const auto& rec : records_)
        if (rec.cursor > after && page.size() < limit) page.push_back(rec);
      rows_read_ += page.size();
      hio::http::response res;
      res.content_type = "application/octet-stream";
      res.body = hio::encode_records(page);
      return res;
    }
    if (r.path == "/v1/knowledge" && r.method == "POST") {
      if (r.bearer() != "sec") return hio::http::error_response(401, "secret");
      published_.push_back(json::parse(r.body));
      return hio::http::json_response(json{{"version", published_.size()}}.dump());
    }
    return hio::http::error_response(404, "no");
  }

  boost::asio::io_context io_;
  std::unique_ptr<hio::http::server> server_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<hio::feature_record> records_;
  std::uint64_t rows_read_ = 0;
  std::vector<json> published_;
};

struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::atomic<unsigned> n{0};
    path = fs::temp_directory_path() /
           ("hio-discovery-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" +
            std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

hio::discovery::service_options options_for(const fake_repository& repo, const temp_dir& dir) {
  hio::discovery::service_options o;
  o.repository = repo.url();
  o.secret = "sec";
  o.data_dir = dir.path;
  o.page_records = 3;  // several pages per tick
  return o;
}

}  // namespace

TEST_CASE("a tick pulls only rows it has not seen and publishes when something is new") {
  spdlog::set_level(spdlog::level::err);
  fake_repository repo;
  temp_dir dir;
  for (std::uint64_t i = 0; i < 8; ++i) repo.add(i + 1, static_cast<int>(i % 4), i < 4 ? 0.0 : 100.0);
  auto s = hio::discovery::discovery_service::open(options_for(repo, dir));
  REQUIRE(s.has_value());

  auto first = (*s)->tick();
  REQUIRE(first.has_value());
  CHECK(first->pulled == 8);
  CHECK(repo.rows_read() == 8);
  CHECK(first->version == 1);
  REQUIRE(repo.published().size() == 1);
  const auto doc = repo.published()[0];
  CHECK(doc["points"] == 8);
  CHECK(doc["groups"] == 4);
  CHECK(doc["tick"]["pulled"] == 8);
  CHECK(doc.contains("created_at_ms"));

  auto idle = (*s)->tick();
  REQUIRE(idle.has_value());
  CHECK(idle->pulled == 0);
  CHECK(idle->version == 0);
  CHECK(repo.published().size() == 1);

  repo.add(9, 7, 5.0);
  repo.add(10, 7, 5.0, /*failed=*/true);
  auto more = (*s)->tick();
  REQUIRE(more.has_value());
  CHECK(more->pulled == 2);
  CHECK(repo.rows_read() == 10);
  CHECK(more->rows == 9);  // the failed record is not kept
  REQUIRE(repo.published().size() == 2);
  CHECK(repo.published()[1]["points"] == 9);
  CHECK_FALSE(repo.published()[1]["labels"].contains("10"));
}

TEST_CASE("a restarted service resumes from its row log, reads nothing again and publishes") {
  spdlog::set_level(spdlog::level::err);
  fake_repository repo;
  temp_dir dir;
  for (std::uint64_t i = 0; i < 5; ++i) repo.add(i + 1, static_cast<int>(i), static_cast<double>(i));
  {
    auto s = hio::discovery::discovery_service::open(options_for(repo, dir));
    REQUIRE(s.has_value());
    REQUIRE((*s)->tick().has_value());
  }
  // A crash in the middle of an append leaves a torn frame: it is cut off on open.
  {
    std::ofstream out(dir.path / "rows.log", std::ios::app | std::ios::binary);
    out.write("HIOD\x10\x00\x00\x00partial", 15);
  }
  auto s = hio::discovery::discovery_service::open(options_for(repo, dir));
  REQUIRE(s.has_value());
  CHECK((*s)->cursor() == 5);
  auto t = (*s)->tick();
  REQUIRE(t.has_value());
  CHECK(t->pulled == 0);
  CHECK(t->rows == 5);
  CHECK(repo.rows_read() == 5);
  REQUIRE(repo.published().size() == 2);
  CHECK(repo.published()[1]["points"] == 5);
}

TEST_CASE("a tick fails with a clear error when the repository is unreachable or refuses") {
  spdlog::set_level(spdlog::level::err);
  temp_dir dir;
  std::string url;
  {
    fake_repository gone;
    url = gone.url();
  }
  hio::discovery::service_options o;
  o.repository = url;
  o.data_dir = dir.path;
  auto s = hio::discovery::discovery_service::open(o);
  REQUIRE(s.has_value());
  auto t = (*s)->tick();
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().message.find("unreachable") != std::string::npos);

  fake_repository repo;
  repo.add(1, 1, 1.0);
  auto wrong = options_for(repo, dir);
  wrong.secret = "wrong";
  auto s2 = hio::discovery::discovery_service::open(wrong);
  REQUIRE(s2.has_value());
  auto refused = (*s2)->tick();
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("401") != std::string::npos);
}
