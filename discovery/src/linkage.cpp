#include <hio/discovery/linkage.hpp>

#include "detail/kernels.hpp"
#include "detail/pca.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace hio::discovery {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// A merge as an algorithm finds it: the slots (observation indices standing for clusters) it joins.
struct raw_merge {
  std::size_t a = 0;
  std::size_t b = 0;
  double distance = 0;
};

// SciPy's LinkageUnionFind: cluster labels for merges taken in order of distance.
class labeller {
 public:
  explicit labeller(std::size_t n) : parent_(2 * n - 1), size_(2 * n - 1, 1), next_(n) {
    std::iota(parent_.begin(), parent_.end(), std::size_t{0});
  }

  std::size_t find(std::size_t x) {
    std::size_t root = x;
    while (parent_[root] != root) root = parent_[root];
    while (parent_[x] != root) x = std::exchange(parent_[x], root);
    return root;
  }

  std::size_t merge(std::size_t x, std::size_t y) {
    parent_[x] = parent_[y] = next_;
    size_[next_] = size_[x] + size_[y];
    return size_[next_++];
  }

 private:
  std::vector<std::size_t> parent_;
  std::vector<std::size_t> size_;
  std::size_t next_;
};

// SciPy's ordering and numbering: a stable sort by distance, then labels from a union-find.
linkage_matrix to_scipy(std::size_t n, std::vector<raw_merge> raw) {
  std::stable_sort(raw.begin(), raw.end(), [](const raw_merge& l, const raw_merge& r) { return l.distance < r.distance; });
  linkage_matrix z;
  z.observations = n;
  z.steps.reserve(raw.size());
  labeller uf(n);
  for (const raw_merge& m : raw) {
    const std::size_t x = uf.find(m.a);
    const std::size_t y = uf.find(m.b);
    linkage_step step;
    step.first = std::min(x, y);
    step.second = std::max(x, y);
    step.distance = m.distance;
    step.size = uf.merge(x, y);
    z.steps.push_back(step);
  }
  return z;
}

// The candidates of a search (clusters, or vertices outside Prim's tree), packed: position p holds one
// candidate's id, a payload (Prim's nearest distance, Ward's cluster size) and, when the filter is on,
// the candidate's leading principal coordinates, stored column by column so that the lower bounds of
// many candidates vectorise. Removal moves the last candidate into the gap, so positions follow no order;
// the searches break ties by id, as SciPy's index-ordered scans do.
//
// The filter: |R(a - b)|² <= |a - b|² for the orthonormal rows R of the leading principal axes, and
// floor_width coordinates sit in one cache line where a full row of features spans several. A search
// skips a candidate whose bound already exceeds what it would have to beat, which leaves every choice
// unchanged: the margin in floor() covers rounding in the coordinates (absolute errors below
// 1e-13 (|a| + |b|)) many times over.
class packed_candidates {
 public:
  static constexpr std::size_t width = detail::floor_width;
  static constexpr std::size_t min_cols = 2 * width;  // below this a full distance costs about as much

  // Candidates 0..n-1 with the rows of x (n of them) and payloads `payload`.
  packed_candidates(const matrix& x, std::size_t n, double payload)
      : d_(x.cols()), n_(n), count_(n), id_(n), position_(n), payload_(n, payload) {
    std::iota(id_.begin(), id_.end(), std::size_t{0});
    std::iota(position_.begin(), position_.end(), std::size_t{0});
    if (d_ < min_cols) return;
    axes_ = detail::leading_axes(x, width).axes;
    coords_.resize(width * n);
    norms_.resize(n);
    for (std::size_t p = 0; p < n; ++p) set_row(p, x.row(p).data());
  }

  bool filtered() const noexcept { return !norms_.empty(); }
  std::size_t size() const noexcept { return count_; }
  std::size_t id(std::size_t p) const noexcept { return id_[p]; }
  std::size_t position(std::size_t id) const noexcept { return position_[id]; }
  double& payload(std::size_t p) noexcept { return payload_[p]; }

