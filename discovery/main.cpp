// hio-discovery: every --interval-s seconds, pulls the feature records the repository stored since its
// last tick, clusters all it has pulled and publishes the knowledge to the repository (docs/discovery.md).

#include <hio/common/log.hpp>
#include <hio/common/process.hpp>
#include <hio/common/secret.hpp>
#include <hio/discovery/service.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <signal.h>

#include <cerrno>
#include <cmath>
#include <ctime>
#include <string>

namespace {

// Waits up to `seconds` for SIGINT/SIGTERM (blocked in every thread); true when one arrived.
bool stop_requested_within(double seconds) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec wait{};
  wait.tv_sec = static_cast<time_t>(std::floor(seconds));
  wait.tv_nsec = static_cast<long>((seconds - std::floor(seconds)) * 1e9);
  for (;;) {
    const int sig = ::sigtimedwait(&set, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("signal {}: stopping", sig);
      return true;
    }
    if (sig < 0 && errno == EINTR) continue;  // the remaining time is not tracked: a short extra wait is fine
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  hio::block_stop_signals();
  CLI::App app{"hio-discovery: clusters the stored features and publishes knowledge to the repository"};
  hio::discovery::service_options options;
  std::string data_dir = options.data_dir.string();
  std::string method = "ward";
  std::string log_level = "info";
  double interval_s = 60;
  bool once = false;
  app.add_option("--repository", options.repository, "Repository URL")->envname("HIO_REPOSITORY")->capture_default_str();
  std::string secret_file;
  app.add_option("--secret", options.secret, "Cluster secret for publishing knowledge (visible in ps: prefer $HIO_SECRET)")
      ->envname("HIO_SECRET");
  app.add_option("--secret-file", secret_file, "Read the cluster secret from this file's first line");
  app.add_option("--data-dir", data_dir, "Directory of this service's copy of the rows")->capture_default_str();
  app.add_option("--interval-s", interval_s, "Seconds between ticks")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--method", method, "Linkage: single, complete, average or ward")
      ->check(CLI::IsMember({"single", "complete", "average", "ward"}))->capture_default_str();
  std::string criterion{hio::discovery::to_string(options.knowledge.cut.criterion)};
  app.add_option("--cut", criterion,
                 "Flat clusters: mojena (merges whose log height stands out), the best level by silhouette "
                 "or calinski-harabasz, or the middle of the widest gap (widest-gap)")
      ->check(CLI::IsMember({"mojena", "silhouette", "calinski-harabasz", "widest-gap"}))->capture_default_str();
  app.add_option("--mojena-c", options.knowledge.cut.mojena_c,
                 "mojena: a merge separates clusters when its log height is this many sd above the mean")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-clusters", options.knowledge.cut.max_clusters, "Flat clusters: levels scored, up to this many clusters")
      ->check(CLI::Range(std::size_t{2}, std::size_t{1000}))->capture_default_str();
  auto* threshold = app.add_option("--threshold", options.knowledge.threshold,
                                   "Flat clusters: cut the tree at this distance")->check(CLI::PositiveNumber);
  app.add_option("--k", options.knowledge.clusters, "Flat clusters: at most this many")
      ->check(CLI::PositiveNumber)->excludes(threshold);
  app.add_option("--exact-max", options.knowledge.exact_max,
                 "Cluster up to this many parameter points exactly, more in two stages")->capture_default_str();
  app.add_option("--page", options.page_records, "Rows per request to the repository")->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
  app.add_flag("--once", once, "Run one tick (always publishing) and exit: 0 when it succeeded");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.data_dir = data_dir;
  options.knowledge.method = *hio::discovery::parse_linkage_method(method);
  options.knowledge.cut.criterion = *hio::discovery::parse_cut_criterion(criterion);

  hio::init_logging("discovery", log_level);
  hio::stop_with_parent();  // started by `hio up`: stop when it dies
  auto secret = hio::start_daemon(argc, argv, options.secret, secret_file);
  if (!secret) return 2;
  options.secret = *secret;
  auto opened = hio::discovery::discovery_service::open(options);
  if (!opened) {
    spdlog::error("cannot open {}: {}", data_dir, opened.error().message);
    return 1;
  }
  auto& service = **opened;
  spdlog::info("repository {}, data in {}, resuming after cursor {}, method {}, cut {}, every {} s",
               options.repository, data_dir, service.cursor(), method, criterion, interval_s);

  for (;;) {
    auto t = service.tick();
    if (t) {
      spdlog::info("tick: pulled {} rows (log {}, cursor {}), {} parameter points, {} clusters ({}), {} in {:.3f} s",
                   t->pulled, t->rows, t->cursor, t->groups, t->clusters, t->cut,
                   t->version ? "published version " + std::to_string(t->version) : std::string("nothing new"),
                   t->seconds);
    } else {
      spdlog::error("tick failed: {}", t.error().message);
    }
    if (once) return t ? 0 : 1;
    if (stop_requested_within(interval_s)) break;
  }
  spdlog::info("stopped");
  return 0;
}
