// `hio stream`: sends files as tuples, with a progress bar, and says which files did not arrive.
#include <hio/cli/commands.hpp>
#include <hio/common/http.hpp>
#include <hio/common/json.hpp>
#include <hio/connector/client.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <mutex>
#include <thread>

namespace hio::cli {

namespace {

// A file mapped read-only: sent straight from the page cache, no copy.
struct mapped_file {
  void* data = nullptr;
  std::size_t size = 0;
  ~mapped_file() {
    if (data && size) ::munmap(data, size);
  }
};

// Waits until each queued tuple (file index, tuple id) has its record in the repository, read through
// the master's /v1/tuples/<id>. A failed record becomes that file's problem. Returns the number of files
// still not stored at the deadline.
std::size_t wait_until_stored(const std::string& master, std::vector<std::pair<std::size_t, std::uint64_t>> acked,
                              std::vector<std::string>& problems, bool progress, std::chrono::seconds timeout) {
  std::ranges::sort(acked, {}, [](const auto& q) { return q.second; });
  std::deque<std::pair<std::size_t, std::uint64_t>> queued(acked.begin(), acked.end());
  http::client c(master);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto last_note = std::chrono::steady_clock::now();
  while (!queued.empty()) {
    // The queue hands a source's tuples on oldest first, so each round asks in id order and stops at the
    // first that is not stored yet: a round costs about one request per tuple stored since the last.
    while (!queued.empty()) {
      const auto& [file, id] = queued.front();
      auto r = c.get("/v1/tuples/" + std::to_string(id));
      if (!r || r->status != 200) break;  // not stored yet (404), or the master is busy: next round
      const nlohmann::json j = parse_json_or_discarded(r->body);
      if (j.is_discarded() || !j.is_object()) break;
      const auto text = [&](const char* key) {
        return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
      };
      if (text("status") == "failed") {
        const auto error = text("error");
        problems[file] = "processing failed: " + (error.empty() ? std::string("no reason given") : error);
      }
      queued.pop_front();
    }
    if (queued.empty()) break;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      for (const auto& [i, id] : queued)
        problems[i] = "queued (tuple " + std::to_string(id) + "), not stored within " + std::to_string(timeout.count()) + " s";
      return queued.size();
    }
    if (progress && now - last_note >= std::chrono::seconds(2)) {
      std::fprintf(stderr, "hio stream: waiting for %zu queued tuples to be stored\n", queued.size());
      last_note = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return 0;
}

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

int stream(const stream_options& o) {
  connector::client_options co;
  co.master_url = o.master;
  co.source_name = o.source.empty() ? "hio-stream@" + hostname() : o.source;
  co.source_token = o.token;
  co.session_tuples = o.session_tuples;
  co.compress = o.compress;
  co.transport = o.transport;
  connector::client client(co);

  const std::size_t n = o.files.size();
  std::vector<std::string> problems(n);
  std::mutex problems_mutex;
  std::atomic<std::size_t> done{0}, ok{0};
  std::atomic<std::uint64_t> bytes_done{0};
  std::vector<std::pair<std::size_t, std::uint64_t>> queued;  // (file, tuple id) acknowledged QUEUED; under problems_mutex
  std::uint64_t bytes_total = 0;
  std::vector<std::unique_ptr<mapped_file>> maps(n);
  const auto start = std::chrono::steady_clock::now();
  const bool tty = o.progress && ::isatty(2);

  auto draw = [&](bool last) {
    if (!o.progress) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::size_t d = done.load();
    const int width = 30;
    const int filled = n ? static_cast<int>(width * d / n) : width;
    std::string bar(static_cast<std::size_t>(filled), '=');
    if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), ' ');
    std::fprintf(stderr, "%s[%s] %zu/%zu files  %s  %s/s%s", tty ? "\r" : "", bar.c_str(), d, n,
                 human_bytes(static_cast<double>(bytes_done.load())).c_str(),
                 human_bytes(secs > 0 ? static_cast<double>(bytes_done.load()) / secs : 0).c_str(),
                 tty && !last ? "" : "\n");
  };
  bool finished = false;
  std::mutex paint_mutex;
  std::condition_variable paint_cv;
  std::thread painter([&] {
    std::unique_lock lock(paint_mutex);
    while (!paint_cv.wait_for(lock, std::chrono::milliseconds(tty ? 200 : 2000), [&] { return finished; }))
      draw(false);
  });

