#pragma once
// Seeded inputs and label helpers shared by the discovery tests.

#include <hio/discovery/matrix.hpp>

#include <algorithm>
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

// Nested regimes: groups[g] regimes in group g. Group centres lie `far` apart along their own axes,
// the regimes of a group `near` apart around it (again each along an axis of its own), `per_regime`
// points per regime with Gaussian noise of standard deviation `sd`, and `irrelevant` extra columns of
// pure noise (sd 1) that say nothing about the regimes. truth[i] is the regime of point i, 1-based.
inline matrix nested_regimes(const std::vector<std::size_t>& groups, std::size_t per_regime, double far, double near,
                             double sd, std::size_t irrelevant, std::uint64_t seed, std::vector<std::uint32_t>& truth) {
  std::size_t regimes = 0;
  for (auto g : groups) regimes += g;
  const std::size_t informative = groups.size() + regimes, d = informative + irrelevant;
  matrix centres(regimes, d);
  std::size_t r = 0;
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (std::size_t j = 0; j < groups[g]; ++j, ++r) {
      centres(r, g) = far;
      if (groups[g] > 1) centres(r, groups.size() + r) = near / 1.4142135623730951;  // pairwise `near`
    }
  std::mt19937_64 random(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  matrix x(regimes * per_regime, d);
  truth.resize(x.rows());
  for (std::size_t i = 0; i < x.rows(); ++i) {
    const std::size_t c = i % regimes;
    truth[i] = static_cast<std::uint32_t>(c + 1);
    for (std::size_t j = 0; j < d; ++j) x(i, j) = (j < informative ? centres(c, j) : 0.0) + sd * noise(random);
  }
  return x;
}

// The share of points whose cluster's most common true label is their own.
inline double purity(const std::vector<std::uint32_t>& labels, const std::vector<std::uint32_t>& truth) {
  std::unordered_map<std::uint64_t, std::size_t> count;  // (label, truth) -> points
  std::unordered_map<std::uint32_t, std::size_t> best;   // label -> points of its most common truth
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::size_t c = ++count[(std::uint64_t{labels[i]} << 32) | truth[i]];
    best[labels[i]] = std::max(best[labels[i]], c);
  }
  std::size_t right = 0;
  for (const auto& [label, n] : best) right += n;
  return labels.empty() ? 1.0 : static_cast<double>(right) / static_cast<double>(labels.size());
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
