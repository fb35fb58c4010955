// hio-master: leases, the overflow queue, worker registry, status. See docs/api.md.
#include <hio/common/log.hpp>
#include <hio/common/process.hpp>
#include <hio/common/secret.hpp>
#include <hio/master/master.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

int main(int argc, char** argv) {
  hio::block_stop_signals();
  hio::master::options o;
  o.secret = hio::env_or("HIO_SECRET");
  o.source_token = hio::env_or("HIO_SOURCE_TOKEN");
  std::string port_file, log_level = "info", data_dir = o.data_dir.string();
  std::uint64_t queue_memory_mib = o.queue_memory_bytes >> 20, queue_max_gib = o.queue_max_bytes >> 30;
  int lease_ttl = static_cast<int>(o.lease_ttl.count()), worker_timeout_ms = static_cast<int>(o.worker_timeout.count());

  CLI::App app{"hio-master: hands out leases to sources, queues overflow, tracks workers"};
  app.set_config("--config", "", "Read options from this TOML/INI file");
  app.add_option("--host", o.host, "Address for REST and the queue's data port")->capture_default_str();
  app.add_option("--port", o.port, "REST port (0: any free port)")->capture_default_str();
  app.add_option("--advertise-host", o.advertise_host, "Host sources use to reach the queue port (default: --host)");
  app.add_option("--data-port", o.data_port, "The queue's data port (0: any free port)")->capture_default_str();
  app.add_option("--control-port", o.control_port,
                 "Workers' heartbeats, served on a thread of its own (0: any free port)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "Where ids and the overflow queue live")->capture_default_str();
  std::string secret_file, token_file;
  app.add_option("--secret", o.secret, "Cluster secret (default: $HIO_SECRET; visible in ps: prefer the file)");
  app.add_option("--secret-file", secret_file, "Read the cluster secret from this file's first line");
  app.add_option("--source-token", o.source_token, "Token sources must present (default: $HIO_SOURCE_TOKEN; none)");
  app.add_option("--source-token-file", token_file, "Read the source token from this file's first line");
  app.add_option("--lease-ttl-s", lease_ttl, "Seconds a lease's connection may take to start")->capture_default_str();
  app.add_option("--max-session-tuples", o.max_session_tuples, "Most tuple ids per lease")->capture_default_str();
  app.add_option("--max-tuple-bytes", o.max_tuple_bytes, "Largest tuple accepted, bytes")->capture_default_str();
  app.add_option("--queue-memory-mib", queue_memory_mib, "Queued bytes kept in memory, MiB")->capture_default_str();
  app.add_option("--queue-max-gib", queue_max_gib, "Queue size past which leases get 503, GiB")->capture_default_str();
  app.add_option("--worker-timeout-ms", worker_timeout_ms, "Silence after which a worker is removed")->capture_default_str();
  app.add_option("--dispatch-threads", o.dispatch_threads, "Concurrent queue-to-channel transfers")->capture_default_str();
  app.add_option("--http-threads", o.http_threads, "Threads serving REST")->capture_default_str();
  app.add_option("--max-connections-per-peer", o.connections.per_peer,
                 "Connections one address may hold at once, per port (0: no limit)")->capture_default_str();
  app.add_option("--max-connections", o.connections.total,
                 "Connections a port may hold at once (0: no limit)")->capture_default_str();
  app.add_option("--port-file", port_file, "Write the REST port here once listening");
  app.add_option("--repository", o.repository_url, "Repository URL: for the dashboard and the workers the master starts");
  app.add_flag("!--no-dashboard", o.dashboard, "Do not serve the dashboard at /");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  int target_delay_ms = static_cast<int>(o.scaling.target_delay.count());
  int out_cooldown_ms = static_cast<int>(o.scaling.scale_out_cooldown.count());
  int in_cooldown_ms = static_cast<int>(o.scaling.scale_in_cooldown.count());
  int interval_ms = static_cast<int>(o.scaling_interval.count());
  auto* scaling = app.add_option_group("Scaling", "The master starts and stops workers with the load");
  scaling->add_flag("--autoscale", o.autoscale, "Scale workers with the load");
  scaling->add_option("--provisioner", o.provisioner, "local, slurm, kubernetes, or command:<scale-out script>|<scale-in script>")
      ->capture_default_str();
  scaling->add_option("--min-workers", o.scaling.min_workers, "Fewest workers")->capture_default_str();
  scaling->add_option("--max-workers", o.scaling.max_workers, "Most workers")->capture_default_str();
  scaling->add_flag("--scale-to-zero", o.scaling.scale_to_zero, "Stop every worker when there is no load");
  scaling->add_option("--target-delay-ms", target_delay_ms, "A queued tuple should wait at most this")->capture_default_str();
  scaling->add_option("--scale-out-cooldown-ms", out_cooldown_ms, "Between scale-outs")->capture_default_str();
  scaling->add_option("--scale-in-cooldown-ms", in_cooldown_ms, "Spare capacity must last this long")->capture_default_str();
  scaling->add_option("--scaling-interval-ms", interval_ms, "How often the policy decides")->capture_default_str();
  scaling->add_option("--worker-bin", o.workers.worker_bin, "hio-worker to start (default: beside hio-master)");
  scaling->add_option("--worker-channels", o.workers.channels, "Channels per started worker (0: one per core)");
  scaling->add_option("--worker-processor", o.workers.processor, "Processor of started workers")->capture_default_str();
  scaling->add_option("--worker-log-dir", o.workers.log_dir, "Where started workers log (default: the master's stderr)");
  auto& sl = o.workers.slurm;
  auto& k8s = o.workers.kubernetes;
  double slurm_stop_timeout_s = std::chrono::duration<double>(sl.stop_timeout).count();
  auto* slurm = app.add_option_group("Slurm", "--provisioner slurm: one batch job per worker (docs/scaling.md)");
  slurm->add_option("--slurm-partition", sl.partition, "Partition of the jobs (default: the cluster's)");
  slurm->add_option("--slurm-args", sl.extra_args, "More sbatch arguments, e.g. \"--time=8:00:00 --mem=8G\"");
  slurm->add_option("--slurm-worker-host", sl.worker_host, "Workers' --host (default: the node's first address)");
  slurm->add_option("--slurm-stop-timeout-s", slurm_stop_timeout_s, "scancel a drained job still running after this")
      ->capture_default_str();
  slurm->add_option("--slurm-sbatch", sl.sbatch, "sbatch command")->capture_default_str();
  slurm->add_option("--slurm-squeue", sl.squeue, "squeue command")->capture_default_str();
  slurm->add_option("--slurm-scancel", sl.scancel, "scancel command")->capture_default_str();
  auto* kube = app.add_option_group("Kubernetes", "--provisioner kubernetes: a StatefulSet of workers (deploy/kubernetes)");
  kube->add_option("--k8s-namespace", k8s.ns, "Namespace (default: the pod's own)");
  kube->add_option("--k8s-statefulset", k8s.statefulset, "The workers' StatefulSet")->capture_default_str();
  kube->add_option("--k8s-api-server", k8s.api_server, "API server URL (default: from $KUBERNETES_SERVICE_HOST/PORT)");
  kube->add_option("--k8s-token-file", k8s.token_file, "Service-account token")->capture_default_str();
  kube->add_option("--k8s-ca-file", k8s.ca_file, "CA of the API server")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  sl.stop_timeout = std::chrono::milliseconds(static_cast<long long>(slurm_stop_timeout_s * 1000));
  o.workers.secret = o.secret;
  o.workers.repository_url = o.repository_url;
  o.scaling.target_delay = std::chrono::milliseconds(target_delay_ms);
  o.scaling.scale_out_cooldown = std::chrono::milliseconds(out_cooldown_ms);
  o.scaling.scale_in_cooldown = std::chrono::milliseconds(in_cooldown_ms);
  o.scaling_interval = std::chrono::milliseconds(interval_ms);
  o.scaling.channels_per_worker = o.workers.channels > 0 ? o.workers.channels : 2;
  if (o.workers.worker_bin.empty()) {
    std::error_code ec;
    o.workers.worker_bin = (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "hio-worker").string();
  }
  o.workers.host = o.advertise_host.empty() ? o.host : o.advertise_host;
  if (o.autoscale && o.workers.repository_url.empty()) {
    std::fprintf(stderr, "--autoscale needs --repository URL for the workers it starts\n");
    return 2;
  }

  hio::init_logging("master", log_level);
  hio::stop_with_parent();  // started by `hio up`: stop when it dies
  auto secret = hio::start_daemon(argc, argv, o.secret, secret_file);
  if (!secret) return 2;
  auto token = hio::daemon_secret(o.source_token, token_file, false, "source token");  // optional
  if (!token) {
    spdlog::error("{}", token.error().message);
    return 2;
  }
  o.secret = *secret;
  o.source_token = *token;
  o.data_dir = data_dir;
  o.queue_memory_bytes = queue_memory_mib << 20;
  o.queue_max_bytes = queue_max_gib << 30;
  o.lease_ttl = std::chrono::seconds(lease_ttl);
  o.worker_timeout = std::chrono::milliseconds(worker_timeout_ms);

  auto m = hio::master::master::start(o);
  if (!m) {
    spdlog::error("cannot start: {}", m.error().message);
    return 1;
  }
  spdlog::info("listening on http://{}:{} (queue data port {}), data in {}", o.host, (*m)->port(),
               (*m)->data_port(), o.data_dir.string());
  if (!port_file.empty())
    if (auto r = hio::write_port_file(port_file, (*m)->port()); !r) spdlog::error("{}", r.error().message);
  const int sig = hio::wait_for_signal();
  spdlog::info("signal {}: stopping", sig);
  (*m)->stop();
  return 0;
}
