#pragma once
// Processors turn one received tuple into features. A channel owns one processor and calls it from its
// own thread only, so a processor needs no locking; different channels hold different instances.

#include <hio/common/error.hpp>
#include <hio/common/receiver.hpp>
#include <hio/common/record.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hio::worker {

class processor {
 public:
  virtual ~processor() = default;
  // The tuple's features. An error means processing failed: the tuple is stored with status failed and
  // the error's message as reason, and acknowledged FAILED (the source does not retry it).
  virtual result<std::vector<feature>> process(const received_tuple& t) = 0;
  // The spec this processor was made from, e.g. "sleep:100"; reported to the master.
  virtual std::string name() const = 0;
  // Where it runs: "cpu", or e.g. "cuda:0".
  virtual std::string device() const { return "cpu"; }
};

// Makes a processor from a spec "<kind>[:<argument>]":
//   noop      no features
//   checksum  features bytes, mean_byte, xxh3_low32 over the payload
//   sleep:MS  sleeps MS milliseconds without using the CPU (simulates slow processing)
//   busy:MS   burns MS milliseconds of CPU
// Error (code 400) for an unknown kind or a bad argument; the message lists the known kinds.
result<std::unique_ptr<processor>> make_processor(std::string_view spec);

}  // namespace hio::worker