  void remove(std::size_t p) noexcept {
    const std::size_t last = --count_;
    id_[p] = id_[last];
    position_[id_[p]] = p;
    payload_[p] = payload_[last];
    if (filtered()) {
      norms_[p] = norms_[last];
      for (std::size_t c = 0; c < width; ++c) coords_[c * n_ + p] = coords_[c * n_ + last];
    }
  }

  // Recomputes the principal coordinates of position p from its (new) row of features.
  void set_row(std::size_t p, const double* row) noexcept {
    double norm = 0;
    for (std::size_t j = 0; j < d_; ++j) norm += row[j] * row[j];
    norms_[p] = norm;
    for (std::size_t c = 0; c < width; ++c) {
      const double* axis = axes_.row(c).data();
      double s = 0;
      for (std::size_t j = 0; j < d_; ++j) s += axis[j] * row[j];
      coords_[c * n_ + p] = s;
    }
  }

  struct query {
    double coords[width];
    double norm;
  };
  query query_at(std::size_t p) const noexcept {
    query q{};
    for (std::size_t c = 0; c < width; ++c) q.coords[c] = coords_[c * n_ + p];
    q.norm = norms_[p];
    return q;
  }

  // gaps[i] for positions begin .. begin + count - 1, to be passed to floor().
  void gaps(const query& q, std::size_t begin, std::size_t count, double* out) const noexcept {
    detail::kernels().projected_gaps(coords_.data() + begin, n_, count, q.coords, out);
  }
  // A lower bound on the squared distance of q and position p, as squared_distance computes it.
  double floor(const query& q, double gap, std::size_t p) const noexcept {
    return gap * (1 - 1e-9) - 2e-9 * (q.norm + norms_[p]);
  }

 private:
  std::size_t d_;
  std::size_t n_;
  std::size_t count_;
  std::vector<std::size_t> id_;        // by position
  std::vector<std::size_t> position_;  // by id
  std::vector<double> payload_;        // by position
  matrix axes_;                        // width×d
  std::vector<double> coords_;         // width×n, column c of position p at [c * n + p]
  std::vector<double> norms_;          // by position: |row|², for the margin
};

// Candidates per block of vectorised lower bounds.
constexpr std::size_t gap_block = 256;
// Surviving candidates between a row being prefetched and being read.
constexpr std::size_t row_prefetch_distance = 4;

void prefetch_row(const double* row, std::size_t d) noexcept {
  const char* bytes = reinterpret_cast<const char*>(row);
  for (std::size_t offset = 0; offset < d * sizeof(double); offset += 64) __builtin_prefetch(bytes + offset);
}

// Prim's algorithm from observation 0, recording each new vertex with the one added before it (SciPy's
// and fastcluster's MST single linkage; the dendrogram is the same). Distances stay squared until output.
std::vector<raw_merge> single_linkage(const matrix& x) {
  const auto& k = detail::kernels();
  const std::size_t n = x.rows();
  const std::size_t d = x.cols();
  // Vertex 0 starts the tree, so it leaves the candidates before the first step.
  packed_candidates outside(x, n, inf);
  std::vector<raw_merge> raw;
  raw.reserve(n - 1);
  std::size_t last = 0;
  packed_candidates::query from{};
  if (outside.filtered()) from = outside.query_at(0);
  outside.remove(0);
  double gap[gap_block];
  std::size_t survivor[gap_block];
  for (std::size_t step = 0; step + 1 < n; ++step) {
    const double* row = x.row(last).data();
    double best = inf;
    std::size_t best_at = 0;
    auto consider = [&](std::size_t p) {
      const double nearest = outside.payload(p);
      if (nearest < best || (nearest == best && outside.id(p) < outside.id(best_at))) {
        best = nearest;
        best_at = p;
      }
    };
    for (std::size_t begin = 0; begin < outside.size(); begin += gap_block) {
      const std::size_t count = std::min(gap_block, outside.size() - begin);
      // Candidates the filter cannot rule out are measured in a second pass, their rows prefetched.
      std::size_t survivors = 0;
      if (outside.filtered()) {
        outside.gaps(from, begin, count, gap);
        for (std::size_t p = begin; p < begin + count; ++p) {
          if (outside.floor(from, gap[p - begin], p) > outside.payload(p)) {
            consider(p);
          } else {
            survivor[survivors++] = p;
          }
        }
      } else {
        for (std::size_t p = begin; p < begin + count; ++p) survivor[survivors++] = p;
      }
      for (std::size_t t = 0; t < survivors; ++t) {
        if (t + row_prefetch_distance < survivors)
          prefetch_row(x.row(outside.id(survivor[t + row_prefetch_distance])).data(), d);
        const std::size_t p = survivor[t];
        double& nearest = outside.payload(p);
        const double dist = k.squared_distance_bounded(row, x.row(outside.id(p)).data(), d, nearest);
        if (dist < nearest) nearest = dist;
        consider(p);
      }
    }
    const std::size_t next = outside.id(best_at);
    raw.push_back({last, next, std::sqrt(best)});
    if (outside.filtered()) from = outside.query_at(best_at);
    outside.remove(best_at);
    last = next;
  }
  return raw;
}

