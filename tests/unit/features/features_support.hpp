#pragma once
// Helpers shared by the features tests: seeded inputs, temporary directories, running /usr/bin/python3.

#include <hio/features/features.hpp>
#include <hio/features/npy.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace hio::features::test {

inline std::vector<std::size_t> dims(std::initializer_list<std::size_t> l) { return std::vector<std::size_t>(l); }

inline std::size_t product(const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

// Values that look like simulated copy numbers: a per-voxel level, a periodic component, noise; some
// voxels and timepoints empty. Integers when `integral`.
inline std::vector<double> random_values(std::size_t n, std::uint64_t seed, bool integral = false) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> x(n);
  const double period = 3 + 20 * unit(rng);
  for (std::size_t i = 0; i < n; ++i) {
    double v = 5 * unit(rng) + 3 * std::sin(6.283185307179586 * static_cast<double>(i % 97) / period) + 4;
    if (unit(rng) < 0.1) v = 0;
    x[i] = integral ? std::floor(v) : v;
  }
  return x;
}

// The array views `buffer`, which must outlive it (hence no overload for temporaries).
npy_array parse_or_fail(std::vector<std::byte>&&) = delete;
inline npy_array parse_or_fail(const std::vector<std::byte>& buffer) {
  auto a = parse_npy(buffer);
  if (!a) throw std::runtime_error("parse_npy failed: " + a.error().message);
  return *a;
}

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "hio-features-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline void write_file(const std::filesystem::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::byte> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

inline bool have_numpy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  return ok;
}

// Runs a shell command and returns its standard output; the exit status in `status`.
inline std::string run_command(const std::string& command, int& status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  status = pclose(p);
  return out;
}

inline std::filesystem::path source_dir() { return std::filesystem::path(__FILE__).parent_path(); }

// (file, realization, name) -> value
using reference_values = std::map<std::tuple<std::string, std::size_t, std::string>, double>;

// Runs a NumPy reference script of this folder (reference_features.py, reference_harmonicpe.py) with
// /usr/bin/python3 on `files` and reads its lines FILE<TAB>REALIZATION<TAB>NAME<TAB>VALUE. The exit status
// in `status`.
inline reference_values run_reference_script(const std::string& script, const std::vector<std::string>& files,
                                             const std::string& flags, int& status) {
  std::string command = "/usr/bin/python3 " + (source_dir() / script).string() + " " + flags;
  for (const auto& f : files) command += " " + f;
  const std::string out = run_command(command, status);
  reference_values values;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string file, name, value;
    std::size_t r = 0;
    std::getline(fields, file, '\t');
    fields >> r;
    fields.ignore(1);
    std::getline(fields, name, '\t');
    std::getline(fields, value);
    values[{file, r, name}] = std::stod(value);
  }
  return values;
}

// |a - b| <= rel * max(|a|, |b|) + abs
inline bool close(double a, double b, double rel, double abs) {
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)) + abs;
}

}  // namespace hio::features::test
