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
#include <string_view>
#include <vector>

namespace hio::repository {

struct store_options {
  std::filesystem::path data_dir = "./hio-data/repository";  // SQLite: holds repository.db and segments/
  std::uint64_t segment_bytes = 256ull << 20;  // SQLite: a segment file rolls over before it grows past this
  // Empty: SQLite in data_dir. A postgres:// or postgresql:// URL or a libpq key=value conninfo:
  // PostgreSQL, where data_dir and segment_bytes are unused.
  std::string store;
  std::uint64_t page_bytes = 64ull << 20;  // PostgreSQL: since() stops at this many blob bytes (one record at least)
};

// Whether `store` (store_options::store) names a PostgreSQL database rather than SQLite.
bool is_postgres(std::string_view store) noexcept;

// `store` with any password replaced by "***", for logs.
std::string redacted(std::string_view store);

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

// A durable, idempotent store of feature_record, keyed by tuple id. Two implementations, picked by open():
//
// SQLite (store_options::store empty): row metadata lives in SQLite (WAL, synchronous=FULL); each
// record's metadata text and features live as a checksummed blob in append-only segment files
// (segments/NNNNNN.seg). put() writes the blobs, fdatasyncs the segment, then commits the rows, so
// everything put() reported survives kill -9; bytes written before a crash and never committed are
// ignored. One data_dir must be opened by one store (one process) at a time.
//
// PostgreSQL (a URL or conninfo): rows and the same checksummed blobs (bytea) live in the database,
// so several stores (several processes, several hosts) may serve one database; put() commits one
// transaction per batch, and cursors and knowledge versions are assigned in commit order across all
// of them (see postgres_store.cpp). A lost connection is re-established on the next call.
//
// Both are thread-safe: one mutex serialises all calls of one store. The store owns its files or its
// connection until destroyed.
class store {
 public:
  // Opens the backend store_options::store names. SQLite: creates data_dir when missing. PostgreSQL:
  // creates or migrates the schema. Error (code 500) when the directory, database or last segment
  // cannot be opened, the server cannot be reached, or the database has a foreign or newer schema.
  static result<std::unique_ptr<store>> open(store_options options);
  virtual ~store() = default;
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Stores each record whose tuple_id is new (the cursor field is ignored and assigned here). A known
  // tuple_id, or one repeated within the batch, is never overwritten: with the same size and XXH3 it is
  // a duplicate (a resend of the same tuple), otherwise a conflict, listed in put_result::conflicts.
  // All-or-nothing: on error (code 500 for I/O or database failures, 400 for a record too large to
  // encode) nothing of the batch is stored.
  virtual result<put_result> put(std::vector<feature_record> batch) = 0;

  // Records with cursor > `after`, ascending by cursor, at most `limit`, each with its cursor set. A
  // cursor once returned is never followed later by a smaller one. Error (code 500) when the database
  // or a segment cannot be read or a blob fails its checksum.
  virtual result<std::vector<feature_record>> since(std::uint64_t after, std::size_t limit) = 0;

  // The record of `tuple_id` (cursor set), nullopt when absent; error as for since().
  virtual result<std::optional<feature_record>> get(std::uint64_t tuple_id) = 0;

  // Stores a knowledge document durably (one transaction) under the next version. Error (code 500)
  // when the database cannot be written.
  virtual result<knowledge_entry> put_knowledge(std::string document, std::string summary,
                                                std::int64_t stored_at_ms) = 0;

  // The entry of `version` (0: the newest) with its document; nullopt when there is none. Error (code 500)
  // when the database cannot be read.
  virtual result<std::optional<knowledge_entry>> knowledge(std::uint64_t version) = 0;

  // Up to `limit` entries, newest first, without their documents; error as for knowledge().
  virtual result<std::vector<knowledge_entry>> knowledge_history(std::size_t limit) = 0;

  // SQLite: this process's counts. PostgreSQL: records, stored, failed, batches, duplicates and
  // conflicts of the whole database (every process), the last values read when it cannot be reached;
  // rows_read of this process.
  virtual store_counts counts() const = 0;
  virtual const store_options& options() const noexcept = 0;

  // Where the data lives, for logs: a directory, or the database with any password hidden.
  virtual std::string location() const = 0;

 protected:
  store() = default;
};

}  // namespace hio::repository
