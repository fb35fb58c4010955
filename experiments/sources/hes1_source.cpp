// hio-sim-source: stochastic simulations of a spatial Hes1 oscillator, streamed to hio as .npy tuples.
// The model, the reactions and how the regime is decided: experiments/sources/README.md.

#include <hio/connector/client.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

namespace {

struct params {
  double hill_n, repression_k, alpha_m, alpha_p, mu_m, mu_p, k_t, diffusion;
};

struct sweep_ranges {
  double n_lo = 1.0, n_hi = 10.0;
  double k_t_lo = 0.01, k_t_hi = 0.1;
  double mu_m_lo = 0.01, mu_m_hi = 0.05;
  double mu_p_lo = 0.01, mu_p_hi = 0.05;
  double d_lo = 0.001, d_hi = 0.1;
};

// xoshiro256** seeded with splitmix64.
class rng {
 public:
  explicit rng(std::uint64_t seed) {
    for (auto& s : s_) s = splitmix(seed);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double open_uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(open_uniform()));
    const double a = 2.0 * std::numbers::pi * uniform();
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return r * std::cos(a);
  }
  // Exact (multiplication method) below a mean of 12, normal approximation above.
  std::int64_t poisson(double mean) {
    if (mean <= 0.0) return 0;
    if (mean < 12.0) {
      const double limit = std::exp(-mean);
      std::int64_t k = 0;
      double p = uniform();
      while (p > limit) {
        ++k;
        p *= uniform();
      }
      return k;
    }
    return std::max<std::int64_t>(0, std::llround(mean + std::sqrt(mean) * normal()));
  }
  static std::uint64_t splitmix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

double repression(const params& p, double nuclear_protein) {
  return p.alpha_m / (1.0 + std::pow(nuclear_protein / p.repression_k, p.hill_n));
}

struct steady_state {
  double m, p1, p2, p3;
};

steady_state homogeneous_steady_state(const params& p) {
  auto chain = [&](double p3) {
    const double m = repression(p, p3) / p.mu_m;
    const double p1 = p.alpha_p * m / (p.k_t + p.mu_p);
    const double p2 = p.k_t * p1 / (p.k_t + p.mu_p);
    return steady_state{m, p1, p2, p.k_t * p2 / p.mu_p};
  };
  double lo = 0.0, hi = chain(0.0).p3;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (chain(mid).p3 > mid ? lo : hi) = mid;
  }
  return chain(0.5 * (lo + hi));
}

struct stability {
  bool oscillating;
  double gain_ratio;  // loop gain over the gain at the Hopf point: > 1 oscillating
  double period;      // 2 pi / the frequency where the loop's phase lag reaches pi
};

// The linearised loop M -> P1 -> P2 -> P3 -| M has characteristic equation prod_i (s + d_i) + G = 0;
// its steady state is unstable (a Hopf bifurcation has occurred) iff |prod_i (i w + d_i)| < G at the
// frequency w where sum_i atan(w / d_i) = pi.
stability linear_stability(const params& p) {
  const steady_state ss = homogeneous_steady_state(p);
  const double x = std::pow(ss.p3 / p.repression_k, p.hill_n);
  const double slope = p.alpha_m * p.hill_n * x / ss.p3 / ((1.0 + x) * (1.0 + x));
  const double gain = slope * p.alpha_p * p.k_t * p.k_t;
  const std::array<double, 4> d{p.mu_m, p.k_t + p.mu_p, p.k_t + p.mu_p, p.mu_p};
  double lo = 0.0, hi = 1e3;
  for (int i = 0; i < 200; ++i) {
    const double w = 0.5 * (lo + hi);
    double phase = 0.0;
    for (double di : d) phase += std::atan(w / di);
    (phase < std::numbers::pi ? lo : hi) = w;
  }
  const double w = 0.5 * (lo + hi);
  double magnitude = 1.0;
  for (double di : d) magnitude *= std::hypot(w, di);
  return {gain > magnitude, gain / magnitude, 2.0 * std::numbers::pi / w};
}

// Per voxel: M, P1, P2, P3. Recorded: M and P1 + P2 + P3.
constexpr int n_species = 4;

struct lattice {
  int voxels;
  std::vector<std::int64_t> x;  // [voxel][species]
  std::int64_t& at(int v, int s) { return x[static_cast<std::size_t>(v) * n_species + s]; }
};

lattice initial_state(const params& p, int voxels, rng& g) {
  const steady_state ss = homogeneous_steady_state(p);
  lattice l{voxels, std::vector<std::int64_t>(static_cast<std::size_t>(voxels) * n_species)};
  for (int v = 0; v < voxels; ++v) {
    l.at(v, 0) = g.poisson(ss.m);
    l.at(v, 1) = g.poisson(ss.p1);
    l.at(v, 2) = g.poisson(ss.p2);
    l.at(v, 3) = g.poisson(ss.p3);
  }
  return l;
}

