#pragma once
// The machine's cores as hwloc sees them, and pinning a thread to one of them. Loaded once by the
// controller, which owns it for the worker's life; after loading it is read-only and thread-safe.

#include <hio/common/error.hpp>

#include <cstddef>
#include <memory>

namespace hio::worker {

class topology {
 public:
  // Error when hwloc cannot load the machine's topology.
  static result<std::unique_ptr<topology>> load();
  ~topology();
  topology(const topology&) = delete;
  topology& operator=(const topology&) = delete;

  // Physical cores (HWLOC_OBJ_CORE); the processing units when hwloc finds no cores. At least 1.
  std::size_t cores() const noexcept { return cores_; }
  // True when cores() counts processing units because no core objects were found.
  bool counts_pus() const noexcept { return counts_pus_; }

  // Binds the calling thread to core `core % cores()` (all of its processing units). Error when the
  // operating system refuses (e.g. a restricted cpuset); the thread then stays unbound.
  result<void> bind_current_thread(std::size_t core) const;

 private:
  topology() = default;
  void* topology_ = nullptr;  // hwloc_topology_t, kept out of the header
  std::size_t cores_ = 1;
  bool counts_pus_ = false;
};

}  // namespace hio::worker
