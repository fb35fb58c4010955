// hio-features-wisdom: regenerates the FFTW wisdom compiled into hio::features
// (src/detail/fft_wisdom.inc; docs/features.md, "FFT plans"). It plans the CPU extractor's transforms
// for each series length by timing (FFTW_PATIENT, or FFTW_EXHAUSTIVE) and writes the wisdom FFTW exports
// as the C++ raw string literal that file holds. The plans found depend on the timing of this run; once
// shipped they are fixed, so that every extractor uses the same factorisation.
//
//   hio-features-wisdom [--exhaustive] [--out FILE] [T ...]      (default T: 1000 2000 3000)

#include "detail/fft_wisdom.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  bool exhaustive = false;
  std::string out_path;
  std::vector<std::size_t> lengths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--exhaustive") exhaustive = true;
    else if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (!a.empty() && a.find_first_not_of("0123456789") == std::string::npos) lengths.push_back(std::stoul(a));
    else {
      std::fprintf(stderr, "usage: %s [--exhaustive] [--out FILE] [T ...]\n", argv[0]);
      return 2;
    }
  }
  if (lengths.empty()) lengths = {1000, 2000, 3000};
  const std::string wisdom = hio::features::detail::generate_fft_wisdom(lengths, exhaustive);
  if (wisdom.empty() || wisdom.find(")hio_wisdom\"") != std::string::npos) {
    std::fprintf(stderr, "FFTW exported no usable wisdom\n");
    return 1;
  }
  FILE* f = out_path.empty() ? stdout : std::fopen(out_path.c_str(), "w");
  if (!f) {
    std::perror(out_path.c_str());
    return 1;
  }
  std::fprintf(f, "R\"hio_wisdom(%s)hio_wisdom\"\n", wisdom.c_str());
  if (f != stdout) std::fclose(f);
  for (std::size_t t : lengths)
    std::fprintf(stderr, "T = %zu: %s\n", t, hio::features::detail::describe_voxel_plan(t, true).c_str());
  return 0;
}