void record(lattice& l, float* out, int t, int timepoints) {
  const std::size_t plane = static_cast<std::size_t>(timepoints) * l.voxels;
  for (int v = 0; v < l.voxels; ++v) {
    const std::size_t i = static_cast<std::size_t>(t) * l.voxels + v;
    out[i] = static_cast<float>(l.at(v, 0));
    out[plane + i] = static_cast<float>(l.at(v, 1) + l.at(v, 2) + l.at(v, 3));
  }
}

// Fixed-step tau-leaping: every channel fires Poisson(a * tau) times per step, from the state at the step's
// start; a species' outflows from a voxel are capped at its count, so counts never go negative.
void simulate_tau(const params& p, int timepoints, double dt, double max_leap, lattice& l, rng& g, float* out) {
  const double max_rate = std::max({p.mu_m, p.k_t + p.mu_p + 2.0 * p.diffusion});
  const int substeps = std::max(1, static_cast<int>(std::ceil(dt * max_rate / max_leap)));
  const double tau = dt / substeps;
  const int v_n = l.voxels;
  std::vector<std::int64_t> delta(l.x.size());
  for (int t = 0; t < timepoints; ++t) {
    record(l, out, t, timepoints);
    for (int s = 0; s < substeps; ++s) {
      std::fill(delta.begin(), delta.end(), 0);
      for (int v = 0; v < v_n; ++v) {
        std::int64_t* dv = &delta[static_cast<std::size_t>(v) * n_species];
        const std::int64_t m = l.at(v, 0);
        dv[0] += g.poisson(repression(p, static_cast<double>(l.at(v, 3))) * tau);
        dv[0] -= std::min(m, g.poisson(p.mu_m * m * tau));
        dv[1] += g.poisson(p.alpha_p * m * tau);
        for (int sp = 1; sp <= 3; ++sp) {
          std::int64_t left = l.at(v, sp);
          auto take = [&](double rate) {
            const std::int64_t k = std::min(left, g.poisson(rate * tau));
            left -= k;
            return k;
          };
          const std::int64_t degraded = take(p.mu_p * l.at(v, sp));
          const std::int64_t converted = sp < 3 ? take(p.k_t * l.at(v, sp)) : 0;
          const std::int64_t to_left = v > 0 ? take(p.diffusion * l.at(v, sp)) : 0;
          const std::int64_t to_right = v + 1 < v_n ? take(p.diffusion * l.at(v, sp)) : 0;
          dv[sp] -= degraded + converted + to_left + to_right;
          if (sp < 3) dv[sp + 1] += converted;
          if (to_left) delta[static_cast<std::size_t>(v - 1) * n_species + sp] += to_left;
          if (to_right) delta[static_cast<std::size_t>(v + 1) * n_species + sp] += to_right;
        }
      }
      for (std::size_t i = 0; i < l.x.size(); ++i) l.x[i] += delta[i];
    }
  }
}

// Gillespie's direct method, exact; O(voxels) per event, for small lattices.
void simulate_ssa(const params& p, int timepoints, double dt, lattice& l, rng& g, float* out) {
  constexpr int n_channels = 15;  // transcription, M decay, translation, then per Pj: decay, convert, left, right
  const int v_n = l.voxels;
  std::vector<std::array<double, n_channels>> a(v_n);
  std::vector<double> a_voxel(v_n);
  auto update = [&](int v) {
    auto& av = a[v];
    av[0] = repression(p, static_cast<double>(l.at(v, 3)));
    av[1] = p.mu_m * l.at(v, 0);
    av[2] = p.alpha_p * l.at(v, 0);
    for (int sp = 1; sp <= 3; ++sp) {
      const double n = static_cast<double>(l.at(v, sp));
      const int c = 3 + 4 * (sp - 1);
      av[c] = p.mu_p * n;
      av[c + 1] = sp < 3 ? p.k_t * n : 0.0;
      av[c + 2] = v > 0 ? p.diffusion * n : 0.0;
      av[c + 3] = v + 1 < v_n ? p.diffusion * n : 0.0;
    }
    double sum = 0.0;
    for (double x : av) sum += x;
    a_voxel[v] = sum;
  };
  for (int v = 0; v < v_n; ++v) update(v);
  double now = 0.0;
  int t = 0;
  while (t < timepoints) {
    double total = 0.0;
    for (double x : a_voxel) total += x;
    const double next = now - std::log(g.open_uniform()) / total;
    while (t < timepoints && t * dt < next) record(l, out, t++, timepoints);
    if (t >= timepoints) break;
    now = next;
    double r = g.uniform() * total;
    int v = 0;
    while (v + 1 < v_n && r >= a_voxel[v]) r -= a_voxel[v++];
    int c = 0;
    while (c + 1 < n_channels && r >= a[v][c]) r -= a[v][c++];
    if (a[v][c] <= 0.0) continue;  // rounding at the end of a scan: draw again
    int other = -1;
    switch (c) {
      case 0: ++l.at(v, 0); break;
      case 1: --l.at(v, 0); break;
      case 2: ++l.at(v, 1); break;
      default: {
        const int sp = 1 + (c - 3) / 4;
        --l.at(v, sp);
        switch ((c - 3) % 4) {
          case 1: ++l.at(v, sp + 1); break;
          case 2: other = v - 1; break;
          case 3: other = v + 1; break;
          default: break;
        }
        if (other >= 0) ++l.at(other, sp);
      }
    }
    update(v);
    if (other >= 0) update(other);
  }
}

