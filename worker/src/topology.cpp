#include <hio/worker/topology.hpp>

#include <hwloc.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace hio::worker {
namespace {
hwloc_topology_t as_hwloc(void* p) { return static_cast<hwloc_topology_t>(p); }
}  // namespace

result<std::unique_ptr<topology>> topology::load() {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) return make_error(0, "hwloc: cannot initialise a topology");
  if (hwloc_topology_load(t) != 0) {
    hwloc_topology_destroy(t);
    return make_error(0, "hwloc: cannot load the machine's topology");
  }
  std::unique_ptr<topology> result_topology(new topology());
  result_topology->topology_ = t;
  int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
  if (n <= 0) {
    n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    result_topology->counts_pus_ = true;
  }
  result_topology->cores_ = n > 0 ? static_cast<std::size_t>(n) : 1;
  return result_topology;
}

topology::~topology() {
  if (topology_ != nullptr) hwloc_topology_destroy(as_hwloc(topology_));
}

result<void> topology::bind_current_thread(std::size_t core) const {
  const hwloc_obj_type_t type = counts_pus_ ? HWLOC_OBJ_PU : HWLOC_OBJ_CORE;
  const auto index = static_cast<unsigned>(core % cores_);
  hwloc_obj_t obj = hwloc_get_obj_by_type(as_hwloc(topology_), type, index);
  if (obj == nullptr || obj->cpuset == nullptr) {
    return make_error(0, "hwloc: no core " + std::to_string(index));
  }
  if (hwloc_set_cpubind(as_hwloc(topology_), obj->cpuset, HWLOC_CPUBIND_THREAD) != 0) {
    const int e = errno;
    return make_error(e, "hwloc: cannot bind the thread to core " + std::to_string(index) + ": " +
                                 std::strerror(e));
  }
  return {};
}

}  // namespace hio::worker
