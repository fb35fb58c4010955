// GPU extractor against the CPU reference. Every GPU case skips (with a message) when no CUDA device is
// usable, as on the development machines; the pinned_buffer and no-device cases run everywhere.

#include <hio/features/features.hpp>
#include <hio/features/gpu.hpp>

#include "features_support.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <thread>

using namespace hio::features;
using namespace hio::features::test;

namespace {

// Both sides accumulate in float64; they differ in summation order (and FMA contraction on the device).
constexpr double gpu_rel_tolerance = 1e-9;
constexpr double gpu_abs_tolerance = 1e-10;

std::unique_ptr<gpu_extractor> gpu_or_skip() {
  auto g = gpu_extractor::create();
  if (!g) {
    MESSAGE("skipped: no CUDA device (" << g.error().message << ")");
    return nullptr;
  }
  return std::move(*g);
}

npy_array parse_pinned(const pinned_buffer& b) {
  auto a = parse_npy(std::span<const std::byte>(b.data(), b.size()));
  REQUIRE(a.has_value());
  return *a;
}

void compare(const std::vector<realization_features>& cpu, const std::vector<realization_features>& gpu) {
  REQUIRE(cpu.size() == gpu.size());
  for (std::size_t r = 0; r < cpu.size(); ++r) {
    REQUIRE(*cpu[r].names == *gpu[r].names);
    for (std::size_t i = 0; i < cpu[r].values.size(); ++i) {
      CAPTURE(r);
      CAPTURE((*cpu[r].names)[i]);
      CAPTURE(cpu[r].values[i]);
      CAPTURE(gpu[r].values[i]);
      CHECK(close(gpu[r].values[i], cpu[r].values[i], gpu_rel_tolerance, gpu_abs_tolerance));
    }
  }
}

}  // namespace

TEST_CASE("gpu: pinned_buffer gives writable memory, pinned only where a device exists, and moves") {
  pinned_buffer b(1 << 20);
  REQUIRE(b.data() != nullptr);
  CHECK(b.size() == (1u << 20));
  if (b.pinned()) CHECK(cuda_device_count() > 0);
  std::memset(b.data(), 0x5a, b.size());
  CHECK(b.data()[b.size() - 1] == std::byte{0x5a});
  pinned_buffer moved(std::move(b));
  CHECK(moved.size() == (1u << 20));
  CHECK(b.data() == nullptr);
  CHECK(b.size() == 0);
  pinned_buffer empty;
  empty = std::move(moved);
  CHECK(empty.data()[0] == std::byte{0x5a});
}

TEST_CASE("gpu: without a device, creating a GPU extractor fails cleanly with no_device") {
  if (cuda_device_count() > 0) {
    MESSAGE("a CUDA device is present: nothing to check here");
    return;
  }
  auto g = gpu_extractor::create();
  REQUIRE_FALSE(g.has_value());
  CHECK(g.error().code == errc::no_device);
  CHECK_FALSE(g.error().message.empty());
}