  for (std::size_t i = 0; i < n; ++i) {
    const std::string& path = o.files[i];
    auto fail = [&](std::string why) {
      std::lock_guard lock(problems_mutex);
      problems[i] = std::move(why);
      ++done;
    };
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fail(std::string("cannot open: ") + std::strerror(errno));
      continue;
    }
    struct stat st {};
    ::fstat(fd, &st);
    auto m = std::make_unique<mapped_file>();
    m->size = static_cast<std::size_t>(st.st_size);
    if (m->size > 0) {
      // Populated at once: the pages are read ahead (or taken from the page cache) in one call instead of
      // one fault per 4 KiB page while the tuple is hashed and sent.
      m->data = ::mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      if (m->data == MAP_FAILED) {
        m->data = nullptr;
        ::close(fd);
        fail(std::string("cannot map: ") + std::strerror(errno));
        continue;
      }
    }
    ::close(fd);
    bytes_total += m->size;
    const std::span<const std::byte> view(static_cast<const std::byte*>(m->data), m->size);
    const std::string meta = nlohmann::json{{"file", path}}.dump();
    maps[i] = std::move(m);
    auto sent = client.async_send_view(view, meta, [&, i](result<connector::send_result> r) {
      if (!r) {
        std::lock_guard lock(problems_mutex);
        problems[i] = r.error().message;
      } else if (r->status == connector::send_status::failed) {
        std::lock_guard lock(problems_mutex);
        problems[i] = "processing failed: " + r->reason;
      } else {
        if (r->status == connector::send_status::queued) {
          std::lock_guard lock(problems_mutex);
          queued.emplace_back(i, r->tuple_id);
        }
        ++ok;
      }
      bytes_done += maps[i] ? maps[i]->size : 0;
      maps[i].reset();  // the connector is done with the bytes: unmapped, so memory stays bounded
      ++done;
    });
    if (!sent) fail(sent.error().message);
  }
  auto flushed = client.flush();
  {
    std::lock_guard lock(paint_mutex);
    finished = true;
  }
  paint_cv.notify_all();
  painter.join();
  draw(true);
  maps.clear();
  if (o.wait_stored && !queued.empty()) {
    const std::size_t before = queued.size();
    const std::size_t late = wait_until_stored(o.master, std::move(queued), problems, o.progress, o.wait_timeout);
    if (o.progress) std::cerr << "hio stream: " << before - late << " of " << before << " queued tuples stored since\n";
    ok -= late;
  }

  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!problems[i].empty()) {
      if (bad++ == 0) std::cerr << "hio stream: these files were not delivered:\n";
      std::cerr << "  " << o.files[i] << ": " << problems[i] << "\n";
    }
  if (!flushed) std::cerr << "hio stream: " << flushed.error().message << "\n";
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (const auto st = client.stats(); st.resent_tuples > 0)
    std::cerr << "hio stream: " << st.resent_tuples << " sends were repeated through " << st.retry_leases
              << " retry leases after " << st.failed_sessions << " failed sessions (each file is stored once)\n";
  const auto st = client.stats();
  std::cerr << "hio stream: " << ok.load() << " of " << n << " files delivered (" << human_bytes(static_cast<double>(bytes_total))
            << " in " << secs << " s; sessions: " << st.sessions - st.ucx_sessions << " tcp, " << st.ucx_sessions
            << " ucx)\n";
  return bad == 0 && flushed ? 0 : 1;
}

}  // namespace hio::cli
