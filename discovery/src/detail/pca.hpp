#pragma once
// Principal axes of a matrix's rows, shared by project_2d and the linkage's lower-bound filter.

#include <hio/discovery/matrix.hpp>

#include <cstddef>
#include <vector>

namespace hio::discovery::detail {

struct principal_axes {
  matrix axes;                     // k×d orthonormal rows, by decreasing variance; zero rows beyond d
  std::vector<double> variances;   // k population variances along the axes (eigenvalues, at least 0)
  std::vector<double> mean;        // d column means
};

// The k leading eigenvectors of the population covariance, by cyclic Jacobi rotations; each axis's
// largest-magnitude component is positive (the first such on ties). O(n d² + d³) time, O(d²) memory.
principal_axes leading_axes(const matrix& x, std::size_t k);

}  // namespace hio::discovery::detail