std::vector<std::byte> npy_f32(const std::vector<float>& data, int timepoints, int voxels) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, " + std::to_string(timepoints) +
                       ", " + std::to_string(voxels) + "), }";
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<std::byte> out(10 + header.size() + data.size() * sizeof(float));
  const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  std::memcpy(out.data(), magic, 8);
  out[8] = static_cast<std::byte>(header.size() & 0xff);
  out[9] = static_cast<std::byte>(header.size() >> 8);
  std::memcpy(out.data() + 10, header.data(), header.size());
  std::memcpy(out.data() + 10 + header.size(), data.data(), data.size() * sizeof(float));
  return out;
}

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

std::string params_json(const params& p, double dt) {
  return "{\"hill_n\":" + num(p.hill_n) + ",\"K\":" + num(p.repression_k) + ",\"alpha_m\":" + num(p.alpha_m) +
         ",\"alpha_p\":" + num(p.alpha_p) + ",\"mu_m\":" + num(p.mu_m) + ",\"mu_p\":" + num(p.mu_p) +
         ",\"k_t\":" + num(p.k_t) + ",\"D\":" + num(p.diffusion) + ",\"dt\":" + num(dt) + "}";
}

double log_uniform(rng& g, double lo, double hi) { return std::exp(std::log(lo) + g.uniform() * std::log(hi / lo)); }

