#pragma once
// The pure parts of the Kubernetes provisioner (master/src/provisioner_kubernetes.cpp): the requests it
// makes to the API server and how it reads the answers. No I/O; unit-tested.
//
// Workers are the pods of a StatefulSet, `<name>-0` .. `<name>-N-1`, each registering under its pod name.
// Scale-out raises the StatefulSet's replicas; scale-in drains the highest ordinal first and then lowers
// the replicas, because a StatefulSet always removes its highest ordinals (a Deployment would delete an
// arbitrary pod, possibly one still holding tuples).

#include <hio/common/error.hpp>
#include <hio/master/provisioner.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hio::master::kubernetes {

// The scale subresource: /apis/apps/v1/namespaces/<ns>/statefulsets/<name>/scale.
std::string scale_path(std::string_view ns, std::string_view statefulset);

// The body of the PATCH that sets the replicas (Content-Type application/merge-patch+json).
std::string replicas_patch(int replicas);

// What a Scale object (autoscaling/v1) says.
struct scale {
  int spec_replicas = 0;    // wanted
  int status_replicas = 0;  // existing
};
// Reads a Scale object. Error when it is not JSON, not kind Scale of autoscaling/v1, or has no
// spec.replicas; status.replicas may be missing (0).
result<scale> parse_scale(std::string_view body);

// The message of a Status object the API server sends with an error ("" when it is not one).
std::string status_message(std::string_view body);

// The ordinal of pod `<statefulset>-<n>`, or nothing when the name is another's.
std::optional<int> pod_ordinal(std::string_view pod, std::string_view statefulset);

// The pod names for ordinals [from, to).
std::vector<std::string> pod_names(std::string_view statefulset, int from, int to);

// The worker to drain first: the pod of this StatefulSet with the highest ordinal ("" = none).
std::string highest_ordinal(const std::vector<scale_in_candidate>& workers, std::string_view statefulset);

// https://HOST:PORT from the in-cluster service variables (an IPv6 host gets brackets); "" when unset.
std::string api_server_from(std::string_view host, std::string_view port);

}  // namespace hio::master::kubernetes
