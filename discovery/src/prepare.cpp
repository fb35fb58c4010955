#include <hio/discovery/prepare.hpp>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace hio::discovery {
namespace {

error bad_input(std::string message) { return make_error(400, std::move(message)); }

// Drops the columns not in `keep` from a row-major matrix, in place.
matrix keep_columns(matrix m, const std::vector<std::size_t>& keep) {
  if (keep.size() == m.cols()) return m;
  std::vector<double> values(m.rows() * keep.size());
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < keep.size(); ++j) values[i * keep.size() + j] = m(i, keep[j]);
  return matrix(m.rows(), keep.size(), std::move(values));
}

}  // namespace

result<prepared> prepare(feature_table table, const prepare_options& options) {
  const std::size_t cols = table.columns.size();
  for (const observation& row : table.rows)
    if (row.values.size() != cols)
      return bad_input("tuple " + std::to_string(row.id) + " has " + std::to_string(row.values.size()) +
                       " feature values for " + std::to_string(cols) + " columns");

  // Which columns and rows survive the non-finite policy.
  std::vector<std::size_t> finite_count(cols, 0);
  for (const observation& row : table.rows)
    for (std::size_t j = 0; j < cols; ++j) finite_count[j] += std::isfinite(row.values[j]) ? 1 : 0;
  std::vector<bool> column_kept(cols);
  for (std::size_t j = 0; j < cols; ++j)
    column_kept[j] = finite_count[j] > 0 &&
                     (options.non_finite != non_finite_policy::drop_columns || finite_count[j] == table.rows.size());
  std::vector<bool> row_kept(table.rows.size(), true);
  for (std::size_t i = 0; i < table.rows.size(); ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      if (!column_kept[j] || std::isfinite(table.rows[i].values[j])) continue;
      if (options.non_finite == non_finite_policy::reject)
        return bad_input("tuple " + std::to_string(table.rows[i].id) + " has a NaN or infinite value of feature '" +
                         table.columns[j] + "'");
      row_kept[i] = false;
    }
  }
  std::vector<std::size_t> kept_columns;
  for (std::size_t j = 0; j < cols; ++j)
    if (column_kept[j]) kept_columns.push_back(j);
  const std::size_t width = kept_columns.size();

  prepared out;
  // Row of the output each kept tuple lands in, in order of first appearance.
  std::vector<std::size_t> target(table.rows.size(), 0);
  std::size_t out_rows = 0;
  {
    std::unordered_map<std::string_view, std::size_t> by_point;
    for (std::size_t i = 0; i < table.rows.size(); ++i) {
      if (!row_kept[i]) {
        out.dropped_ids.push_back(table.rows[i].id);
        continue;
      }
      if (options.aggregate) {
        auto [it, added] = by_point.try_emplace(table.rows[i].point, out_rows);
        if (added) {
          out.points.push_back(table.rows[i].point);
          ++out_rows;
        }
        target[i] = it->second;
      } else {
        out.points.push_back(table.rows[i].point);
        target[i] = out_rows++;
      }
    }
  }
  std::vector<std::size_t> members(out_rows, 0);
  for (std::size_t i = 0; i < table.rows.size(); ++i)
    if (row_kept[i]) ++members[target[i]];
  out.id_offsets.assign(out_rows + 1, 0);
  for (std::size_t r = 0; r < out_rows; ++r) out.id_offsets[r + 1] = out.id_offsets[r] + members[r];
  out.ids.resize(out.id_offsets.back());
  std::vector<std::size_t> filled(out.id_offsets.begin(), out.id_offsets.end() - 1);

  matrix values(out_rows, width);
  for (std::size_t i = 0; i < table.rows.size(); ++i) {
    observation& row = table.rows[i];
    if (row_kept[i]) {
      out.ids[filled[target[i]]++] = row.id;
      auto dst = values.row(target[i]);
      for (std::size_t j = 0; j < width; ++j) dst[j] += row.values[kept_columns[j]];
    }
    std::vector<double>().swap(row.values);
  }
  for (std::size_t r = 0; r < out_rows; ++r)
    if (members[r] > 1)
      for (double& v : values.row(r)) v /= static_cast<double>(members[r]);

  // Column statistics, constant columns, z-scores.
  std::vector<double> mean(width, 0.0);
  std::vector<double> scale(width, 0.0);
  std::vector<double> largest(width, 0.0);
  for (std::size_t r = 0; r < out_rows; ++r)
    for (std::size_t j = 0; j < width; ++j) {
      mean[j] += values(r, j);
      largest[j] = std::max(largest[j], std::abs(values(r, j)));
    }
  for (double& m : mean) m /= static_cast<double>(std::max<std::size_t>(out_rows, 1));
  for (std::size_t r = 0; r < out_rows; ++r)
    for (std::size_t j = 0; j < width; ++j) scale[j] += (values(r, j) - mean[j]) * (values(r, j) - mean[j]);
  for (double& s : scale) s = std::sqrt(s / static_cast<double>(std::max<std::size_t>(out_rows, 1)));

  std::vector<std::size_t> varying;
  std::vector<bool> dropped(cols, false);
  for (std::size_t j = 0; j < cols; ++j) dropped[j] = !column_kept[j];
  for (std::size_t j = 0; j < width; ++j) {
    if (scale[j] > options.constant_tolerance * largest[j] && scale[j] > 0) {
      varying.push_back(j);
    } else {
      dropped[kept_columns[j]] = true;
    }
  }
  for (std::size_t j = 0; j < cols; ++j)
    if (dropped[j]) out.dropped_columns.push_back(table.columns[j]);

  out.values = keep_columns(std::move(values), varying);
  for (std::size_t j : varying) {
    out.columns.push_back(table.columns[kept_columns[j]]);
    out.means.push_back(options.standardize ? mean[j] : 0.0);
    out.scales.push_back(options.standardize ? scale[j] : 1.0);
  }
  if (options.standardize)
    for (std::size_t r = 0; r < out.values.rows(); ++r) {
      auto row = out.values.row(r);
      for (std::size_t j = 0; j < row.size(); ++j) row[j] = (row[j] - out.means[j]) / out.scales[j];
    }
  return out;
}

}  // namespace hio::discovery
