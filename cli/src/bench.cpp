// `hio bench`: load generators for the figures in experiments/: tuples end to end through the real
// connector, and raw lease requests against the master.
#include <hio/cli/commands.hpp>
#include <hio/common/http.hpp>
#include <hio/common/json.hpp>
#include <hio/connector/client.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <chrono>
#include <iostream>
#include <random>
#include <thread>

namespace hio::cli {

using steady = std::chrono::steady_clock;

namespace {

// A .npy (version 1.0) of float32 counts shaped (S, T, V): what a stochastic simulation produces.
std::vector<std::byte> npy_realization(std::size_t s, std::size_t t, std::size_t v, std::mt19937_64& rng) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(s) + ", " +
                       std::to_string(t) + ", " + std::to_string(v) + "), }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<std::byte> out(10 + header.size() + s * t * v * sizeof(float));
  const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  std::memcpy(out.data(), magic, 8);
  const auto len = static_cast<std::uint16_t>(header.size());
  std::memcpy(out.data() + 8, &len, 2);
  std::memcpy(out.data() + 10, header.data(), header.size());
  std::poisson_distribution<int> counts(4.0);
  auto* values = reinterpret_cast<float*>(out.data() + 10 + header.size());
  for (std::size_t i = 0; i < s * t * v; ++i) values[i] = static_cast<float>(counts(rng));
  return out;
}

}  // namespace

int bench_tuples(const bench_options& o) {
  // Distinct random tuples (a few, reused round-robin): the sender's cost is the path, not generation.
  std::vector<std::vector<std::byte>> tuples;
  std::mt19937_64 rng(1);
  if (!o.npy.empty()) {
    std::size_t s = 0, t = 0, v = 0;
    if (std::sscanf(o.npy.c_str(), "%zux%zux%zu", &s, &t, &v) != 3 || !s || !t || !v) {
      std::cerr << "hio bench: --npy takes SxTxV, e.g. 2x3000x250\n";
      return 2;
    }
    for (int i = 0; i < 4; ++i) tuples.push_back(npy_realization(s, t, v, rng));
  } else {
    const std::size_t distinct =
        std::max<std::size_t>(1, std::min<std::size_t>(16, (256ull << 20) / std::max<std::uint64_t>(1, o.size)));
    tuples.resize(distinct);
    for (auto& t : tuples) t.resize(o.size);
    for (auto& t : tuples) {
      std::size_t i = 0;
      for (; i + 8 <= t.size(); i += 8) {
        const auto v = rng();
        std::memcpy(t.data() + i, &v, 8);  // a fixed size: inlined, so profiles of the source show the path
      }
      for (auto v = rng(); i < t.size(); ++i, v >>= 8) t[i] = static_cast<std::byte>(v);
    }
  }
  const std::uint64_t tuple_size = tuples.front().size();

  // The completion handlers capture one pointer to these, so each fits in std::function without a heap
  // allocation per tuple.
  struct tally {
    std::atomic<std::uint64_t> ok{0}, queued{0}, bad{0};
    std::atomic<bool> first_error{false};  // the first error is printed, the rest counted
  } tl;
  auto& [ok, queued, bad, first_error] = tl;
  std::atomic<std::uint64_t> sessions{0}, ucx_sessions{0};
  const auto start = steady::now();
  std::vector<std::thread> sources;
  for (int s = 0; s < o.sources; ++s)
    sources.emplace_back([&, s] {
      connector::client_options co;
      co.master_url = o.master;
      co.source_name = "bench-" + std::to_string(s);
      co.session_tuples = o.session_tuples;
      co.transport = o.transport;
      connector::client c(co);
      const std::uint64_t mine = o.count / static_cast<std::uint64_t>(o.sources) + (static_cast<std::uint64_t>(s) < o.count % static_cast<std::uint64_t>(o.sources));
      for (std::uint64_t i = 0; i < mine; ++i) {
        const auto& t = tuples[(i + static_cast<std::uint64_t>(s)) % tuples.size()];
        auto r = c.async_send_view(t, {}, [p = &tl](result<connector::send_result> res) {
          if (!res || res->status == connector::send_status::failed) {
            ++p->bad;
          } else {
            ++p->ok;
            if (res->status == connector::send_status::queued) ++p->queued;
          }
          if (!res && !p->first_error.exchange(true)) std::cerr << "hio bench: " << res.error().message << "\n";
        });
        if (!r) {
          ++bad;
          if (!first_error.exchange(true)) std::cerr << "hio bench: " << r.error().message << "\n";
        }
      }
      if (auto f = c.flush(); !f) std::cerr << "hio bench: " << f.error().message << "\n";
      const auto st = c.stats();
      sessions += st.sessions;
      ucx_sessions += st.ucx_sessions;
    });
  for (auto& t : sources) t.join();
  const double acked_secs = std::chrono::duration<double>(steady::now() - start).count();
  // A QUEUED acknowledgement means the master holds the tuple durably, not that a channel has processed it:
  // end to end lasts until the master's queue has been drained into the channels.
  bool drained = true;
  if (queued.load() > 0) {
    http::client m(o.master);
    drained = false;
    while (!drained && steady::now() - start < std::chrono::minutes(10)) {
      if (auto r = m.get("/v1/status"); r && r->status == 200) {
        const auto st = hio::parse_json_or_discarded(r->body);
        if (!st.is_discarded() && st.contains("queue") && st["queue"].value("length", 1) == 0) drained = true;
      }
      if (!drained) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!drained) std::cerr << "hio bench: the master's queue did not drain within 10 minutes\n";
  }
  const double secs = std::chrono::duration<double>(steady::now() - start).count();
  const double bytes = static_cast<double>(ok.load()) * static_cast<double>(tuple_size);
  nlohmann::json out = {{"mode", "tuples"},          {"size", tuple_size},
                        {"sources", o.sources},      {"tuples", ok.load()},
                        {"errors", bad.load()},      {"seconds", secs},
                        {"via_queue", queued.load()},  {"seconds_acknowledged", acked_secs},
                        {"tuples_per_s", static_cast<double>(ok.load()) / secs},
                        {"bytes_per_s", bytes / secs},
                        {"transport", o.transport},
                        {"sessions", sessions.load()},
                        {"ucx_sessions", ucx_sessions.load()}};
  std::cout << out.dump() << std::endl;
  return bad == 0 && drained ? 0 : 1;
}

