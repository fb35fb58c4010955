// The out-of-process processors (exec:, plugin:) and their supervision, with real child processes: the
// example processors (examples/exec_stats.py, libhio_example_plugin.so via hio-plugin-host) and small
// shell scripts that misbehave.
#include <hio/common/hash.hpp>
#include <hio/common/wire.hpp>
#include <hio/worker/channel.hpp>
#include <hio/worker/isolated_processor.hpp>
#include <hio/worker/processor.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

using namespace hio;
using namespace hio::worker;
namespace fs = std::filesystem;

namespace {

const std::string python = "/usr/bin/python3";

fs::path source_root() { return fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path(); }
fs::path exec_stats() { return source_root() / "examples" / "exec_stats.py"; }
fs::path build_dir() { return fs::read_symlink("/proc/self/exe").parent_path().parent_path(); }
fs::path example_plugin() { return build_dir() / "lib" / "libhio_example_plugin.so"; }

bool have_python() {
  const bool ok = access(python.c_str(), X_OK) == 0 && fs::exists(exec_stats());
  if (!ok) MESSAGE("skipped: no " << python << " or no " << exec_stats());
  return ok;
}
bool have_plugin() {
  const bool ok = fs::exists(example_plugin()) && fs::exists(build_dir() / "bin" / "hio-plugin-host");
  if (!ok) MESSAGE("skipped: no " << example_plugin() << " (built with the worker)");
  return ok;
}

struct tuple_bytes {
  std::vector<std::byte> payload;
  std::string metadata;
  received_tuple view(std::uint64_t id) const {
    received_tuple t;
    t.tuple_id = id;
    t.metadata = metadata;
    t.payload = payload;
    t.xxh3 = xxh3_64(std::span<const std::byte>(payload));
    t.wire_bytes = payload.size();
    return t;
  }
};

tuple_bytes bytes_tuple(std::initializer_list<int> values, std::string metadata = {}) {
  tuple_bytes t;
  for (int v : values) t.payload.push_back(static_cast<std::byte>(v));
  t.metadata = std::move(metadata);
  return t;
}

double feature_value(const std::vector<feature>& fs, const std::string& name) {
  for (const auto& f : fs) {
    if (f.name == name) return f.value;
  }
  FAIL("no feature " << name);
  return 0;
}

std::unique_ptr<isolated_processor> isolated(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                                             std::uint32_t retries = 2) {
  isolated_processor_options o;
  o.argv = std::move(argv);
  o.name = "test";
  o.timeout = timeout;
  o.retries = retries;
  auto p = isolated_processor::create(std::move(o));
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message));
  return std::move(*p);
}

std::unique_ptr<isolated_processor> python_stats(std::chrono::milliseconds timeout = std::chrono::seconds(20),
                                                 std::uint32_t retries = 2) {
  return isolated({python, exec_stats().string()}, timeout, retries);
}

std::string reason_of(const result<std::vector<feature>>& r) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == static_cast<int>(wire::error_code::internal));
  return r.error().message;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("an exec processor is started once and reused for every tuple") {
  if (!have_python()) return;  // no /usr/bin/python3 here: nothing to run the example with
  auto p = python_stats();
  CHECK(p->starts() == 0);
  for (int i = 1; i <= 40; ++i) {
    const auto t = bytes_tuple({i, 2 * i, 3 * i}, i % 2 == 0 ? R"({"source":"s","k":1})" : "");
    auto r = p->process(t.view(static_cast<std::uint64_t>(100 + i)));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    CHECK(feature_value(*r, "bytes") == 3);
    CHECK(feature_value(*r, "mean_byte") == doctest::Approx(2.0 * i));
    CHECK(feature_value(*r, "calls") == i);  // the same process saw every tuple
  }
  CHECK(p->starts() == 1);
  CHECK(p->restarts() == 0);
}

