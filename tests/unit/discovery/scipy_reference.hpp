#pragma once
// Runs tests/unit/discovery/scipy_linkage.py under /usr/bin/python3 with a private SciPy on PYTHONPATH
// and returns its JSON. SciPy is found through $HIO_SCIPY_PATH, else in the build tree where
// scripts/scipy-reference.sh unpacks it by default (HIO_SCIPY_FALLBACK_PATH, set by discovery/CMakeLists.txt).

#include <hio/discovery/matrix.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace hio::discovery::testing {

inline std::filesystem::path scipy_script() {
#ifdef HIO_SCIPY_SCRIPT
  return HIO_SCIPY_SCRIPT;
#else
  return std::filesystem::path(__FILE__).parent_path() / "scipy_linkage.py";
#endif
}

inline std::string scipy_path() {
  if (const char* env = std::getenv("HIO_SCIPY_PATH"); env && *env) return env;
#ifdef HIO_SCIPY_FALLBACK_PATH
  return HIO_SCIPY_FALLBACK_PATH;
#else
  return {};
#endif
}

inline std::string how_to_get_scipy() {
  return "SciPy is needed as the reference for these tests and /usr/bin/python3 cannot import it from '" +
         scipy_path() +
         "'. Run scripts/scipy-reference.sh (it installs python3-numpy and unpacks python3-scipy into "
         "build/scipy-ref, or into the folder given as its argument) and export HIO_SCIPY_PATH=<the path it "
         "prints>.";
}

struct python_run {
  int status = -1;
  std::string output;
};

inline python_run run_python(const std::vector<std::filesystem::path>& args) {
  std::string command = "PYTHONPATH='" + scipy_path() + "' /usr/bin/python3 '" + scipy_script().string() + "'";
  for (const auto& a : args) command += " '" + a.string() + "'";
  command += " 2>&1";
  python_run run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return run;
  char buffer[65536];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, got);
  const int raw = ::pclose(pipe);
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return run;
}

// A temporary folder removed on destruction.
class scratch_dir {
 public:
  scratch_dir() : path_(std::filesystem::temp_directory_path() / ("hio-discovery-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_csv(const std::filesystem::path& file, const matrix& x) {
  std::ofstream out(file);
  char cell[64];
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (std::size_t j = 0; j < x.cols(); ++j) {
      std::snprintf(cell, sizeof cell, "%.17g", x(i, j));
      out << (j ? "," : "") << cell;
    }
    out << '\n';
  }
}

// SciPy's results for each matrix, or an error text (the script's output, or how to get SciPy).
struct scipy_results {
  std::optional<nlohmann::json> json;
  std::string error;
};

inline scipy_results scipy_reference(const std::vector<matrix>& cases) {
  scratch_dir dir;
  std::vector<std::filesystem::path> files;
  for (std::size_t c = 0; c < cases.size(); ++c) {
    files.push_back(dir.path() / ("case-" + std::to_string(c) + ".csv"));
    write_csv(files.back(), cases[c]);
  }
  const python_run run = run_python(files);
  if (run.status == 3) return {std::nullopt, how_to_get_scipy() + " (" + run.output + ")"};
  if (run.status != 0) return {std::nullopt, "scipy_linkage.py failed (status " + std::to_string(run.status) + "): " + run.output};
  try {
    return {nlohmann::json::parse(run.output), {}};
  } catch (const std::exception& e) {
    return {std::nullopt, std::string("scipy_linkage.py printed no JSON: ") + e.what() + ": " + run.output};
  }
}

}  // namespace hio::discovery::testing