int bench_leases(const bench_options& o) {
  // `threads` keep-alive clients; with --rate, requests are paced to that total rate (open loop).
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(o.sources));
  std::atomic<std::uint64_t> errors{0};
  const auto start = steady::now();
  std::vector<std::thread> threads;
  const std::uint64_t per_thread = o.count / static_cast<std::uint64_t>(o.sources);
  for (int t = 0; t < o.sources; ++t)
    threads.emplace_back([&, t] {
      http::client c(o.master);
      auto& lat = latencies[static_cast<std::size_t>(t)];
      lat.reserve(per_thread);
      const double interval = o.rate > 0 ? static_cast<double>(o.sources) / o.rate : 0;
      for (std::uint64_t i = 0; i < per_thread; ++i) {
        if (interval > 0) {
          const auto due = start + std::chrono::duration_cast<steady::duration>(
                                       std::chrono::duration<double>(interval * static_cast<double>(i)));
          std::this_thread::sleep_until(due);
        }
        const auto t0 = steady::now();
        auto r = c.post("/v1/streams", R"({"count":1,"source":"bench"})");
        lat.push_back(std::chrono::duration<double, std::milli>(steady::now() - t0).count());
        if (!r || r->status != 200) ++errors;
      }
    });
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(steady::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<std::size_t>(p * static_cast<double>(all.size())))]; };
  nlohmann::json out = {{"mode", "leases"},          {"threads", o.sources},
                        {"requests", all.size()},    {"errors", errors.load()},
                        {"seconds", secs},           {"leases_per_s", static_cast<double>(all.size()) / secs},
                        {"target_rate", o.rate},     {"p50_ms", pct(0.5)},
                        {"p99_ms", pct(0.99)},       {"max_ms", all.empty() ? 0.0 : all.back()}};
  std::cout << out.dump() << std::endl;
  return errors == 0 ? 0 : 1;
}

int bench(const bench_options& o) { return o.mode == "leases" ? bench_leases(o) : bench_tuples(o); }

}  // namespace hio::cli