// Rows per tile of the square distance matrix: a tile's rows of x and its block of distances stay in cache
// while the block is mirrored across the diagonal. A row of tiles is a thread's unit of work.
constexpr std::size_t distance_tile = 64;
// Below this many observations the distances are computed on the calling thread alone.
constexpr std::size_t threaded_distances_from = 2048;

// The full n×n Euclidean distance matrix of the rows of x into dist (row-major), the diagonal +inf. Each
// distance is computed once, as squared_distance sums it, and mirrored, so dist[i n + j] and dist[j n + i]
// hold the same bits. Rows of tiles go to up to hardware_concurrency() threads, which also share the
// first-touch page faults of the fresh matrix (on the test VM a third of the time here).
void fill_square_distances(const matrix& x, double* dist) {
  const auto& k = detail::kernels();
  const std::size_t n = x.rows();
  const std::size_t d = x.cols();
  const std::size_t tiles = (n + distance_tile - 1) / distance_tile;
  std::atomic<std::size_t> next_tile{0};
  auto work = [&] {
    for (std::size_t t = next_tile.fetch_add(1); t < tiles; t = next_tile.fetch_add(1)) {
      const std::size_t i0 = t * distance_tile;
      const std::size_t i1 = std::min(n, i0 + distance_tile);
      for (std::size_t j0 = i0; j0 < n; j0 += distance_tile) {
        const std::size_t j1 = std::min(n, j0 + distance_tile);
        for (std::size_t i = i0; i < i1; i += 4)
          k.distance_rows(x.data(), d, i, std::min<std::size_t>(4, i1 - i), j0, j1, dist + i * n + j0, n);
        if (j0 == i0) continue;  // the diagonal tile holds both of its halves already
        for (std::size_t j = j0; j < j1; ++j)
          for (std::size_t i = i0; i < i1; ++i) dist[j * n + i] = dist[i * n + j];
      }
      for (std::size_t i = i0; i < i1; ++i) dist[i * n + i] = inf;
    }
  };
  const std::size_t threads =
      n < threaded_distances_from ? 1 : std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, tiles);
  std::vector<std::thread> helpers;
  for (std::size_t t = 1; t < threads; ++t) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no thread to be had: the calling thread does the rest
    }
  }
  work();
  for (std::thread& h : helpers) h.join();
}

// The smallest of row[alive[0 .. count)] and the lowest position holding it (alive is increasing); +inf
// and no position when no entry is below +inf. Four interleaved minima, each over increasing positions,
// combined with ties to the lower position: the result of SciPy's index-ordered scan.
struct row_minimum {
  double value = inf;
  std::size_t position = std::numeric_limits<std::size_t>::max();
};
row_minimum minimum_of_row(const double* row, const std::uint32_t* alive, std::size_t count) noexcept {
  double best[4] = {inf, inf, inf, inf};
  std::size_t at[4] = {};
  std::size_t k = 0;
  for (; k + 4 <= count; k += 4) {
#pragma GCC unroll 4
    for (std::size_t lane = 0; lane < 4; ++lane) {
      const double v = row[alive[k + lane]];
      if (v < best[lane]) {
        best[lane] = v;
        at[lane] = alive[k + lane];
      }
    }
  }
  for (; k < count; ++k) {
    const double v = row[alive[k]];
    if (v < best[0]) {
      best[0] = v;
      at[0] = alive[k];
    }
  }
  row_minimum m;
  for (std::size_t lane = 0; lane < 4; ++lane) {
    if (best[lane] < m.value || (best[lane] == m.value && best[lane] < inf && at[lane] < m.position)) {
      m.value = best[lane];
      m.position = at[lane];
    }
  }
  return m;
}