TEST_CASE("an exec processor gets MB payloads intact, in both directions of a busy pipe") {
  if (!have_python()) return;
  auto p = python_stats();
  tuple_bytes t;
  t.payload.resize(9 << 20);
  std::mt19937 rng(7);
  std::uint64_t sum = 0;
  for (auto& b : t.payload) {
    b = static_cast<std::byte>(rng() & 0xff);
    sum += std::to_integer<std::uint64_t>(b);
  }
  for (std::uint64_t id = 1; id <= 3; ++id) {
    auto r = p->process(t.view(id));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    CHECK(feature_value(*r, "bytes") == static_cast<double>(t.payload.size()));
    CHECK(feature_value(*r, "mean_byte") ==
          doctest::Approx(static_cast<double>(sum) / static_cast<double>(t.payload.size())));
  }
  CHECK(p->starts() == 1);
}

TEST_CASE("a crashing processor is restarted and the tuple retried, then failed with the signal in the reason") {
  if (!have_python()) return;
  auto p = python_stats();
  auto r = p->process(bytes_tuple({1}, R"({"crash": true})").view(5));
  CHECK(reason_of(r) == "processor crashed (signal 11) 3 times");
  CHECK(p->starts() == 3);
  CHECK(p->restarts() == 2);
  // The next tuple gets a fresh process and succeeds.
  auto good = p->process(bytes_tuple({4, 6}).view(6));
  REQUIRE(good.has_value());
  CHECK(feature_value(*good, "calls") == 1);
  CHECK(p->starts() == 4);
  CHECK(p->restarts() == 3);
}

TEST_CASE("a processor that hangs past the deadline is killed, retried, then the tuple fails as timed out") {
  if (!have_python()) return;
  auto p = python_stats(std::chrono::milliseconds(400), /*retries=*/1);
  REQUIRE(p->process(bytes_tuple({1}).view(1)).has_value());  // warm: the deadline is not spent on startup
  const auto t0 = std::chrono::steady_clock::now();
  auto r = p->process(bytes_tuple({1}, R"({"hang": true})").view(2));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(reason_of(r) == "processor timed out after 400 ms 2 times");
  CHECK(took >= std::chrono::milliseconds(800));
  CHECK(took < std::chrono::seconds(5));
  CHECK(p->restarts() == 1);  // the retry ran in a new process
  REQUIRE(p->process(bytes_tuple({1}).view(3)).has_value());
  CHECK(p->restarts() == 2);  // ... and so does the next tuple
}

TEST_CASE("a processor that writes garbage is killed and retried, and the reason says what it wrote") {
  if (!have_python()) return;
  auto p = python_stats(std::chrono::seconds(20), /*retries=*/0);
  auto r = p->process(bytes_tuple({1}, R"({"garbage": true})").view(8));
  const auto reason = reason_of(r);
  CHECK(contains(reason, "processor returned garbage"));
  CHECK(contains(reason, "this is not a"));
  CHECK(contains(reason, "1 time"));
  REQUIRE(p->process(bytes_tuple({1}).view(9)).has_value());
  CHECK(p->starts() == 2);
}

TEST_CASE("a failed verdict fails the tuple at once, with the processor's reason and no restart") {
  if (!have_python()) return;
  auto p = python_stats();
  auto r = p->process(bytes_tuple({1}, R"({"fail": true})").view(1));
  CHECK(reason_of(r) == "asked to fail by the tuple's metadata");
  REQUIRE(p->process(bytes_tuple({1}).view(2)).has_value());
  CHECK(p->starts() == 1);
  CHECK(p->restarts() == 0);
}

TEST_CASE("a processor that exits at once fails the tuple with its status and its last stderr line") {
  auto p = isolated({"/bin/sh", "-c", "echo 'No module named numpy' >&2; exit 3"}, std::chrono::seconds(10));
  auto r = p->process(bytes_tuple({1, 2, 3}).view(1));
  CHECK(reason_of(r) == "processor exited with status 3 3 times; its last stderr line: No module named numpy");
  CHECK(p->starts() == 3);
}

TEST_CASE("a processor that exits without reading its input costs the worker no SIGPIPE") {
  auto p = isolated({"/bin/sh", "-c", "exit 4"}, std::chrono::seconds(10), /*retries=*/1);
  tuple_bytes t;
  t.payload.resize(8 << 20);  // the write outlives the child: EPIPE
  CHECK(reason_of(p->process(t.view(1))) == "processor exited with status 4 2 times");
}

