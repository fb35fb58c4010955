#pragma once
// The JSON bodies the worker sends to the master. Pure functions, thread-safe.

#include <hio/worker/channel.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace hio::worker::detail {

// What the master learns about a channel when the worker registers.
struct channel_description {
  std::uint32_t index = 0;
  std::uint16_t port = 0;
  int core = -1;
  std::string processor;
  std::string device = "cpu";
  std::string transport = "tcp";        // the preferred one of `transports`
  std::vector<std::string> transports = {"tcp"};  // what sources may use: "tcp", "ucx"
  std::uint16_t ucx_port = 0;           // the UCX listener (0: none)
  std::string ucx_address;              // the UCX receiver's worker address, hex (empty: none)
  std::uint32_t sessions = 16;          // sessions it serves at once (its credits at the master)
};

// POST /v1/workers
// `instance` names this run of the worker process: a registration from the same instance (after a port
// change, or to a restarted master) continues its counters; a new instance starts them from zero.
std::string register_body(const std::string& worker_id, const std::string& instance, const std::string& host,
                          const std::vector<channel_description>& channels);
// POST /v1/workers/<id>/heartbeat
std::string heartbeat_body(bool draining, const std::vector<channel_status>& channels);
// POST /v1/workers/<id>/free
std::string free_body(std::uint32_t channel, std::uint64_t lease_id, bool clean);

// "/v1/workers/<id><suffix>" with the id percent-encoded where it is not a URL-safe character.
std::string worker_path(const std::string& worker_id, const std::string& suffix = {});

}  // namespace hio::worker::detail