TEST_CASE("gpu: features match the CPU reference within rel 1e-9 / abs 1e-10 on random inputs and edge sizes") {
  auto gpu = gpu_or_skip();
  if (!gpu) return;
  struct gpu_case {
    std::vector<std::size_t> shape;
    dtype type;
    npy_write_options write;
    int fill;  // 0 random, 1 zeros, 2 constant, 3 sparse integers
  };
  const std::vector<gpu_case> cases = {
      {{2, 3000, 250}, dtype::f4, {}, 0}, {{3, 200, 37}, dtype::f8, {}, 0},          {{2, 3, 64, 16}, dtype::i4, {}, 3},
      {{2, 100, 9}, dtype::f8, {1, true, false}, 0},                                  {{2, 50, 7}, dtype::u2, {1, false, true}, 3},
      {{2, 40, 5}, dtype::i8, {2, true, true}, 3},                                    {{1, 1}, dtype::f8, {}, 0},
      {{1, 7}, dtype::f8, {}, 0},         {{7, 1}, dtype::f8, {}, 0},                 {{2, 2, 2}, dtype::f8, {}, 0},
      {{3, 3, 4}, dtype::f8, {}, 1},      {{2, 5, 6}, dtype::f4, {}, 2},              {{4, 1}, dtype::f8, {}, 3},
      {{2, 1025, 3}, dtype::f8, {}, 0},   {{2, 4, 1000}, dtype::f4, {}, 0},           {{5, 33, 2}, dtype::u1, {}, 3},
  };
  extractor cpu;
  std::uint64_t seed = 77;
  for (const auto& c : cases) {
    CAPTURE(c.shape.size());
    CAPTURE(c.shape.back());
    CAPTURE(to_string(c.type));
    std::vector<double> values = random_values(product(c.shape), ++seed, c.fill == 3 || c.type != dtype::f8);
    if (c.fill == 1) std::fill(values.begin(), values.end(), 0.0);
    if (c.fill == 2) std::fill(values.begin(), values.end(), 3.0);
    if (c.fill == 3)
      for (std::size_t i = 0; i < values.size(); ++i)
        if (i % 4) values[i] = 0;
    const auto bytes = write_npy(values, c.shape, c.type, c.write);
    pinned_buffer pinned(bytes.size());
    std::memcpy(pinned.data(), bytes.data(), bytes.size());
    const npy_array a = parse_pinned(pinned);
    for (bool spectral : {true, false}) {
      options o;
      o.spectral = spectral;
      auto want = cpu.extract(a, o);
      auto have = gpu->extract(a, o);
      REQUIRE(want.has_value());
      REQUIRE(have.has_value());
      compare(*want, *have);
    }
  }
  CHECK(gpu->last_device_ms() > 0);
}

TEST_CASE("gpu: NaN in the input is refused with non_finite_input, and the extractor stays usable") {
  auto gpu = gpu_or_skip();
  if (!gpu) return;
  std::vector<double> x(2 * 10 * 4, 1.0);
  x[17] = std::numeric_limits<double>::quiet_NaN();
  const auto bad = write_npy(x, dims({2, 10, 4}), dtype::f8);
  auto r = gpu->extract(parse_or_fail(bad));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::non_finite_input);
  const auto good = write_npy(random_values(2 * 10 * 4, 3), dims({2, 10, 4}), dtype::f8);
  auto again = gpu->extract(parse_or_fail(good));
  REQUIRE(again.has_value());
  compare(*extract(parse_or_fail(good)), *again);
}

TEST_CASE("gpu: one extractor per thread, each on its own stream, keeps several tuples in flight correctly") {
  if (cuda_device_count() == 0) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  constexpr int threads = 4, rounds = 6;
  std::vector<std::vector<std::byte>> inputs;
  for (int i = 0; i < threads; ++i) inputs.push_back(write_npy(random_values(2 * 500 * 64, 900 + i), dims({2, 500, 64}), dtype::f4));
  std::vector<std::vector<double>> expected;
  for (const auto& in : inputs) expected.push_back(extract(parse_or_fail(in))->front().values);
  std::vector<int> failures(threads, 0);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      auto g = gpu_extractor::create();
      if (!g) {
        failures[i] = rounds;
        return;
      }
      pinned_buffer pinned(inputs[i].size());
      std::memcpy(pinned.data(), inputs[i].data(), inputs[i].size());
      auto a = parse_npy(std::span<const std::byte>(pinned.data(), pinned.size()));
      for (int k = 0; k < rounds; ++k) {
        auto r = (*g)->extract(*a);
        if (!r) {
          ++failures[i];
          continue;
        }
        for (std::size_t j = 0; j < expected[i].size(); ++j)
          if (!close(r->front().values[j], expected[i][j], gpu_rel_tolerance, gpu_abs_tolerance)) {
            ++failures[i];
            break;
          }
      }
    });
  for (auto& t : pool) t.join();
  for (int i = 0; i < threads; ++i) CHECK(failures[i] == 0);
}
