#pragma once
// The `hio` command's subcommands. Each returns the process exit code.

#include <hio/common/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hio::cli {

struct up_options {
  int workers = 2;                      // hio-worker processes
  int channels = 0;                     // channels per worker (0: one per core)
  std::string data_dir = "hio-data";    // master/, repository/ and logs/ live here
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;            // master REST port; the repository takes port + 1
  std::string processor = "noop";       // the channels' processor
  std::string secret;                   // cluster secret (generated when empty)
  std::string log_level = "info";
  bool autoscale = false;               // the master starts and stops workers (through `provisioner`)
  int min_workers = 1, max_workers = 4;
  std::string provisioner = "local";   // with autoscale: local, slurm, kubernetes, command:OUT|IN
  std::vector<std::string> master_args; // passed to hio-master as they are (e.g. --slurm-partition=short)
  double discovery_interval = 10;       // seconds between hio-discovery ticks
  std::string store;                    // the repository's --store (a PostgreSQL URL); empty: SQLite in data_dir
};
int up(const up_options& o);

struct status_options {
  std::string master;   // URL
  std::string format = "text";  // text | json
};
int status(const status_options& o);

struct features_options {
  std::string repository;       // URL
  std::string format = "jsonl"; // jsonl | csv
  std::uint64_t after = 0;      // start after this cursor
  std::uint64_t limit = 0;      // 0: everything
};
int features(const features_options& o);

struct knowledge_options {
  std::string repository;       // URL
  std::string format = "text";  // text: a table of clusters | json: the latest document
};
// Prints the latest knowledge document; 1 when there is none or the repository cannot be reached.
int knowledge(const knowledge_options& o);

struct export_options {
  std::string repository;                  // URL
  std::string format = "hdf5";             // hdf5 (layout: docs/export.md)
  std::string out;                         // the file written (through out + ".tmp", then renamed)
  std::chrono::seconds timeout{60};        // each request to the repository
  std::size_t max_columns = 10000;         // distinct feature names (and parameter names) accepted
};
// Writes every record and the latest knowledge into `out`; 1 (and no `out` written, no `out`.tmp left)
// when the repository cannot be read, sends something malformed or too large, or the file cannot be
// written; the message says which.
int export_file(const export_options& o);

struct stream_options {
  std::string master;
  std::string source;                  // source name (default hio-stream@host)
  std::string token;                   // source token
  std::vector<std::string> files;
  std::uint32_t session_tuples = 0;  // tuples per lease; 0: sized to the tuples (client_options)
  bool compress = false;
  bool progress = true;
  std::string transport = "tcp";       // tcp | ucx | auto (see connector::client_options)
  bool wait_stored = false;            // --wait stored: tuples acknowledged QUEUED count once stored
  std::chrono::seconds wait_timeout{3600};
};
int stream(const stream_options& o);

struct bench_options {
  std::string master;
  std::string mode = "tuples";        // tuples: end to end through the connector; leases: POST /v1/streams
  std::uint64_t size = 6 << 20;       // tuple bytes
  std::uint64_t count = 200;          // tuples or lease requests in all
  int sources = 1;                    // concurrent sources (tuples) or client threads (leases)
  std::uint32_t session_tuples = 0;  // tuples per lease; 0: sized to the tuples
  double rate = 0;                    // leases: requests per second in all (0: as fast as possible)
  std::string npy;                    // tuples: send .npy realizations shaped SxTxV instead of random bytes
  std::string transport = "tcp";      // tuples: tcp | ucx | auto (see connector::client_options)
};
// Prints one JSON line with the measured rates.
int bench(const bench_options& o);

// Where a running cluster started by `hio up` can be found: $HIO_MASTER / $HIO_REPOSITORY, then
// <data dir>/cluster.json, then the default ports on 127.0.0.1.
std::string default_master_url(const std::string& data_dir = "hio-data");
std::string default_repository_url(const std::string& data_dir = "hio-data");
// The repository a master stores into (its /v1/status "repository"), for `--master` on reading commands.
result<std::string> repository_of_master(const std::string& master_url);

// "1.5 GB", "12 MB", "300 B": decimal units, three significant digits.
std::string human_bytes(double bytes);

}  // namespace hio::cli