// SciPy's nearest-neighbour chain (complete and average) on the full square distance matrix, finding the
// same merges in the same order with the same arithmetic, ties included: a cluster's row is its SciPy
// slot, and a merged cluster keeps the higher slot, as SciPy's does.
//
// Every access is to a row: a search scans row a over the alive slots; a merge of x and y writes row y
// from rows x and y. SciPy also rewrites column y (in a square matrix a strided write per alive cluster,
// each a cache and TLB miss); here that is left undone, and a row is brought up to date (`catch_up`)
// when the chain next reads it by replaying, on that row alone, the merges made since it was last
// current: row[y] = update(row[x], row[y]) with the merge's sizes, the very operations SciPy performs on
// that row's entries, in the same order, so every value has SciPy's bits. Rows of clusters the chain
// never reads again are never brought up to date.
template <class Update>
std::vector<raw_merge> chain_on_square(const matrix& x, std::span<const double> weights, Update update) {
  const std::size_t n = x.rows();
  if (n > (std::numeric_limits<std::size_t>::max() / sizeof(double)) / n) throw std::bad_alloc();
  // Uninitialised: fill_square_distances writes every entry, in parallel, before any is read.
  std::unique_ptr<double[]> buffer(new double[n * n]);
  double* dist = buffer.get();
  fill_square_distances(x, dist);

  std::vector<std::uint32_t> alive(n);  // alive slots, increasing
  std::iota(alive.begin(), alive.end(), std::uint32_t{0});
  std::vector<double> size(weights.begin(), weights.end());
  struct merge_record {
    std::uint32_t x = 0;  // the slot dropped
    std::uint32_t y = 0;  // the slot that holds the merged cluster
    double distance = 0;
    double nx = 0;
    double ny = 0;
  };
  std::vector<merge_record> merges;
  merges.reserve(n - 1);
  std::vector<std::size_t> current(n, 0);  // row i is up to date with merges[0 .. current[i])
  auto catch_up = [&](std::size_t i) {
    double* row = dist + i * n;
    const double ni = size[i];
    for (std::size_t s = current[i]; s < merges.size(); ++s) {
      const merge_record& m = merges[s];
      row[m.y] = update(row[m.x], row[m.y], m.distance, m.nx, m.ny, ni);
    }
    current[i] = merges.size();
  };

  std::vector<std::size_t> chain;
  chain.reserve(n);
  std::vector<raw_merge> raw;
  raw.reserve(n - 1);
  for (std::size_t step = 0; step + 1 < n; ++step) {
    if (chain.empty()) chain.push_back(alive.front());
    std::size_t a = 0;
    std::size_t b = 0;
    double best = inf;
    for (;;) {
      a = chain.back();
      catch_up(a);
      const double* row = dist + a * n;
      const row_minimum m = minimum_of_row(row, alive.data(), alive.size());  // row[a] is +inf
      // SciPy's choice: the previous chain element unless something is strictly nearer, else the
      // lowest-slotted of the nearest.
      if (chain.size() > 1) {
        b = chain[chain.size() - 2];
        best = row[b];
        if (m.value < best) {
          best = m.value;
          b = m.position;
        }
      } else if (m.value < inf) {
        best = m.value;
        b = m.position;
      } else {
        best = inf;  // every distance overflowed: the lowest other slot
        b = alive.front() != a ? alive.front() : alive[1];
      }
      if (chain.size() > 1 && b == chain[chain.size() - 2]) break;
      chain.push_back(b);
    }
    chain.resize(chain.size() - 2);
    // SciPy's bookkeeping: x (the lower slot) is dropped, y holds the merged cluster.
    const std::size_t lo = std::min(a, b);
    const std::size_t hi = std::max(a, b);
    catch_up(lo);
    catch_up(hi);
    const double nx = size[lo];
    const double ny = size[hi];
    raw.push_back({lo, hi, best});
    alive.erase(std::lower_bound(alive.begin(), alive.end(), static_cast<std::uint32_t>(lo)));
    const double* row_x = dist + lo * n;
    double* row_y = dist + hi * n;
    for (const std::uint32_t i : alive) {
      if (i == hi) continue;
      row_y[i] = update(row_x[i], row_y[i], best, nx, ny, size[i]);
    }
    size[hi] = nx + ny;
    merges.push_back({static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(hi), best, nx, ny});
    current[hi] = merges.size();
  }
  return raw;
}

