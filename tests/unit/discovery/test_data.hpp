#pragma once
// Seeded inputs and label helpers shared by the discovery tests.

#include <hio/discovery/matrix.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace hio::discovery::testing {

// Uniform in [0, 1)^d: distances and merge heights are free of ties with probability one.
inline matrix uniform_points(std::size_t n, std::size_t d, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  matrix x(n, d);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) x(i, j) = u(random);
  return x;
}

// n points in `clusters` Gaussian blobs (unit standard deviation) whose centres lie `spread` apart
// on average; truth[i] is the blob of point i, 1-based.
inline matrix gaussian_blobs(std::size_t n, std::size_t d, std::size_t clusters, double spread, std::uint64_t seed,
                             std::vector<std::uint32_t>& truth) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> where(-spread, spread);
  std::normal_distribution<double> noise(0.0, 1.0);
  matrix centres(clusters, d);
  for (std::size_t c = 0; c < clusters; ++c)
    for (std::size_t j = 0; j < d; ++j) centres(c, j) = where(random);
  matrix x(n, d);
  truth.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % clusters;
    truth[i] = static_cast<std::uint32_t>(c + 1);
    for (std::size_t j = 0; j < d; ++j) x(i, j) = centres(c, j) + noise(random);
  }
  return x;
}

// Labels renumbered 1, 2, ... in order of first appearance: equal for two labellings exactly when they
// describe the same partition.
template <class Labels>
std::vector<std::uint32_t> canonical(const Labels& labels) {
  std::unordered_map<long long, std::uint32_t> seen;
  std::vector<std::uint32_t> out;
  out.reserve(labels.size());
  for (auto l : labels) {
    auto [it, added] = seen.try_emplace(static_cast<long long>(l), static_cast<std::uint32_t>(seen.size() + 1));
    out.push_back(it->second);
  }
  return out;
}

}  // namespace hio::discovery::testing
