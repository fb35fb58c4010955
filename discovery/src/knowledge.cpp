#include <hio/discovery/knowledge.hpp>

#include <hio/common/json.hpp>

#include <hio/discovery/clusters.hpp>

#include <algorithm>
#include <span>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace hio::discovery {
namespace {

using json = nlohmann::json;

constexpr std::size_t max_listed_values = 20;  // distinct values of a non-numeric parameter per cluster

struct flat_cut {
  std::vector<std::uint32_t> labels;  // per row of the clustered matrix
  json report;                        // the document's "cut"
};

// Labels of the tree's leaves; x and leaf_of as choose_cut.
flat_cut cut(const linkage_matrix& z, const matrix& x, std::span<const std::uint32_t> leaf_of,
             const knowledge_options& options) {
  cut_choice choice = choose_cut(z, x, leaf_of, options.cut);
  json levels = json::array();
  for (const auto& l : choice.levels)
    levels.push_back(json{{"clusters", l.clusters}, {"threshold", l.threshold}, {"score", l.score}});
  json report{{"criterion", std::string(to_string(choice.criterion))}, {"by", "criterion"}, {"levels", levels}};
  if (options.threshold > 0 || options.clusters > 0) {
    choice.labels = options.threshold > 0 ? cut_at_distance(z, options.threshold) : cut_into(z, options.clusters);
    report["by"] = options.threshold > 0 ? "threshold" : "k";
    choice.clusters = choice.labels.empty() ? 0 : *std::max_element(choice.labels.begin(), choice.labels.end());
    choice.threshold = options.threshold;
    json score = nullptr;  // the criterion's score of this level, when it is one of those scored
    for (const auto& l : choice.levels)
      if (l.clusters == choice.clusters) score = l.score;
    report["score"] = score;
  } else {
    report["score"] = choice.score;
  }
  report["clusters"] = choice.clusters;
  report["threshold"] = choice.threshold;
  return {std::move(choice.labels), std::move(report)};
}

json linkage_json(const linkage_matrix& z) {
  json out = json::array();
  for (const auto& s : z.steps) out.push_back(json::array({s.first, s.second, s.distance, s.size}));
  return out;
}

}  // namespace

std::string parameter_point_key(const std::string& metadata, std::uint64_t tuple_id) {
  if (!metadata.empty()) {
    auto m = hio::parse_json_or_discarded(metadata);
    if (!m.is_discarded() && m.is_object()) {
      if (auto it = m.find("params"); it != m.end() && it->is_object()) {
        return it->dump(-1, ' ', false, json::error_handler_t::replace);  // nlohmann sorts object keys
      }
    }
  }
  return std::string("#").append(std::to_string(tuple_id));  // not operator+: g++ 12 -O3 warns (-Wrestrict)
}

