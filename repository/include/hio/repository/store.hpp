#pragma once
// The repository's durable store of feature records, keyed by tuple id. No HTTP here: service.hpp
// puts REST in front of it.

#include <hio/common/error.hpp>
#include <hio/common/record.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hio::repository {

struct store_options {
  std::filesystem::path data_dir = "./hio-data/repository";  // holds repository.db and segments/
  std::uint64_t segment_bytes = 256ull << 20;  // a segment file rolls over before it grows past this
};

struct put_result {
  std::uint64_t stored = 0;      // records new to the store, now durable
  std::uint64_t duplicates = 0;  // records whose tuple was already stored (or repeated in the batch)
  std::vector<std::uint64_t> conflicts;  // ids already stored (or repeated) with another size or XXH3
  friend bool operator==(const put_result&, const put_result&) = default;
};

struct store_counts {
  std::uint64_t records = 0;     // rows in the store: stored + failed
  std::uint64_t stored = 0;      // rows with status stored
  std::uint64_t failed = 0;      // rows with status failed
  std::uint64_t rows_read = 0;   // rows returned by since() since this process opened the store
  std::uint64_t batches = 0;     // non-empty put() calls that succeeded, ever
  std::uint64_t duplicates = 0;  // duplicate records refused by put(), ever
  std::uint64_t conflicts = 0;   // conflicting records refused by put(), ever
};

// One published knowledge document (see docs/discovery.md), as the store keeps it.
struct knowledge_entry {
  std::uint64_t version = 0;         // 1, 2, ...: assigned by put_knowledge, increasing
  std::int64_t stored_at_ms = 0;     // unix milliseconds when the store committed it
  std::string summary;               // short JSON text listed by the history
  std::string document;              // the document's JSON text as handed to put_knowledge ("" in history rows)
};

// A durable, idempotent store of feature_record. Row metadata lives in SQLite (WAL, synchronous=FULL);
// each record's metadata text and features live as a checksummed blob in append-only segment files
// (segments/NNNNNN.seg). put() writes the blobs, fdatasyncs the segment, then commits the rows, so
// everything put() reported survives kill -9; bytes written before a crash and never committed are
// ignored. Thread-safe: one mutex serialises all calls. The store owns its files until destroyed, and
// one data_dir must be opened by one store (one process) at a time.
class store {
 public:
  // Creates data_dir when missing. Error (code 500) when the directory, database or last segment
  // cannot be opened or the database has a foreign schema.
  static result<std::unique_ptr<store>> open(store_options options);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Stores each record whose tuple_id is new (the cursor field is ignored and assigned here). A known
  // tuple_id, or one repeated within the batch, is never overwritten: with the same size and XXH3 it is
  // a duplicate (a resend of the same tuple), otherwise a conflict, listed in put_result::conflicts.
  // All-or-nothing: on error (code 500 for I/O or database failures, 400 for a record too large to
  // encode) nothing of the batch is stored.
  result<put_result> put(std::vector<feature_record> batch);

  // Records with cursor > `after`, ascending by cursor, at most `limit`, each with its cursor set.
  // Error (code 500) when the database or a segment cannot be read or a blob fails its checksum.
  result<std::vector<feature_record>> since(std::uint64_t after, std::size_t limit);

  // The record of `tuple_id` (cursor set), nullopt when absent; error as for since().
  result<std::optional<feature_record>> get(std::uint64_t tuple_id);

  // Stores a knowledge document durably (one SQLite transaction) under the next version. Error (code 500)
  // when the database cannot be written.
  result<knowledge_entry> put_knowledge(std::string document, std::string summary, std::int64_t stored_at_ms);

  // The entry of `version` (0: the newest) with its document; nullopt when there is none. Error (code 500)
  // when the database cannot be read.
  result<std::optional<knowledge_entry>> knowledge(std::uint64_t version);

  // Up to `limit` entries, newest first, without their documents; error as for knowledge().
  result<std::vector<knowledge_entry>> knowledge_history(std::size_t limit);

  store_counts counts() const;
  const store_options& options() const noexcept;

 private:
  struct impl;
  explicit store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace hio::repository