TEST_CASE("a processor sees HIO_CHANNEL and HIO_WORKER but not the cluster secret") {
  const auto script = fs::temp_directory_path() / ("hio-env-check-" + std::to_string(getpid()) + ".sh");
  std::ofstream(script) << "[ -z \"$HIO_SECRET\" ] && [ \"$HIO_CHANNEL\" = 3 ] && [ \"$HIO_WORKER\" = w9 ] && exit 7\n"
                           "exit 1\n";
  setenv("HIO_SECRET", "do-not-leak", 1);
  processor_options o;
  o.channel = 3;
  o.worker_id = "w9";
  auto made = make_processor("exec:/bin/sh " + script.string(), o);
  unsetenv("HIO_SECRET");
  REQUIRE(made.has_value());
  auto r = (*made)->process(bytes_tuple({1}).view(1));
  CHECK(reason_of(r) == "processor exited with status 7 3 times");
  fs::remove(script);
}

TEST_CASE("a response for another tuple is garbage") {
  // Reads the 24-byte request header and 1-byte payload, answers for tuple 0 instead of 1.
  const std::string script =
      "head -c 25 >/dev/null; printf 'HIOR\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000"
      "\\000\\000\\000\\000\\000\\000\\000\\000'; sleep 30";
  auto p = isolated({"/bin/sh", "-c", script}, std::chrono::seconds(10), /*retries=*/0);
  auto r = p->process(bytes_tuple({1}).view(1));
  CHECK(contains(reason_of(r), "a response for tuple 0 to a request for tuple 1"));
}

TEST_CASE("a processor that ignores its input is killed at the deadline even while the request is being written") {
  auto p = isolated({"/bin/sh", "-c", "exec sleep 30"}, std::chrono::milliseconds(300), /*retries=*/0);
  tuple_bytes t;
  t.payload.resize(8 << 20);  // far more than a pipe holds
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(reason_of(p->process(t.view(1))) == "processor timed out after 300 ms 1 time");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("a processor that exits between tuples is replaced without failing the next tuple") {
  if (!have_python()) return;
  // Answers one request with no features, then exits.
  const std::string script =
      "import struct,sys\n"
      "h=sys.stdin.buffer.read(24); _,i,m,n=struct.unpack('<4sQIQ',h); sys.stdin.buffer.read(m+n)\n"
      "sys.stdout.buffer.write(struct.pack('<4sIQII',b'HIOR',0,i,0,0)); sys.stdout.flush()\n";
  auto p = isolated({python, "-c", script}, std::chrono::seconds(10), /*retries=*/0);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    auto r = p->process(bytes_tuple({1}).view(id));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    usleep(200'000);  // let it exit
  }
  CHECK(p->starts() == 3);
}

TEST_CASE("a command that does not exist is refused when the processor is made") {
  auto missing = isolated_processor::create({{"/nonexistent/processor"}});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == 400);
  CHECK_FALSE(isolated_processor::create({{"hio-no-such-command-anywhere"}}).has_value());
  CHECK_FALSE(isolated_processor::create({}).has_value());
  CHECK_FALSE(make_processor("exec:").has_value());
  CHECK_FALSE(make_processor("exec:   ").has_value());
  CHECK_FALSE(make_processor("plugin:").has_value());
  auto p = make_processor("plugin:/nonexistent/libx.so");
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == 400);
  CHECK(contains(p.error().message, "no such file"));
}

TEST_CASE("exec: splits its command on spaces and names itself by the spec") {
  auto p = make_processor("exec:/bin/sh   -c  true", processor_options{});
  REQUIRE(p.has_value());
  CHECK((*p)->name() == "exec:/bin/sh   -c  true");
  CHECK((*p)->restarts() == 0);
}

