// The `features` processor's arguments: features:harmonicpe (the original HarmonicPE definitions, on the
// CPU) and the refusal of unknown ones.

#include <hio/worker/processor.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace hio;
using namespace hio::worker;

namespace {

// A float64 (S, T, V) .npy buffer, C order, value = f(s, t, v).
template <class F>
std::vector<std::byte> npy_f8(std::size_t S, std::size_t T, std::size_t V, F f) {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + std::to_string(S) + ", " +
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
        const double x = f(s, t, v);
        out.append(reinterpret_cast<const char*>(&x), sizeof x);
      }
  const auto* p = reinterpret_cast<const std::byte*>(out.data());
  return {p, p + out.size()};
}

received_tuple tuple_of(const std::vector<std::byte>& bytes) {
  received_tuple t;
  t.tuple_id = 1;
  t.payload = bytes;
  t.wire_bytes = bytes.size();
  return t;
}

}  // namespace

TEST_CASE("features:harmonicpe is accepted, runs on the CPU and gives the original's 59 features in its order") {
  auto p = make_processor("features:harmonicpe");
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message));
  CHECK((*p)->name() == "features:harmonicpe");
  CHECK((*p)->device() == "cpu");

  // Species 0 sums to Sm[t] = 3t + 6 over its 3 voxels: a straight line, T = 8.
  const auto bytes = npy_f8(2, 8, 3, [](std::size_t s, std::size_t t, std::size_t v) {
    return s == 0 ? static_cast<double>(t + 1 + v) : static_cast<double>((t * 7 + v * 3) % 5);
  });
  auto t = tuple_of(bytes);
  t.metadata = R"({"species": ["mRNA", "protein"]})";
  auto features = (*p)->process(t);
  REQUIRE_MESSAGE(features.has_value(), (features ? "" : features.error().message));
  REQUIRE(features->size() == 59);
  CHECK((*features)[0].name == "mRNA.mean_sm");
  CHECK((*features)[3].name == "mRNA.hpe_skew_sm");
  CHECK((*features)[6].name == "mRNA.hpe_acf_norm_sm");
  CHECK((*features)[9].name == "mRNA_protein.corr_sm");
  CHECK((*features)[10].name == "protein.mean_sm");
  CHECK((*features)[19].name == "mRNA_protein.per_timepoint.corr_norm");
  CHECK((*features)[23].name == "mRNA.per_timepoint.burstiness_norm");
  CHECK((*features)[58].name == "protein.per_voxel.cv_var");
  // The line: mean 16.5 = median, sd 3 sqrt(63/12); the original's skew (3 mean - median)/sd = 2 mean/sd.
  // Every lag's segments correlate exactly, scaled by (8 - i)/8 for i = 1, 2, 3: norm sqrt(110)/8.
  const double sd = 3 * std::sqrt(63.0 / 12.0);
  CHECK((*features)[0].value == doctest::Approx(16.5).epsilon(1e-12));
  CHECK((*features)[3].value == doctest::Approx(2 * 16.5 / sd).epsilon(1e-12));
  CHECK((*features)[6].value == doctest::Approx(std::sqrt(110.0) / 8).epsilon(1e-12));

  // The default processor gives hio's set on the same tuple: 67 features, its own skew and ACF.
  auto cpu = make_processor("features:cpu");
  REQUIRE(cpu.has_value());
  auto hio_features = (*cpu)->process(t);
  REQUIRE(hio_features.has_value());
  CHECK(hio_features->size() == 67);
  CHECK((*hio_features)[3].name == "mRNA.skew_sm");
  CHECK((*hio_features)[3].value == doctest::Approx(0.0));  // mean = median
}

TEST_CASE("features:bogus is refused with a message that lists the valid arguments") {
  for (const std::string spec : {"features:bogus", "features:HarmonicPE", "features:harmonicpe:cpu"}) {
    CAPTURE(spec);
    auto p = make_processor(spec);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == 400);
    const std::string& m = p.error().message;
    CHECK(m.find(spec.substr(std::strlen("features:"))) != std::string::npos);
    for (const char* valid : {":gpu", ":cpu", ":harmonicpe"}) CHECK_MESSAGE(m.find(valid) != std::string::npos, valid);
  }
}
