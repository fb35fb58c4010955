#include "fake_master.hpp"

#include <hio/common/hash.hpp>
#include <hio_connector.h>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

struct callback_tally {
  std::atomic<int> ok{0};
  std::atomic<int> errors{0};
  std::atomic<std::uint64_t> id_sum{0};
};

void on_done(void* user, int code, const hio_send_result* r, const char*) {
  auto* t = static_cast<callback_tally*>(user);
  if (code == HIO_OK && r->status == HIO_STATUS_STORED) {
    ++t->ok;
    t->id_sum += r->tuple_id;
  } else {
    ++t->errors;
  }
}

}  // namespace

TEST_CASE("the C ABI sends synchronously and asynchronously and counts results in flush") {
  hio::test::fake_master m;
  hio_client* c = hio_client_new(m.url().c_str(), "c-source");
  REQUIRE(c != nullptr);
  CHECK(hio_client_set_option(c, "session_tuples", "8") == HIO_OK);
  CHECK(hio_client_set_option(c, "max_attempts", "4") == HIO_OK);
  CHECK(hio_client_set_option(c, "bogus", "1") == HIO_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hio_last_error()).find("unknown option 'bogus'") != std::string::npos);
  CHECK(hio_client_set_option(c, "max_attempts", "-3") == HIO_ERR_INVALID_ARGUMENT);

  const char data[] = "hello from C";
  hio_send_result r;
  REQUIRE(hio_send(c, data, sizeof data - 1, "{\"step\": 1}", &r) == HIO_OK);
  CHECK(r.status == HIO_STATUS_STORED);
  CHECK(r.tuple_id == 1000);
  CHECK(r.attempts == 1);
  CHECK(r.reason[0] == '\0');
  CHECK(hio_client_set_option(c, "session_tuples", "16") == HIO_ERR_INVALID_ARGUMENT);

  callback_tally tally;
  std::vector<std::string> buffers;
  for (int i = 0; i < 20; ++i) buffers.push_back("async tuple " + std::to_string(i));
  for (int i = 0; i < 20; ++i) {
    const int flags = i % 2 ? HIO_SEND_COPY : 0;
    REQUIRE(hio_send_async(c, buffers[i].data(), buffers[i].size(), nullptr, flags, on_done, &tally) == HIO_OK);
  }
  REQUIRE(hio_send_async(c, "no callback", 11, nullptr, HIO_SEND_COPY, nullptr, nullptr) == HIO_OK);
  hio_flush_counts counts;
  REQUIRE(hio_flush(c, 10000, &counts) == HIO_OK);
  CHECK(counts.stored == 21);
  CHECK(counts.errors == 0);
  CHECK(tally.ok == 20);
  CHECK(tally.errors == 0);
  REQUIRE(hio_flush(c, 10000, &counts) == HIO_OK);
  CHECK(counts.stored == 0);

  CHECK(hio_send(c, data, 3, "[not an object]", &r) == HIO_ERR_INVALID_ARGUMENT);
  CHECK(std::string(hio_last_error()).find("JSON object") != std::string::npos);
  CHECK(hio_send(nullptr, data, 3, nullptr, nullptr) == HIO_ERR_INVALID_ARGUMENT);
  hio_client_free(c);
  hio_client_free(nullptr);

  std::lock_guard lk(m.handler.mu);
  CHECK(m.handler.durable.size() == 22);
  CHECK(nlohmann::json::parse(m.handler.durable[1000].metadata)["source"] == "c-source");
}

