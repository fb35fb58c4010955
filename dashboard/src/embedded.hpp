#pragma once
// The table the build generates (dashboard_files.cpp, from embed.cmake).

#include <cstddef>

namespace hio::dashboard::detail {

struct embedded_file {
  const char* path;
  const unsigned char* data;
  std::size_t size;
};

extern const embedded_file files[];
extern const std::size_t file_count;

}  // namespace hio::dashboard::detail
