#include <hio/common/clock.hpp>
#include <hio/common/hash.hpp>
#include <hio/worker/processor.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <ctime>
#include <string>
#include <vector>

using namespace hio;
using namespace hio::worker;

namespace {

received_tuple tuple_of(const std::vector<std::byte>& bytes, std::uint64_t id = 1) {
  received_tuple t;
  t.tuple_id = id;
  t.payload = bytes;
  t.xxh3 = xxh3_64(std::span<const std::byte>(bytes));
  t.wire_bytes = bytes.size();
  return t;
}

double feature_value(const std::vector<feature>& fs, const std::string& name) {
  for (const auto& f : fs) {
    if (f.name == name) return f.value;
  }
  FAIL("no feature " << name);
  return 0;
}

}  // namespace

TEST_CASE("make_processor builds each known processor from its spec and names it by that spec") {
  for (const std::string spec : {"noop", "checksum", "sleep:5", "busy:5"}) {
    auto p = make_processor(spec);
    REQUIRE_MESSAGE(p.has_value(), spec);
    CHECK((*p)->name() == spec);
    CHECK((*p)->device() == "cpu");
  }
}

TEST_CASE("an unknown processor spec is an error that lists the known processors") {
  auto p = make_processor("fourier");
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == 400);
  CHECK(p.error().message.find("fourier") != std::string::npos);
  CHECK(p.error().message.find("sleep:MS") != std::string::npos);
  CHECK_FALSE(make_processor("").has_value());
}

TEST_CASE("sleep and busy need a whole number of milliseconds; noop and checksum take no argument") {
  CHECK_FALSE(make_processor("sleep").has_value());
  CHECK_FALSE(make_processor("sleep:").has_value());
  CHECK_FALSE(make_processor("sleep:abc").has_value());
  CHECK_FALSE(make_processor("sleep:10ms").has_value());
  CHECK_FALSE(make_processor("busy:-5").has_value());
  CHECK_FALSE(make_processor("busy:99999999999").has_value());
  CHECK_FALSE(make_processor("noop:1").has_value());
  CHECK_FALSE(make_processor("checksum:x").has_value());
  CHECK(make_processor("sleep:0").has_value());
}

TEST_CASE("noop gives no features") {
  std::vector<std::byte> bytes(100, std::byte{7});
  auto p = make_processor("noop");
  REQUIRE(p.has_value());
  auto f = (*p)->process(tuple_of(bytes));
  REQUIRE(f.has_value());
  CHECK(f->empty());
}

TEST_CASE("the checksum processor describes the payload and gives the same features for the same bytes") {
  std::vector<std::byte> bytes;
  for (int i = 0; i < 1000; ++i) bytes.push_back(static_cast<std::byte>(i % 256));
  auto p = make_processor("checksum");
  REQUIRE(p.has_value());
  auto a = (*p)->process(tuple_of(bytes));
  auto b = (*p)->process(tuple_of(bytes, 2));
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a == *b);
  CHECK(feature_value(*a, "bytes") == 1000.0);
  double sum = 0;
  for (auto x : bytes) sum += std::to_integer<int>(x);
  CHECK(feature_value(*a, "mean_byte") == doctest::Approx(sum / 1000.0));
  const auto h = xxh3_64(std::span<const std::byte>(bytes));
  CHECK(feature_value(*a, "xxh3_low32") == static_cast<double>(h & 0xffffffffu));

  bytes[500] = std::byte{255};
  auto c = (*p)->process(tuple_of(bytes));
  REQUIRE(c.has_value());
  CHECK(feature_value(*c, "xxh3_low32") != feature_value(*a, "xxh3_low32"));
}

TEST_CASE("the checksum of an empty payload is zero bytes with mean zero") {
  std::vector<std::byte> none;
  auto p = make_processor("checksum");
  REQUIRE(p.has_value());
  auto f = (*p)->process(tuple_of(none));
  REQUIRE(f.has_value());
  CHECK(feature_value(*f, "bytes") == 0.0);
  CHECK(feature_value(*f, "mean_byte") == 0.0);
}

TEST_CASE("sleep:MS takes about MS milliseconds without burning CPU") {
  std::vector<std::byte> bytes(10);
  auto p = make_processor("sleep:60");
  REQUIRE(p.has_value());
  const double cpu0 = thread_cpu_ms();
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE((*p)->process(tuple_of(bytes)).has_value());
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  CHECK(ms >= 60.0);
  CHECK(ms < 1000.0);
  CHECK(thread_cpu_ms() - cpu0 < 30.0);
}

TEST_CASE("busy:MS burns MS milliseconds of the thread's CPU time") {
  std::vector<std::byte> bytes(10);
  auto p = make_processor("busy:60");
  REQUIRE(p.has_value());
  const double cpu0 = thread_cpu_ms();
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE((*p)->process(tuple_of(bytes)).has_value());
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = thread_cpu_ms() - cpu0;
  CHECK(cpu >= 60.0);
  CHECK(cpu < 70.0);
  CHECK(ms >= cpu - 1.0);  // wall time includes the CPU time (and any time the thread waited for a core)
}

namespace {

// A float32 (S, T, V) .npy buffer, C order, value = f(s, t, v).
template <class F>
std::vector<std::byte> npy_f4(std::size_t S, std::size_t T, std::size_t V, F f) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(S) + ", " +
                       std::to_string(T) + ", " + std::to_string(V) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  for (std::size_t s = 0; s < S; ++s)
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t v = 0; v < V; ++v) {
        const float x = f(s, t, v);
        out.append(reinterpret_cast<const char*>(&x), sizeof x);
      }
  const auto* p = reinterpret_cast<const std::byte*>(out.data());
  return {p, p + out.size()};
}

}  // namespace

TEST_CASE("features keeps each species' summed series, at most 256 timepoints, named from the metadata") {
  auto p = make_processor("features:cpu");
  REQUIRE(p.has_value());
  const auto bytes = npy_f4(2, 600, 3, [](std::size_t s, std::size_t t, std::size_t v) {
    return static_cast<float>((s + 1) * 100 + t % 7 + v);
  });
  auto t = tuple_of(bytes);
  t.metadata = R"({"species": ["mRNA", "protein"], "params": {"k": 1}})";
  auto features = (*p)->process(t);
  REQUIRE_MESSAGE(features.has_value(), (features ? "" : features.error().message));
  CHECK(features->size() == 67);
  const auto series = (*p)->take_series();
  REQUIRE(series.size() == 2);
  CHECK(series[0].name == "mRNA");
  CHECK(series[1].name == "protein");
  // 600 timepoints at most 256 points: every 3rd timepoint, 200 values.
  REQUIRE(series[1].values.size() == 200);
  for (std::size_t k = 0; k < 200; ++k) {
    const std::size_t tp = 3 * k;
    CHECK(series[1].values[k] == doctest::Approx(3.0 * (200 + tp % 7) + 3.0));
  }
  CHECK((*p)->take_series().empty());  // moved out: a second call gives nothing

  const auto plain_bytes = npy_f4(1, 10, 2, [](std::size_t, std::size_t t, std::size_t) { return float(t); });
  auto plain = tuple_of(plain_bytes, 2);
  auto plain_features = (*p)->process(plain);
  REQUIRE_MESSAGE(plain_features.has_value(), (plain_features ? "" : plain_features.error().message));
  const auto one = (*p)->take_series();
  REQUIRE(one.size() == 1);
  CHECK(one[0].name == "species 0");
  CHECK(one[0].values.size() == 10);
  CHECK(one[0].values[9] == doctest::Approx(18.0));
}
