#pragma once
// Processors turn one received tuple into features. A channel owns one processor and calls it from its
// own thread only, so a processor needs no locking; different channels hold different instances.

#include <hio/common/error.hpp>
#include <hio/common/receiver.hpp>
#include <hio/common/record.hpp>

#include <chrono>
#include <cstdint>
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
  // Previews of the tuple process() just handled (e.g. its summed time series), moved out; called right
  // after a successful process() on the same thread. None by default.
  virtual std::vector<named_series> take_series() { return {}; }
  // The spec this processor was made from, e.g. "sleep:100"; reported to the master.
  virtual std::string name() const = 0;
  // Where it runs: "cpu", or e.g. "cuda:0".
  virtual std::string device() const { return "cpu"; }
  // Times an out-of-process processor's process was restarted after a crash, a timeout or garbage (0 for
  // in-process kinds). Thread-safe, unlike the rest.
  virtual std::uint64_t restarts() const noexcept { return 0; }
};

// What make_processor() needs beyond the spec; the defaults suit a test.
struct processor_options {
  std::chrono::milliseconds process_timeout{15000};  // exec/plugin: deadline for one tuple's exchange
  std::uint32_t process_retries = 2;                 // exec/plugin: more attempts after a crash, timeout, garbage
  std::string worker_id;                             // exec/plugin: passed on (HIO_WORKER, plugin config)
  std::uint32_t channel = 0;                         // exec/plugin: passed on (HIO_CHANNEL, plugin config)
  std::string plugin_host;  // hio-plugin-host; "": $HIO_PLUGIN_HOST, else next to the running executable
};

// Makes a processor from a spec "<kind>[:<argument>]":
//   noop      no features
//   checksum  features bytes, mean_byte, xxh3_low32 over the payload
//   sleep:MS  sleeps MS milliseconds without using the CPU (simulates slow processing)
//   busy:MS   burns MS milliseconds of CPU
//   features  the built-in feature set of .npy realizations (docs/features.md), on the GPU when one is
//             usable (logged, and the device is reported), else the CPU; features:gpu requires a GPU,
//             features:cpu never uses one, features:harmonicpe computes the original HarmonicPE
//             definitions on the CPU
//   plugin:PATH   a C ABI plugin (hio_processor.h), run by hio-plugin-host in a child process
//   exec:COMMAND  a persistent child process speaking the processor protocol on stdin/stdout; COMMAND is
//                 split on spaces and tabs into argv (no shell, no quoting); argv[0] is looked up in PATH
// plugin and exec run out of process, isolated and supervised (isolated_processor.hpp, docs/processors.md).
// Error (code 400) for an unknown kind or a bad argument (a plugin file or a command that does not exist,
// no hio-plugin-host); the message lists the known kinds.
result<std::unique_ptr<processor>> make_processor(std::string_view spec, const processor_options& options = {});

}  // namespace hio::worker
