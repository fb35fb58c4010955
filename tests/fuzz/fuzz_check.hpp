#pragma once
// An invariant of a fuzz target: when it does not hold, the input is a crash (libFuzzer saves it).

#include <cstdio>
#include <cstdlib>

#define HIO_FUZZ_CHECK(cond)                                                              \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