// The nearest-neighbour chain for Ward on centroids: the Ward distance of clusters A and B is
// sqrt(2 nA nB / (nA + nB)) |cA - cB|, which is what SciPy's Lance-Williams update yields. Compared squared.
// The same chain, tie rule and slot bookkeeping as SciPy's nn_chain; clusters are scanned as packed
// candidates with the principal-coordinate filter.
std::vector<raw_merge> ward_on_centroids(const matrix& x, std::span<const double> weights) {
  const auto& k = detail::kernels();
  const std::size_t n = x.rows();
  const std::size_t d = x.cols();
  std::vector<double> centre(x.values());  // by slot
  packed_candidates alive(x, n, 1.0);      // ids are SciPy slots, payloads cluster sizes
  for (std::size_t i = 0; i < n; ++i) alive.payload(i) = weights[i];
  auto size_of = [&](std::size_t slot) -> double& { return alive.payload(alive.position(slot)); };
  auto ward = [&](std::size_t i, std::size_t j) {
    const double f = 2.0 * size_of(i) * size_of(j) / (size_of(i) + size_of(j));
    return f * k.squared_distance(centre.data() + i * d, centre.data() + j * d, d);
  };
  std::vector<bool> slot_alive(n, true);
  std::size_t lowest_slot = 0;
  std::vector<std::size_t> chain;  // slots
  chain.reserve(n);
  std::vector<raw_merge> raw;
  raw.reserve(n - 1);
  double gap[gap_block];
  std::size_t survivor[gap_block];
  for (std::size_t step = 0; step + 1 < n; ++step) {
    if (chain.empty()) {
      while (!slot_alive[lowest_slot]) ++lowest_slot;
      chain.push_back(lowest_slot);
    }
    std::size_t a = 0;
    std::size_t b = 0;
    double best = inf;
    for (;;) {
      a = chain.back();
      // SciPy's choice: the previous chain element unless something is strictly nearer, else the
      // lowest-numbered of the nearest; `kept` says the previous element still holds.
      bool kept = chain.size() > 1;
      if (kept) {
        b = chain[chain.size() - 2];
        best = ward(a, b);
      } else {
        best = inf;
      }
      const std::size_t pa = alive.position(a);
      const double na = alive.payload(pa);
      const double* ca = centre.data() + a * d;
      packed_candidates::query from{};
      if (alive.filtered()) from = alive.query_at(pa);
      for (std::size_t begin = 0; begin < alive.size(); begin += gap_block) {
        const std::size_t count = std::min(gap_block, alive.size() - begin);
        // Ward's factor 2 na ni / (na + ni) sits on the other side of each comparison with the floor.
        auto ruled_out = [&](std::size_t p) {
          const double ni = alive.payload(p);
          return alive.floor(from, gap[p - begin], p) * (2.0 * na * ni) > best * (na + ni);
        };
        // Candidates the filter cannot rule out are measured in a second pass, their rows prefetched.
        std::size_t survivors = 0;
        if (alive.filtered()) {
          alive.gaps(from, begin, count, gap);
          for (std::size_t p = begin; p < begin + count; ++p)
            if (p != pa && !ruled_out(p)) survivor[survivors++] = p;
        } else {
          for (std::size_t p = begin; p < begin + count; ++p)
            if (p != pa) survivor[survivors++] = p;
        }
        for (std::size_t t = 0; t < survivors; ++t) {
          if (t + row_prefetch_distance < survivors)
            prefetch_row(centre.data() + alive.id(survivor[t + row_prefetch_distance]) * d, d);
          const std::size_t p = survivor[t];
          if (alive.filtered() && ruled_out(p)) continue;  // best has fallen since the first pass
          const double ni = alive.payload(p);
          const double scale = 2.0 * na * ni;
          const double sum = na + ni;
          const std::size_t i = alive.id(p);
          const double bound = best * sum / scale;
          const double v = scale / sum * k.squared_distance_bounded(ca, centre.data() + i * d, d, bound);
          if (v < best) {
            best = v;
            b = i;
            kept = false;
          } else if (v == best && !kept && i < b) {
            b = i;
          }
        }
      }
      if (chain.size() > 1 && b == chain[chain.size() - 2]) break;
      chain.push_back(b);
    }
    chain.resize(chain.size() - 2);
    if (a > b) std::swap(a, b);
    const double na = size_of(a);
    const double nb = size_of(b);
    raw.push_back({a, b, std::sqrt(best)});
    alive.remove(alive.position(a));
    slot_alive[a] = false;
    size_of(b) = na + nb;
    double* cb = centre.data() + b * d;
    const double* ca = centre.data() + a * d;
    const double pull = na / (na + nb);  // equal centroids stay bit-for-bit equal, so duplicates stay at 0
    for (std::size_t j = 0; j < d; ++j) cb[j] += (ca[j] - cb[j]) * pull;
    if (alive.filtered()) alive.set_row(alive.position(b), cb);
  }
  return raw;
}