TEST_CASE("a plugin runs in hio-plugin-host: reused across tuples, its crashes and hangs isolated and retried") {
  if (!have_plugin()) return;  // built with the examples
  processor_options o;
  o.process_timeout = std::chrono::milliseconds(500);
  o.process_retries = 2;
  o.channel = 4;
#if defined(HIO_ASAN) || defined(HIO_TSAN)
  // hio-plugin-host is built with the sanitizer too, whose SIGSEGV handler would make the crash an exit
  // status 1.
#if defined(HIO_ASAN)
  const char* var = "ASAN_OPTIONS";
#else
  const char* var = "TSAN_OPTIONS";
#endif
  const char* before = std::getenv(var);
  const std::string options_before = before != nullptr ? before : "";
  setenv(var, (options_before + ":handle_segv=0").c_str(), 1);
#endif
  auto made = make_processor("plugin:" + example_plugin().string(), o);  // takes the environment now
#if defined(HIO_ASAN) || defined(HIO_TSAN)
  setenv(var, options_before.c_str(), 1);
#endif
  REQUIRE_MESSAGE(made.has_value(), (made ? "" : made.error().message));
  auto& p = **made;
  for (int i = 1; i <= 20; ++i) {
    auto r = p.process(bytes_tuple({10, 20, 30, i}).view(static_cast<std::uint64_t>(i)));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    CHECK(feature_value(*r, "bytes") == 4);
    CHECK(feature_value(*r, "min_byte") == std::min(10, i));
    CHECK(feature_value(*r, "calls") == i);
  }
  CHECK(p.restarts() == 0);
  CHECK(reason_of(p.process(bytes_tuple({1}, R"({"crash": true})").view(30))) ==
        "processor crashed (signal 11) 3 times");
  CHECK(reason_of(p.process(bytes_tuple({1}, R"({"hang":true})").view(31))) ==
        "processor timed out after 500 ms 3 times");
  CHECK(reason_of(p.process(bytes_tuple({1}, R"({"fail": true})").view(32))) ==
        "asked to fail by the tuple's metadata");
  auto r = p.process(bytes_tuple({7}).view(33));
  REQUIRE(r.has_value());
  CHECK(feature_value(*r, "calls") == 2);  // the process started after the hang, which also saw the "fail" tuple
  CHECK(p.restarts() == 6);
}

TEST_CASE("a file that is not a plugin fails every tuple with the loader's reason, without restarts") {
  if (!have_plugin()) return;
  const auto path = fs::temp_directory_path() / ("hio-not-a-plugin-" + std::to_string(getpid()) + ".so");
  std::ofstream(path) << "not a shared library\n";
  auto made = make_processor("plugin:" + path.string());
  REQUIRE(made.has_value());
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const auto reason = reason_of((*made)->process(bytes_tuple({1}).view(id)));
    CHECK(contains(reason, "cannot load plugin"));
  }
  CHECK((*made)->restarts() == 0);
  fs::remove(path);
}

TEST_CASE("a channel stores a tuple its processor crashed on as failed with the reason, and counts the restarts") {
  if (!have_python()) return;
  struct keep_sink final : record_sink {
    std::vector<feature_record>* kept;
    explicit keep_sink(std::vector<feature_record>* k) : kept(k) {}
    result<std::vector<std::uint64_t>> store(const std::vector<feature_record>& records) override {
      kept->insert(kept->end(), records.begin(), records.end());
      return std::vector<std::uint64_t>{};
    }
  };
  std::vector<feature_record> kept;
  auto made = make_processor("exec:" + python + " " + exec_stats().string());
  REQUIRE(made.has_value());
  channel_handler h("w1", 0, std::move(*made), std::make_unique<keep_sink>(&kept), nullptr);
  lease_token lease;
  lease.lease_id = 1;
  lease.first_tuple_id = 10;
  lease.count = 10;
  REQUIRE(h.begin_session(lease, "test").has_value());
  const auto bad = bytes_tuple({1}, R"({"crash": true})");
  const auto good = bytes_tuple({2});
  REQUIRE(h.on_tuple(lease, bad.view(10)).has_value());
  REQUIRE(h.on_tuple(lease, good.view(11)).has_value());
  auto acks = h.flush(lease);
  REQUIRE(acks.has_value());
  REQUIRE(acks->size() == 2);
  CHECK((*acks)[0].status == wire::ack_status::failed);
  CHECK((*acks)[0].reason == "processor crashed (signal 11) 3 times");
  CHECK((*acks)[1].status == wire::ack_status::stored);
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].status == record_status::failed);
  CHECK(kept[0].error == "processor crashed (signal 11) 3 times");
  CHECK(h.status().processor_restarts == 3);
  CHECK(h.status().failed == 1);
}