TEST_CASE("hio_send_many sends a batch in one call: a result and a code per tuple, in order, and totals") {
  hio::test::fake_master m;
  hio_client* c = hio_client_new(m.url().c_str(), "c-batch");
  REQUIRE(c != nullptr);
  CHECK(hio_client_set_option(c, "session_tuples", "8") == HIO_OK);
  constexpr std::size_t n = 50;
  std::vector<std::string> buffers;
  std::vector<const void*> data;
  std::vector<std::size_t> lens;
  std::vector<const char*> metadata;
  for (std::size_t i = 0; i < n; ++i) buffers.push_back("batch tuple " + std::to_string(i));
  for (std::size_t i = 0; i < n; ++i) {
    data.push_back(buffers[i].data());
    lens.push_back(buffers[i].size());
    metadata.push_back(i == 7 ? "[not an object]" : i % 2 ? "{\"odd\": true}" : nullptr);
  }
  std::vector<hio_send_result> results(n);
  std::vector<int32_t> codes(n, -1);
  hio_flush_counts counts{};
  CHECK(hio_send_many(c, n, data.data(), lens.data(), metadata.data(), results.data(), codes.data(), &counts) ==
        HIO_ERR_INVALID_ARGUMENT);  // the first error: tuple 7's metadata
  CHECK(counts.stored == n - 1);
  CHECK(counts.errors == 1);
  CHECK(codes[7] == HIO_ERR_INVALID_ARGUMENT);
  CHECK(std::string(results[7].reason).find("JSON object") != std::string::npos);
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 7) continue;
    CHECK(codes[i] == HIO_OK);
    CHECK(results[i].status == HIO_STATUS_STORED);
    CHECK(results[i].tuple_id > last);  // ids in the order of the items
    last = results[i].tuple_id;
  }
  CHECK(hio_send_many(c, 0, nullptr, nullptr, nullptr, nullptr, nullptr, &counts) == HIO_OK);
  CHECK(hio_send_many(c, 2, nullptr, lens.data(), nullptr, results.data(), codes.data(), nullptr) ==
        HIO_ERR_INVALID_ARGUMENT);
  hio_client_free(c);
  std::lock_guard lk(m.handler.mu);
  CHECK(m.handler.durable.size() == n - 1);
  CHECK(nlohmann::json::parse(m.handler.durable[results[1].tuple_id].metadata)["odd"] == true);
}

TEST_CASE("hio_send_many_parts sends each tuple as its head followed by its data") {
  hio::test::fake_master m;
  hio_client* c = hio_client_new(m.url().c_str(), "c-parts");
  REQUIRE(c != nullptr);
  const std::string heads[3] = {"head-0:", "", "head-2:"};
  const std::string bodies[3] = {"first body", "second, without a head", ""};
  const void* head_ptrs[3] = {heads[0].data(), nullptr, heads[2].data()};
  const std::size_t head_lens[3] = {heads[0].size(), 0, heads[2].size()};
  const void* body_ptrs[3] = {bodies[0].data(), bodies[1].data(), bodies[2].data()};
  const std::size_t body_lens[3] = {bodies[0].size(), bodies[1].size(), 0};
  hio_send_result results[3];
  int32_t codes[3];
  hio_flush_counts counts{};
  CHECK(hio_send_many_parts(c, 3, head_ptrs, head_lens, body_ptrs, body_lens, nullptr, results, codes, &counts) ==
        HIO_OK);
  CHECK(counts.stored == 3);
  const void* bad_heads[1] = {nullptr};
  const std::size_t bad_lens[1] = {4};
  CHECK(hio_send_many_parts(c, 1, bad_heads, bad_lens, body_ptrs, body_lens, nullptr, results, codes, nullptr) ==
        HIO_ERR_INVALID_ARGUMENT);  // a NULL head with a length
  CHECK(hio_send_many_parts(c, 1, head_ptrs, nullptr, body_ptrs, body_lens, nullptr, results, codes, nullptr) ==
        HIO_ERR_INVALID_ARGUMENT);  // heads without their lengths
  hio_client_free(c);
  std::lock_guard lk(m.handler.mu);
  for (int i = 0; i < 3; ++i) {
    const std::string whole = heads[i] + bodies[i];
    const auto& t = m.handler.durable[results[i].tuple_id];
    CHECK(t.size == whole.size());
    CHECK(t.xxh3 == hio::xxh3_64(std::string_view(whole)));
  }
}