std::vector<params> sweep(int points, std::uint64_t seed, double omega, const sweep_ranges& r) {
  rng g(seed ^ 0x5eed5eed5eedull);
  std::vector<params> out;
  for (int k = 0; k < points; ++k) {
    params p{};
    p.hill_n = r.n_lo + g.uniform() * (r.n_hi - r.n_lo);
    p.repression_k = 5.0 * omega;
    p.alpha_m = 1.0 * omega;
    p.alpha_p = 0.3;
    p.mu_m = log_uniform(g, r.mu_m_lo, r.mu_m_hi);
    p.mu_p = log_uniform(g, r.mu_p_lo, r.mu_p_hi);
    p.k_t = log_uniform(g, r.k_t_lo, r.k_t_hi);
    p.diffusion = log_uniform(g, r.d_lo, r.d_hi);
    out.push_back(p);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hio-sim-source: stochastic spatial Hes1 simulations streamed to hio as (2, T, V) float32 .npy"};
  std::string master, source = "hes1-sim", truth_path, method = "tau";
  int points = 16, realizations = 4, timepoints = 1500, voxels = 500;
  std::uint64_t seed = 1;
  double rate = 0.0, dt = 2.0, max_leap = 0.2, omega = 10.0;
  sweep_ranges ranges;
  app.add_option("--master", master, "Master URL; empty: only simulate (and time it)");
  app.add_option("--source", source, "Source name in the tuples' metadata")->capture_default_str();
  app.add_option("--points", points, "Parameter points drawn from the sweep ranges")->capture_default_str();
  app.add_option("--realizations", realizations, "Realizations per point")->capture_default_str();
  app.add_option("--seed", seed, "Seed of the sweep and of every realization")->capture_default_str();
  app.add_option("--timepoints", timepoints, "T: samples per realization")->capture_default_str();
  app.add_option("--voxels", voxels, "V: voxels on the line")->capture_default_str();
  app.add_option("--omega", omega, "System size: K = 5 omega, alpha_m = omega per minute")
      ->capture_default_str();
  app.add_option("--dt", dt, "Minutes between samples")->capture_default_str();
  app.add_option("--rate", rate, "Realizations per second to send (0: as fast as they are made)")
      ->capture_default_str();
  app.add_option("--method", method, "tau (tau-leaping) or ssa (Gillespie direct method, exact, slow)")
      ->check(CLI::IsMember({"tau", "ssa"}))->capture_default_str();
  app.add_option("--max-leap", max_leap, "tau-leaping: largest per-molecule probability per step")
      ->capture_default_str();
  app.add_option("--truth", truth_path, "Write point,params,regime CSV here");
  app.add_option("--n-min", ranges.n_lo, "Sweep: Hill coefficient low")->capture_default_str();
  app.add_option("--n-max", ranges.n_hi, "Sweep: Hill coefficient high")->capture_default_str();
  app.add_option("--d-min", ranges.d_lo, "Sweep: diffusion rate low (1/min)")->capture_default_str();
  app.add_option("--d-max", ranges.d_hi, "Sweep: diffusion rate high (1/min)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (points < 1 || realizations < 1 || timepoints < 1 || voxels < 1 || dt <= 0 || max_leap <= 0 || omega <= 0) {
    std::cerr << "hio-sim-source: --points, --realizations, --timepoints, --voxels, --dt, --max-leap and --omega "
                 "must be positive\n";
    return 2;
  }

  const std::vector<params> grid = sweep(points, seed, omega, ranges);
  std::vector<stability> truth;
  for (const params& p : grid) truth.push_back(linear_stability(p));
  if (!truth_path.empty()) {
    std::ofstream f(truth_path);
    f << "point,hill_n,K,alpha_m,alpha_p,mu_m,mu_p,k_t,D,regime,gain_ratio,linear_period_min\n";
    for (int k = 0; k < points; ++k) {
      const params& p = grid[k];
      f << k << ',' << num(p.hill_n) << ',' << num(p.repression_k) << ',' << num(p.alpha_m) << ','
        << num(p.alpha_p) << ',' << num(p.mu_m) << ',' << num(p.mu_p) << ',' << num(p.k_t) << ','
        << num(p.diffusion) << ',' << (truth[k].oscillating ? "oscillating" : "steady") << ','
        << num(truth[k].gain_ratio) << ',' << num(truth[k].period) << '\n';
    }
    if (!f) {
      std::cerr << "hio-sim-source: cannot write " << truth_path << "\n";
      return 1;
    }
  }

  std::unique_ptr<hio::connector::client> client;
  if (!master.empty()) {
    client = std::make_unique<hio::connector::client>(
        hio::connector::client_options{.master_url = master, .source_name = source});
  }
  std::vector<std::future<hio::result<hio::connector::send_result>>> pending;
  const auto start = std::chrono::steady_clock::now();
  double simulate_s = 0.0;
  std::size_t bytes = 0;
  std::vector<float> buffer(static_cast<std::size_t>(2) * timepoints * voxels);
  int sent = 0;
  for (int k = 0; k < points; ++k) {
    for (int r = 0; r < realizations; ++r) {
      std::uint64_t s = seed * 0x100000001b3ull + static_cast<std::uint64_t>(k) * 1000003ull +
                        static_cast<std::uint64_t>(r);
      rng g(rng::splitmix(s));
      const auto t0 = std::chrono::steady_clock::now();
      lattice l = initial_state(grid[k], voxels, g);
      if (method == "tau") simulate_tau(grid[k], timepoints, dt, max_leap, l, g, buffer.data());
      else simulate_ssa(grid[k], timepoints, dt, l, g, buffer.data());
      std::vector<std::byte> payload = npy_f32(buffer, timepoints, voxels);
      simulate_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bytes += payload.size();
      if (!client) continue;
      if (rate > 0) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                  std::chrono::duration<double>(sent / rate)));
      }
      std::string meta = "{\"species\":[\"mRNA\",\"protein\"],\"params\":" + params_json(grid[k], dt) +
                         ",\"regime\":\"" + (truth[k].oscillating ? "oscillating" : "steady") +
                         "\",\"point\":" + std::to_string(k) + ",\"realization\":" + std::to_string(r) +
                         ",\"method\":\"" + method + "\"}";
      pending.push_back(client->async_send(std::move(payload), std::move(meta)));
      ++sent;
    }
  }
  int stored = 0, failed = 0, errors = 0;
  for (auto& f : pending) {
    auto res = f.get();
    if (!res) {
      ++errors;
      std::cerr << "hio-sim-source: " << res.error().message << "\n";
    } else if (res->status == hio::connector::send_status::failed) {
      ++failed;
      std::cerr << "hio-sim-source: tuple " << res->tuple_id << " failed: " << res->reason << "\n";
    } else {
      ++stored;
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int total = points * realizations;
  int oscillating = 0;
  for (const auto& t : truth) oscillating += t.oscillating;
  std::printf("%d realizations (%d points: %d oscillating, %d steady) of %.2f MB, %s: simulated at %.2f/s, "
              "%.2f s wall; sent %d: %d stored/queued, %d failed, %d errors\n",
              total, points, oscillating, points - oscillating, static_cast<double>(bytes) / total / 1e6,
              method.c_str(), total / simulate_s, wall, sent, stored, failed, errors);
  return failed + errors ? 1 : 0;
}
