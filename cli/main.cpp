// hio: the umbrella command. `hio up`, `hio status`, `hio features`, `hio knowledge`, `hio export`, `hio stream`.
#include <hio/cli/commands.hpp>
#include <hio/common/log.hpp>
#include <hio/common/process.hpp>

#include <CLI/CLI.hpp>

#include <cstdlib>

#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"hio: stream large scientific tuples through per-core worker channels"};
  app.require_subcommand(1);
  // Global options (--data-dir) may come before or after the subcommand: subcommands made from here on
  // pass options they do not know up to the app.
  app.fallthrough();
  std::string data_dir = "hio-data";
  app.add_option("--data-dir", data_dir, "Cluster directory of `hio up` (used to find a running cluster)")
      ->capture_default_str();

  hio::cli::up_options up;
  auto* up_cmd = app.add_subcommand("up", "Start repository, master and workers here; Ctrl-C stops them");
  up_cmd->add_option("--workers", up.workers, "Worker processes")->capture_default_str();
  up_cmd->add_option("--channels", up.channels, "Channels per worker (0: one per core)")->capture_default_str();
  up_cmd->add_option("--port", up.port, "Master REST port (the repository uses the next one)")->capture_default_str();
  up_cmd->add_option("--host", up.host, "Address to listen on")->capture_default_str();
  up_cmd->add_option("--processor", up.processor, "noop, checksum, features[:gpu|:cpu|:harmonicpe], sleep:MS, busy:MS, plugin:PATH, exec:COMMAND")->capture_default_str();
  up_cmd->add_option("--secret", up.secret, "Cluster secret (default: $HIO_SECRET, else generated)");
  up_cmd->add_option("--log-level", up.log_level, "Log level of the processes")->capture_default_str();
  up_cmd->add_flag("--autoscale", up.autoscale, "Let the master start and stop workers with the load");
  up_cmd->add_option("--min-workers", up.min_workers, "With --autoscale: fewest workers")->capture_default_str();
  up_cmd->add_option("--max-workers", up.max_workers, "With --autoscale: most workers")->capture_default_str();
  up_cmd->add_option("--provisioner", up.provisioner, "With --autoscale: local, slurm, kubernetes, command:OUT|IN")
      ->capture_default_str();
  up_cmd->add_option("--master-arg", up.master_args, "Pass this argument to hio-master (repeatable), e.g. --master-arg=--slurm-partition=short");
  up_cmd->add_option("--store", up.store,
                     "The repository's database: postgres://user@host:port/db (default: SQLite under --data-dir; "
                     "docs/repository.md)");
  up_cmd->add_option("--discovery-interval", up.discovery_interval, "Seconds between hio-discovery ticks")
      ->capture_default_str()->check(CLI::PositiveNumber);

  hio::cli::status_options st;
  auto* st_cmd = app.add_subcommand("status", "Workers, channels, queue and counters of a running cluster");
  st_cmd->add_option("--master", st.master, "Master URL (default: $HIO_MASTER, then the running `hio up`)");
  st_cmd->add_option("--format", st.format, "text or json")->check(CLI::IsMember({"text", "json"}))->capture_default_str();

  hio::cli::features_options fe;
  auto* fe_cmd = app.add_subcommand("features", "Print the stored tuples and their features");
  std::string fe_master, kn_master;
  fe_cmd->add_option("--repository", fe.repository, "Repository URL (default: $HIO_REPOSITORY, then `hio up`'s)");
  fe_cmd->add_option("--master", fe_master, "Read from the repository this master stores into");
  fe_cmd->add_option("--format", fe.format, "jsonl or csv")->check(CLI::IsMember({"jsonl", "csv"}))->capture_default_str();
  fe_cmd->add_option("--after", fe.after, "Only tuples stored after this cursor");
  fe_cmd->add_option("--limit", fe.limit, "At most this many (0: all)");

  hio::cli::knowledge_options kn;
  auto* kn_cmd = app.add_subcommand("knowledge", "The clusters hio-discovery found most recently");
  kn_cmd->add_option("--repository", kn.repository, "Repository URL (default: $HIO_REPOSITORY, then `hio up`'s)");
  kn_cmd->add_option("--master", kn_master, "Read from the repository this master stores into");
  kn_cmd->add_option("--format", kn.format, "text or json")->check(CLI::IsMember({"text", "json"}))->capture_default_str();

  hio::cli::export_options ex;
  auto* ex_cmd = app.add_subcommand("export", "Write every stored tuple and the latest knowledge into one file");
  std::string ex_master;
  ex_cmd->add_option("--repository", ex.repository, "Repository URL (default: $HIO_REPOSITORY, then `hio up`'s)");
  ex_cmd->add_option("--master", ex_master, "Read from the repository this master stores into");
  ex_cmd->add_option("--format", ex.format, "hdf5 (layout: docs/export.md)")
      ->check(CLI::IsMember({"hdf5"}))
      ->capture_default_str();
  int ex_timeout = 60;
  ex_cmd->add_option("--timeout", ex_timeout, "Seconds each request to the repository may take")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  ex_cmd->add_option("--max-columns", ex.max_columns, "Refuse more distinct feature (or parameter) names than this")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  ex_cmd->add_option("out", ex.out, "The file to write (replaced when it exists)")->required();

  hio::cli::stream_options sm;
  auto* sm_cmd = app.add_subcommand("stream", "Send files as tuples; exits non-zero if any was not delivered");
  sm_cmd->add_option("--master", sm.master, "Master URL (default: $HIO_MASTER, then the running `hio up`)");
  sm_cmd->add_option("--source", sm.source, "Source name stored with each tuple");
  sm_cmd->add_option("--token", sm.token, "Source token, if the master requires one (default: $HIO_SOURCE_TOKEN)")
      ->envname("HIO_SOURCE_TOKEN");
  sm_cmd->add_option("--session-tuples", sm.session_tuples, "Tuples per lease (0: 64 MiB of tuples, 64..65536)")->capture_default_str();
  sm_cmd->add_flag("--compress", sm.compress, "zstd-compress payloads on the wire");
  sm_cmd->add_option("--transport", sm.transport, "tcp, ucx (an error if no channel or this build lacks UCX) or auto")
      ->check(CLI::IsMember({"tcp", "ucx", "auto"}))
      ->capture_default_str();
  std::string wait = "acknowledged";
  sm_cmd->add_option("--wait", wait,
                     "acknowledged: exit once every tuple is stored or durably queued; stored: also wait until the "
                     "queued ones are stored (or failed)")
      ->check(CLI::IsMember({"acknowledged", "stored"}))
      ->capture_default_str();
  sm_cmd->add_option("--wait-timeout", sm.wait_timeout, "With --wait stored: seconds to wait at most")->capture_default_str();
  bool quiet = false;
  sm_cmd->add_flag("--quiet,-q", quiet, "No progress bar");
  sm_cmd->add_option("files", sm.files, "Files to send, one tuple each")->required();

  hio::cli::bench_options be;
  auto* be_cmd = app.add_subcommand("bench", "Measure: tuples end to end, or lease requests per second");
  be_cmd->add_option("--master", be.master, "Master URL (default: $HIO_MASTER, then the running `hio up`)");
  be_cmd->add_option("--mode", be.mode, "tuples or leases")->check(CLI::IsMember({"tuples", "leases"}))->capture_default_str();
  be_cmd->add_option("--size", be.size, "Tuple bytes")->capture_default_str();
  be_cmd->add_option("--count", be.count, "Tuples or lease requests in all")->capture_default_str();
  be_cmd->add_option("--sources", be.sources, "Concurrent sources (leases: client threads)")->capture_default_str();
  be_cmd->add_option("--session-tuples", be.session_tuples, "Tuples per lease (0: 64 MiB of tuples, 64..65536)")->capture_default_str();
  be_cmd->add_option("--rate", be.rate, "leases: total requests per second (0: as fast as possible)");
  be_cmd->add_option("--transport", be.transport, "tuples: tcp, ucx or auto")
      ->check(CLI::IsMember({"tcp", "ucx", "auto"}))
      ->capture_default_str();
  be_cmd->add_option("--npy", be.npy, "tuples: float32 .npy realizations shaped SxTxV (e.g. 2x3000x250) instead of random bytes");

  CLI11_PARSE(app, argc, argv);
  hio::init_logging("hio", hio::env_or("HIO_LOG_LEVEL", "warn"));
  // The connector finds `hio up`'s source token in $HIO_DATA_DIR: a --data-dir given here wins over the
  // environment, the default does not.
  ::setenv("HIO_DATA_DIR", data_dir.c_str(), app.get_option("--data-dir")->count() > 0 ? 1 : 0);
  if (*up_cmd) {
    up.data_dir = data_dir;
    return hio::cli::up(up);
  }
  if (*st_cmd) {
    if (st.master.empty()) st.master = hio::cli::default_master_url(data_dir);
    return hio::cli::status(st);
  }
  // --repository wins; else the repository of --master; else the environment and `hio up`'s.
  const auto repository = [&](std::string& chosen, const std::string& master, const char* command) {
    if (!chosen.empty()) return true;
    if (master.empty()) {
      chosen = hio::cli::default_repository_url(data_dir);
      return true;
    }
    auto r = hio::cli::repository_of_master(master);
    if (!r) {
      std::fprintf(stderr, "hio %s: %s\n", command, r.error().message.c_str());
      return false;
    }
    chosen = *r;
    return true;
  };
  if (*fe_cmd) {
    if (!repository(fe.repository, fe_master, "features")) return 1;
    return hio::cli::features(fe);
  }
  if (*kn_cmd) {
    if (!repository(kn.repository, kn_master, "knowledge")) return 1;
    return hio::cli::knowledge(kn);
  }
  if (*ex_cmd) {
    if (!repository(ex.repository, ex_master, "export")) return 1;
    ex.timeout = std::chrono::seconds(ex_timeout);
    return hio::cli::export_file(ex);
  }
  if (*sm_cmd) {
    if (sm.master.empty()) sm.master = hio::cli::default_master_url(data_dir);
    sm.progress = !quiet;
    sm.wait_stored = wait == "stored";
    return hio::cli::stream(sm);
  }
  if (*be_cmd) {
    if (be.master.empty()) be.master = hio::cli::default_master_url(data_dir);
    return hio::cli::bench(be);
  }
  return 2;
}