TEST_CASE("the C ABI reports a refused lease with its code and the master's message") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.mu);
    m.required_token = "t0ken";
  }
  hio_client* c = hio_client_new(m.url().c_str(), "c-source");
  REQUIRE(c != nullptr);
  hio_send_result r;
  CHECK(hio_send(c, "x", 1, nullptr, &r) == HIO_ERR_LEASE_REFUSED);
  CHECK(std::string(hio_last_error()).find("bad source token") != std::string::npos);
  hio_client_free(c);

  c = hio_client_new(m.url().c_str(), "c-source");
  REQUIRE(hio_client_set_option(c, "token", "t0ken") == HIO_OK);
  CHECK(hio_send(c, "x", 1, nullptr, &r) == HIO_OK);
  // Asynchronous errors are reported by the next flush.
  hio_client_free(c);

  CHECK(hio_client_new(nullptr, "x") == nullptr);
  CHECK(std::string(hio_last_error()).find("master_url") != std::string::npos);
}

TEST_CASE("asynchronous errors are counted and returned by hio_flush") {
  hio::test::fake_master m;
  {
    std::lock_guard lk(m.mu);
    m.required_token = "needed";
  }
  hio_client* c = hio_client_new(m.url().c_str(), "c-source");
  REQUIRE(c != nullptr);
  for (int i = 0; i < 3; ++i) REQUIRE(hio_send_async(c, "abc", 3, nullptr, HIO_SEND_COPY, nullptr, nullptr) == HIO_OK);
  hio_flush_counts counts;
  CHECK(hio_flush(c, 10000, &counts) == HIO_ERR_LEASE_REFUSED);
  CHECK(counts.errors == 3);
  CHECK(std::string(hio_last_error()).find("401") != std::string::npos);
  CHECK(hio_flush(c, 10000, &counts) == HIO_OK);
  hio_client_free(c);
}

#if defined(HIO_CONNECTOR_LIB) && defined(HIO_CONNECTOR_PYTHON_DIR) && defined(HIO_CONNECTOR_TEST_DIR)
TEST_CASE("the Python package sends bytes and NumPy arrays through libhio_connector.so") {
  const std::filesystem::path python = "/usr/bin/python3";
  const std::filesystem::path script = std::string(HIO_CONNECTOR_TEST_DIR) + "/python_connector_test.py";
  if (!std::filesystem::exists(python) || !std::filesystem::exists(HIO_CONNECTOR_LIB)) {
    MESSAGE("skipped: /usr/bin/python3 or " HIO_CONNECTOR_LIB " is missing");
    return;
  }
  hio::test::fake_master m;
  // The script writes there, per NumPy tuple, the .npy bytes numpy itself would write for the array.
  const auto expect = std::filesystem::temp_directory_path() / ("hio-npy-" + std::to_string(::getpid()));
  std::filesystem::create_directories(expect);
  const std::string command = "HIO_TEST_MASTER='" + m.url() + "' HIO_CONNECTOR_LIB='" HIO_CONNECTOR_LIB
                              "' HIO_TEST_EXPECT_DIR='" + expect.string() + "' PYTHONPATH='" HIO_CONNECTOR_PYTHON_DIR
                              "' timeout 120 " + python.string() + " '" + script.string() + "'";
  const int status = std::system(command.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::lock_guard lk(m.handler.mu);
  std::size_t compared = 0;
  for (const auto& f : std::filesystem::directory_iterator(expect)) {
    std::ifstream in(f.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto& t = m.handler.durable[std::stoull(f.path().filename().string())];
    CAPTURE(f.path().filename().string());
    CHECK(t.size == bytes.size());
    CHECK(t.xxh3 == hio::xxh3_64(std::string_view(bytes)));
    ++compared;
  }
  std::filesystem::remove_all(expect);
  CHECK(compared == 13);
  int npy = 0;
  for (auto& [id, t] : m.handler.durable) {
    CHECK(t.stored == 1);
    if (t.head.rfind("\x93NUMPY", 0) == 0) ++npy;
    CHECK(nlohmann::json::parse(t.metadata)["source"] == "python-test");
  }
  CHECK(m.handler.durable.size() >= 10);
  CHECK(npy >= 1);
}
#endif
