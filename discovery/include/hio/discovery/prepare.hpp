#pragma once
// Turns stored feature vectors into the matrix the clustering runs on: non-finite values handled,
// realizations of one parameter point averaged, columns z-scored, constant columns dropped.

#include <hio/common/error.hpp>
#include <hio/discovery/matrix.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hio::discovery {

// One tuple's features: values[j] belongs to feature_table::columns[j] (NaN where the tuple lacks it).
struct observation {
  std::uint64_t id = 0;        // tuple id
  std::string point;           // parameter-point key, e.g. the canonical JSON of the tuple's parameters
  std::vector<double> values;  // one per column
};

struct feature_table {
  std::vector<std::string> columns;  // feature names
  std::vector<observation> rows;     // one per tuple
};

// What a NaN or ±inf feature value does. Under every policy a column with no finite value at all is
// dropped first, since it says nothing about any tuple.
enum class non_finite_policy {
  drop_rows,     // the tuple is left out (listed in prepared::dropped_ids)
  drop_columns,  // the column is left out (listed in prepared::dropped_columns)
  reject,        // prepare() fails (code 400) naming the tuple and column
};

struct prepare_options {
  bool aggregate = true;  // average the realizations of one parameter point into one row (mean per column)
  bool standardize = true;  // z-score each column: (x - mean) / population std (ddof = 0, as scipy.stats.zscore)
  non_finite_policy non_finite = non_finite_policy::drop_rows;  // see non_finite_policy
  // A column whose population std is at most this times its largest |value| counts as constant and is
  // dropped, standardized or not (rounding keeps the std of a constant column a few ulps above zero).
  double constant_tolerance = 1e-12;
};

struct prepared {
  matrix values;                          // one row per tuple, or per parameter point when aggregated
  std::vector<std::string> columns;       // the kept columns, in input order
  std::vector<std::string> points;        // parameter-point key of each row
  std::vector<std::uint64_t> ids;         // tuple ids behind each row, row after row (see row_ids)
  std::vector<std::size_t> id_offsets;    // row i's ids are ids[id_offsets[i] .. id_offsets[i + 1])
  std::vector<double> means;              // per kept column: the mean subtracted (0 when not standardized)
  std::vector<double> scales;             // per kept column: the population std divided by (1 when not)
  std::vector<std::string> dropped_columns;  // constant columns and columns dropped for non-finite values
  std::vector<std::uint64_t> dropped_ids;    // tuples left out for non-finite values

  std::span<const std::uint64_t> row_ids(std::size_t row) const {
    return {ids.data() + id_offsets[row], id_offsets[row + 1] - id_offsets[row]};
  }
};

// Pure: the result depends on nothing but the arguments. Rows of the result keep the order of first
// appearance of their tuple (or parameter point). The table is taken by value and each tuple's values are
// released as soon as they are copied, so a caller that moves it in never holds two copies of the data.
// Error (code 400) when a row has a different number of values than there are columns, or under
// non_finite_policy::reject when a value is NaN or infinite. No rows or no kept columns is not an error.
result<prepared> prepare(feature_table table, const prepare_options& options = {});

}  // namespace hio::discovery