result<json> make_knowledge(feature_table table, const knowledge_options& options) {
  prepare_options po;
  po.non_finite = non_finite_policy::drop_columns;
  const std::size_t tuples = table.rows.size();
  auto p = prepare(std::move(table), po);
  if (!p) return p.error();
  const matrix& x = p->values;
  const std::size_t n = x.rows();

  // Labels per prepared row (parameter point), and the tree behind them.
  std::vector<std::uint32_t> labels(n, 1);
  linkage_matrix tree;
  std::vector<std::size_t> order;
  json cut_report{{"criterion", std::string(to_string(options.cut.criterion))}, {"by", "criterion"},
                  {"levels", json::array()}, {"score", 0}, {"clusters", n > 0 ? 1 : 0}, {"threshold", 0}};
  std::vector<std::uint32_t> leaf_of;  // two stages: each row's micro-cluster, the linkage's leaf
  bool two_stage = false;
  if (n >= 2 && x.cols() > 0) {
    if (n <= options.exact_max) {
      auto z = linkage(x, options.method);
      if (!z) return z.error();
      tree = std::move(*z);
      auto c = cut(tree, x, {}, options);
      labels = std::move(c.labels);
      cut_report = std::move(c.report);
    } else {
      two_stage = true;
      auto ts_options = options.two_stage;
      ts_options.method = options.method;
      ts_options.micro_clusters = std::min(ts_options.micro_clusters, n);
      auto ts = two_stage_cluster(x, ts_options);
      if (!ts) return ts.error();
      auto c = cut(ts->tree, x, ts->micro, options);
      labels = propagate_labels(*ts, c.labels);
      cut_report = std::move(c.report);
      leaf_of = std::move(ts->micro);
      tree = std::move(ts->tree);
    }
    order = leaf_order(tree);
  } else {
    for (std::size_t i = 0; i < n; ++i) order.push_back(i);
  }

  json doc;
  doc["method"] = std::string(to_string(options.method));
  doc["points"] = tuples - p->dropped_ids.size();
  doc["groups"] = n;
  doc["two_stage"] = two_stage;
  doc["columns"] = p->columns;
  doc["dropped_columns"] = p->dropped_columns;

  json by_tuple = json::object();
  json point_labels = json::array();
  std::vector<json> params(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& key = p->points[i];
    if (!key.starts_with('#')) params[i] = hio::parse_json_or_discarded(key);
    if (params[i].is_discarded()) params[i] = nullptr;
    json ids = json::array();
    for (auto id : p->row_ids(i)) {
      by_tuple[std::to_string(id)] = labels[i];
      ids.push_back(id);
    }
    json entry{{"params", params[i]}, {"label", labels[i]}, {"tuples", std::move(ids)}};
    if (!leaf_of.empty()) entry["leaf"] = leaf_of[i];
    point_labels.push_back(std::move(entry));
  }
  doc["labels"] = std::move(by_tuple);
  doc["point_labels"] = std::move(point_labels);
  doc["linkage"] = linkage_json(tree);
  doc["leaf_order"] = order;
  doc["cut"] = std::move(cut_report);

  json clusters = json::array();
  if (n > 0) {
    const auto summaries = summarize(x, labels);
    for (const auto& s : summaries) {
      if (s.size == 0) continue;
      std::map<std::string, std::pair<double, double>> ranges;
      std::map<std::string, std::set<json>> values;  // non-numeric parameters: their distinct values
      for (std::size_t i = 0; i < n; ++i) {
        if (labels[i] != s.label || !params[i].is_object()) continue;
        for (const auto& [name, v] : params[i].items()) {
          if (!v.is_number()) {
            if (auto& seen = values[name]; seen.size() < max_listed_values) seen.insert(v);
            continue;
          }
          const double d = v.get<double>();
          auto [it, fresh] = ranges.try_emplace(name, d, d);
          if (!fresh) it->second = {std::min(it->second.first, d), std::max(it->second.second, d)};
        }
      }
      json r = json::object();
      for (const auto& [name, mm] : ranges) r[name] = json::array({mm.first, mm.second});
      json listed = json::object();
      for (const auto& [name, seen] : values) listed[name] = json(std::vector<json>(seen.begin(), seen.end()));
      std::size_t tuples_in = 0;
      for (std::size_t i = 0; i < n; ++i)
        if (labels[i] == s.label) tuples_in += p->row_ids(i).size();
      clusters.push_back(json{{"label", s.label},
                              {"size", tuples_in},
                              {"groups", s.size},
                              {"representative_tuple", p->row_ids(s.representative).front()},
                              {"params_ranges", std::move(r)},
                              {"params_values", std::move(listed)}});
    }
  }
  doc["clusters"] = std::move(clusters);

  json projection = json::array();
  if (n > 0 && x.cols() > 0) {
    const auto pr = project_2d(x);
    for (std::size_t i = 0; i < n; ++i) projection.push_back(json::array({pr.points(i, 0), pr.points(i, 1)}));
  }
  doc["projection"] = std::move(projection);
  return doc;
}

}  // namespace hio::discovery