error bad_input(std::string message) { return make_error(400, std::move(message)); }

}  // namespace

std::string_view to_string(linkage_method method) noexcept {
  switch (method) {
    case linkage_method::single: return "single";
    case linkage_method::complete: return "complete";
    case linkage_method::average: return "average";
    case linkage_method::ward: return "ward";
  }
  return "?";
}

std::optional<linkage_method> parse_linkage_method(std::string_view name) noexcept {
  for (auto m : {linkage_method::single, linkage_method::complete, linkage_method::average, linkage_method::ward})
    if (name == to_string(m)) return m;
  return std::nullopt;
}

result<linkage_matrix> linkage(const matrix& x, linkage_method method) {
  const std::vector<double> ones(x.rows(), 1.0);
  return linkage(x, ones, method);
}

result<linkage_matrix> linkage(const matrix& x, std::span<const double> weights, linkage_method method) {
  if (weights.size() != x.rows())
    return bad_input("linkage: " + std::to_string(weights.size()) + " weights for " + std::to_string(x.rows()) +
                     " observations");
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (!(weights[i] > 0) || !std::isfinite(weights[i]))
      return bad_input("linkage: the weight of observation " + std::to_string(i) + " is not positive and finite");
  for (std::size_t i = 0; i < x.values().size(); ++i)
    if (!std::isfinite(x.values()[i]))
      return bad_input("linkage: observation " + std::to_string(i / x.cols()) + " has a NaN or infinite value");
  const std::size_t n = x.rows();
  if (n < 2) return linkage_matrix{n, {}};
  std::vector<raw_merge> raw;
  try {
    switch (method) {
      case linkage_method::single: raw = single_linkage(x); break;
      case linkage_method::complete:
        raw = chain_on_square(x, weights, [](double da, double db, double, double, double, double) { return std::max(da, db); });
        break;
      case linkage_method::average:
        raw = chain_on_square(x, weights, [](double da, double db, double, double na, double nb, double) {
          return (na * da + nb * db) / (na + nb);
        });
        break;
      case linkage_method::ward: raw = ward_on_centroids(x, weights); break;
    }
  } catch (const std::bad_alloc&) {
    const double gib = static_cast<double>(n) * static_cast<double>(n) * sizeof(double) / (1u << 30);
    return make_error(413, "linkage: not enough memory for " + std::string(to_string(method)) + " linkage of " +
                               std::to_string(n) + " observations (complete and average need " +
                               std::to_string(static_cast<long long>(std::ceil(gib))) +
                               " GiB for distances); use fewer observations or the two-stage method");
  }
  return to_scipy(n, std::move(raw));
}

}  // namespace hio::discovery
