#pragma once
// 64-bit ids that increase and are never reused, also across restarts. Ids are reserved in blocks: the end
// of the current block is written (and fsynced) to a file before any id of it is handed out, and a
// restart continues after the last reserved block. Thread-safe.

#include <hio/common/error.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>

namespace hio {

class id_generator {
 public:
  // Error when the state file cannot be read or written.
  static result<std::unique_ptr<id_generator>> open(const std::filesystem::path& file, std::uint64_t block = 1 << 16);

  // Returns the first of `n` consecutive fresh ids. Errors only if the state file cannot be written.
  result<std::uint64_t> next(std::uint64_t n = 1);
  // The lowest id not handed out yet.
  std::uint64_t peek() const;

 private:
  id_generator(std::filesystem::path file, std::uint64_t next, std::uint64_t block);
  result<void> reserve(std::uint64_t up_to);

  std::filesystem::path file_;
  mutable std::mutex mutex_;
  std::uint64_t next_;
  std::uint64_t reserved_;
  std::uint64_t block_;
};

}  // namespace hio
