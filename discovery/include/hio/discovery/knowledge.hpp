#pragma once
// From a table of stored feature vectors to the knowledge document hio-discovery publishes (the fields
// are listed in docs/discovery.md): preparation, clustering, flat clusters, summaries, projection.

#include <hio/common/error.hpp>
#include <hio/discovery/cut.hpp>
#include <hio/discovery/linkage.hpp>
#include <hio/discovery/prepare.hpp>
#include <hio/discovery/two_stage.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

namespace hio::discovery {

struct knowledge_options {
  linkage_method method = linkage_method::ward;  // hierarchical clustering of the parameter points
  cut_options cut;                 // how the tree is cut into flat clusters, unless one of these is set:
  double threshold = 0;            // > 0: flat clusters cut at this linkage distance
  std::size_t clusters = 0;        // > 0 (and no threshold): cut into at most this many clusters
  std::size_t exact_max = 20000;   // up to this many parameter points exactly; beyond, two_stage_cluster
  two_stage_options two_stage;     // beyond exact_max (its method is replaced by `method`)
};

// Without threshold or clusters the tree is cut at the level `cut.criterion` scores best (choose_cut; one
// cluster when there are fewer than three points). The document's "cut" reports the scores of every level
// either way, so a reader can re-cut the tree (the dashboard does).
//
// The parameter-point key of a tuple whose metadata has an object "params": that object's canonical JSON
// (sorted keys, no spaces); of any other tuple "#<tuple id>", a point of its own.
std::string parameter_point_key(const std::string& metadata, std::uint64_t tuple_id);

// Pure. The table is moved into prepare() (see there for memory); the document holds everything but
// "created_at_ms" and "tick", which the caller adds. Error (code 400) as prepare() and linkage().
result<nlohmann::json> make_knowledge(feature_table table, const knowledge_options& options);

}  // namespace hio::discovery
