// hio-repository-bench: times hio::repository::store directly (no REST, no network besides PostgreSQL's).
//   hio-repository-bench put   STORE DIR RECORD_BYTES COUNT BATCH   stored records per second
//   hio-repository-bench since STORE DIR N RECORD_BYTES              discovery's incremental read at N records
// STORE is "" for SQLite in DIR, or a PostgreSQL conninfo. Prints one JSON line.
#include <hio/repository/store.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// A record whose stored blob is about `bytes`: 59 features (the HarmonicIO set) and metadata padding.
hio::feature_record make_record(std::uint64_t id, std::size_t bytes) {
  hio::feature_record r;
  r.tuple_id = id;
  r.source = "bench";
  r.size = 6 << 20;
  r.xxh3 = id * 0x9e3779b97f4a7c15ull;
  r.worker = "w1";
  r.processed_at_ms = 1'700'000'000'000;
  for (int i = 0; i < 59; ++i) r.features.push_back({"f" + std::to_string(i), 0.25 * i + static_cast<double>(id)});
  const std::size_t fixed = 16 + 16 + 59 * 15;
  r.metadata = std::string(bytes > fixed ? bytes - fixed : 0, 'x');
  return r;
}

std::unique_ptr<hio::repository::store> open(const char* store, const char* dir) {
  hio::repository::store_options o;
  o.store = store;
  o.data_dir = dir;
  auto s = hio::repository::store::open(o);
  if (!s) {
    std::fprintf(stderr, "cannot open the store: %s\n", s.error().message.c_str());
    std::exit(1);
  }
  return std::move(*s);
}

void fill(hio::repository::store& s, std::uint64_t first, std::uint64_t count, std::size_t bytes, std::size_t batch) {
  for (std::uint64_t done = 0; done < count;) {
    std::vector<hio::feature_record> b;
    for (std::size_t i = 0; i < batch && done < count; ++i, ++done) b.push_back(make_record(first + done, bytes));
    auto r = s.put(std::move(b));
    if (!r) {
      std::fprintf(stderr, "put failed: %s\n", r.error().message.c_str());
      std::exit(1);
    }
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "put" && argc == 7) {
    const std::size_t bytes = std::stoull(argv[4]);
    const std::uint64_t count = std::stoull(argv[5]);
    const std::size_t batch = std::stoull(argv[6]);
    auto s = open(argv[2], argv[3]);
    const auto t = clock_type::now();
    fill(*s, 1, count, bytes, batch);
    const double sec = seconds_since(t);
    std::printf("{\"mode\":\"put\",\"record_bytes\":%zu,\"records\":%llu,\"batch\":%zu,\"seconds\":%.3f,"
                "\"records_per_s\":%.1f,\"mib_per_s\":%.2f}\n",
                bytes, static_cast<unsigned long long>(count), batch, sec, count / sec,
                count * static_cast<double>(bytes) / sec / (1 << 20));
    return 0;
  }
  if (mode == "since" && argc == 6) {
    const std::uint64_t n = std::stoull(argv[4]);
    const std::size_t bytes = std::stoull(argv[5]);
    auto s = open(argv[2], argv[3]);
    const auto t = clock_type::now();
    fill(*s, 1, n, bytes, 1000);
    const double fill_s = seconds_since(t);
    // Discovery's tick: a poll that finds nothing new, and a read of the newest 1,000 records.
    auto last = s->since(n - 1, 10);
    if (!last || last->size() != 1) return 1;
    const auto end = last->back().cursor;
    std::vector<double> empty, page;
    for (int i = 0; i < 21; ++i) {
      auto t0 = clock_type::now();
      auto r = s->since(end, 1000);
      empty.push_back(seconds_since(t0));
      auto t1 = clock_type::now();
      auto p = s->since(end - 1000, 1000);
      page.push_back(seconds_since(t1));
      if (!r || !p || !r->empty() || p->size() != 1000) return 1;
    }
    std::printf("{\"mode\":\"since\",\"stored\":%llu,\"record_bytes\":%zu,\"fill_seconds\":%.2f,"
                "\"empty_poll_ms\":%.3f,\"read_1000_ms\":%.3f}\n",
                static_cast<unsigned long long>(n), bytes, fill_s, median(empty) * 1e3, median(page) * 1e3);
    return 0;
  }
  std::fprintf(stderr, "usage: hio-repository-bench put STORE DIR RECORD_BYTES COUNT BATCH\n"
                       "       hio-repository-bench since STORE DIR N RECORD_BYTES\n");
  return 2;
}
