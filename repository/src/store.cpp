#include <hio/repository/store.hpp>

#include "backends.hpp"
#include "blob.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <optional>
#include <unordered_map>
#include <utility>

namespace hio::repository {
namespace {

constexpr int schema_version = 1;

error io_error(const std::string& what) { return make_error(500, what + ": " + std::strerror(errno)); }

// An owned file descriptor.
class file {
 public:
  file() = default;
  explicit file(int fd) : fd_(fd) {}
  file(file&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  file& operator=(file&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~file() { reset(); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::string segment_name(std::uint32_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06u.seg", number);
  return buf;
}

// The number of a "NNNNNN.seg" file name, or 0 for any other name.
std::uint32_t segment_number(const std::string& name) {
  if (name.size() < 5 || !name.ends_with(".seg")) return 0;
  std::uint32_t n = 0;
  const char* end = name.data() + name.size() - 4;
  auto [p, ec] = std::from_chars(name.data(), end, n);
  return ec == std::errc{} && p == end ? n : 0;
}

result<void> fsync_dir(const std::filesystem::path& dir) {
  file d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) return io_error("cannot open " + dir.string());
  if (::fsync(d.get()) != 0) return io_error("cannot fsync " + dir.string());
  return {};
}

result<void> write_all(int fd, std::string_view bytes, std::uint64_t offset, const std::string& name) {
  while (!bytes.empty()) {
    const auto n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write " + name);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

result<std::string> read_exact(int fd, std::uint64_t offset, std::size_t length, const std::string& name) {
  std::string out(length, '\0');
  std::size_t done = 0;
  while (done < length) {
    const auto n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read " + name);
    }
    if (n == 0) return make_error(500, name + " ends before a committed record: the segment was truncated");
    done += static_cast<std::size_t>(n);
  }
  return out;
}

struct db_close {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct stmt_finalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using db_ptr = std::unique_ptr<sqlite3, db_close>;
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalize>;

// Resets a prepared statement when a scope leaves it, whether or not it ran to the end.
class stmt_use {
 public:
  explicit stmt_use(sqlite3_stmt* s) : s_(s) {}
  ~stmt_use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  stmt_use(const stmt_use&) = delete;
  stmt_use& operator=(const stmt_use&) = delete;

 private:
  sqlite3_stmt* s_;
};

constexpr const char* row_columns =
    "cursor, tuple_id, source, size, xxh3, status, error, worker, channel, processed_at_ms, segment, "
    "seg_offset, seg_length";

std::int64_t as_i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t as_u64(std::int64_t v) { return static_cast<std::uint64_t>(v); }

std::string column_text(sqlite3_stmt* s, int i) {
  const auto* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

struct segment_location {
  std::uint32_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct sqlite_impl {
  store_options options;
  std::filesystem::path segments_dir;
  mutable std::mutex mutex;

  db_ptr db;
  stmt_ptr exists_stmt, insert_stmt, since_stmt, by_id_stmt, bump_stmt;
  stmt_ptr knowledge_insert_stmt, knowledge_by_version_stmt, knowledge_latest_stmt, knowledge_history_stmt;

  std::uint32_t segment = 0;  // the segment put() appends to
  file segment_file;
  std::uint64_t segment_end = 0;
  std::map<std::uint32_t, file> readers;

  store_counts counts;

  error db_error(const std::string& what) const {
    return make_error(500, what + ": " + sqlite3_errmsg(db.get()));
  }

  result<void> exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db.get(), sql, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : "unknown error";
      sqlite3_free(message);
      return make_error(500, std::string("repository database: ") + text + " (in: " + sql + ")");
    }
    return {};
  }

  result<stmt_ptr> prepare(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db.get(), sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      return db_error("cannot prepare '" + sql + "'");
    }
    return stmt_ptr(s);
  }

  result<std::int64_t> scalar(const char* sql) {
    auto s = prepare(sql);
    if (!s) return s.error();
    if (sqlite3_step(s->get()) != SQLITE_ROW) return db_error(std::string("cannot run '") + sql + "'");
    return sqlite3_column_int64(s->get(), 0);
  }

  std::filesystem::path segment_path(std::uint32_t n) const { return segments_dir / segment_name(n); }

  result<void> open_database() {
    const auto path = options.data_dir / "repository.db";
    sqlite3* raw = nullptr;
    // NOMUTEX: every use of the connection is under `mutex` already; SQLite's own locking on top cost
    // a tenth of the repository's CPU.
    const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   nullptr);
    db.reset(raw);
    if (rc != SQLITE_OK) {
      return make_error(500, "cannot open " + path.string() + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory"));
    }
    sqlite3_busy_timeout(db.get(), 5000);
    auto version = scalar("PRAGMA user_version");
    if (!version) return version.error();
    if (*version != 0 && *version != schema_version) {
      return make_error(500, path.string() + " has schema version " + std::to_string(*version) +
                                 ", this hio-repository reads version " + std::to_string(schema_version));
    }
    // One process owns the store (a second hio-repository on the same directory is refused with "database
    // is locked"): exclusive locking takes the file lock once, instead of several fcntl lock calls per
    // transaction and statement, which were a quarter of the repository's CPU at 80,000 records/s.
    if (auto r = exec("PRAGMA locking_mode=EXCLUSIVE"); !r) return r.error();
    auto mode = prepare("PRAGMA journal_mode=WAL");
    if (!mode) return mode.error();
    if (sqlite3_step(mode->get()) != SQLITE_ROW || column_text(mode->get(), 0) != "wal") {
      return make_error(500, "cannot put " + path.string() + " in WAL mode");
    }
    for (const char* sql : {
             "PRAGMA synchronous=FULL",
             "CREATE TABLE IF NOT EXISTS tuples ("
             " cursor INTEGER PRIMARY KEY AUTOINCREMENT, tuple_id INTEGER NOT NULL UNIQUE,"
             " source TEXT NOT NULL, size INTEGER NOT NULL, xxh3 INTEGER NOT NULL, status INTEGER NOT NULL,"
             " error TEXT NOT NULL, worker TEXT NOT NULL, channel INTEGER NOT NULL,"
             " processed_at_ms INTEGER NOT NULL, segment INTEGER NOT NULL, seg_offset INTEGER NOT NULL,"
             " seg_length INTEGER NOT NULL)",
             "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
             "INSERT OR IGNORE INTO counters VALUES ('batches', 0), ('duplicates', 0), ('conflicts', 0)",
             // Added beside schema version 1 without changing it: older stores simply gain the table.
             "CREATE TABLE IF NOT EXISTS knowledge ("
             " version INTEGER PRIMARY KEY AUTOINCREMENT, stored_at_ms INTEGER NOT NULL,"
             " summary TEXT NOT NULL, document TEXT NOT NULL)",
             "PRAGMA user_version=1",
         }) {
      if (auto r = exec(sql); !r) return r.error();
    }

    const std::string select = std::string("SELECT ") + row_columns + " FROM tuples ";
    for (auto [target, sql] : std::initializer_list<std::pair<stmt_ptr*, std::string>>{
             {&exists_stmt, "SELECT size, xxh3 FROM tuples WHERE tuple_id = ?1"},
             {&insert_stmt,
              "INSERT INTO tuples (tuple_id, source, size, xxh3, status, error, worker, channel,"
              " processed_at_ms, segment, seg_offset, seg_length) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"},
             {&since_stmt, select + "WHERE cursor > ?1 ORDER BY cursor LIMIT ?2"},
             {&by_id_stmt, select + "WHERE tuple_id = ?1"},
             {&bump_stmt, "UPDATE counters SET value = value + ?2 WHERE name = ?1"},
             {&knowledge_insert_stmt, "INSERT INTO knowledge (stored_at_ms, summary, document) VALUES (?1, ?2, ?3)"},
             {&knowledge_by_version_stmt,
              "SELECT version, stored_at_ms, summary, document FROM knowledge WHERE version = ?1"},
             {&knowledge_latest_stmt,
              "SELECT version, stored_at_ms, summary, document FROM knowledge ORDER BY version DESC LIMIT 1"},
             {&knowledge_history_stmt,
              "SELECT version, stored_at_ms, summary FROM knowledge ORDER BY version DESC LIMIT ?1"},
         }) {
      auto s = prepare(sql);
      if (!s) return s.error();
      *target = std::move(*s);
    }

    auto records = scalar("SELECT count(*) FROM tuples");
    auto failed = scalar("SELECT count(*) FROM tuples WHERE status = 1");
    auto batches = scalar("SELECT value FROM counters WHERE name = 'batches'");
    auto duplicates = scalar("SELECT value FROM counters WHERE name = 'duplicates'");
    auto conflicts = scalar("SELECT value FROM counters WHERE name = 'conflicts'");
    for (const auto* r : {&records, &failed, &batches, &duplicates, &conflicts}) {
      if (!*r) return r->error();
    }
    counts.records = as_u64(*records);
    counts.failed = as_u64(*failed);
    counts.stored = counts.records - counts.failed;
    counts.batches = as_u64(*batches);
    counts.duplicates = as_u64(*duplicates);
    counts.conflicts = as_u64(*conflicts);
    return {};
  }

  // Opens the newest segment for appending, after whatever it holds (committed or orphan bytes).
  result<void> open_segments() {
    std::error_code ec;
    std::uint32_t newest = 0;
    for (const auto& entry : std::filesystem::directory_iterator(segments_dir, ec)) {
      newest = std::max(newest, segment_number(entry.path().filename().string()));
    }
    if (ec) return make_error(500, "cannot list " + segments_dir.string() + ": " + ec.message());

    std::uint32_t last_segment = 0;
    std::uint64_t last_end = 0;
    {
      auto s = prepare("SELECT segment, seg_offset + seg_length FROM tuples ORDER BY cursor DESC LIMIT 1");
      if (!s) return s.error();
      if (sqlite3_step(s->get()) == SQLITE_ROW) {
        last_segment = static_cast<std::uint32_t>(sqlite3_column_int64(s->get(), 0));
        last_end = as_u64(sqlite3_column_int64(s->get(), 1));
      }
    }
    if (last_segment > newest) {
      return make_error(500, "segment " + segment_path(last_segment).string() +
                                 " holds committed records but is missing");
    }
    if (auto r = open_for_append(newest == 0 ? 1 : newest); !r) return r;
    if (segment == last_segment && segment_end > last_end) {
      spdlog::info("repository: {} has {} bytes after its last committed record (left by a crash); "
                   "appending after them",
                   segment_path(segment).string(), segment_end - last_end);
    }
    return {};
  }

  result<void> open_for_append(std::uint32_t n) {
    const auto path = segment_path(n);
    const bool existed = std::filesystem::exists(path);
    file f(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!f) return io_error("cannot open " + path.string());
    struct stat st {};
    if (::fstat(f.get(), &st) != 0) return io_error("cannot stat " + path.string());
    if (!existed) {
      if (auto r = fsync_dir(segments_dir); !r) return r;
    }
    segment = n;
    segment_file = std::move(f);
    segment_end = static_cast<std::uint64_t>(st.st_size);
    return {};
  }

  result<void> flush(std::string& pending, std::uint64_t at) {
    if (pending.empty()) return {};
    const auto name = segment_path(segment).string();
    if (auto r = write_all(segment_file.get(), pending, at, name); !r) return r;
    if (::fdatasync(segment_file.get()) != 0) return io_error("cannot fdatasync " + name);
    pending.clear();
    return {};
  }

  // After a failed put, continue after whatever reached the file rather than trusting our arithmetic.
  void resync_end() {
    struct stat st {};
    if (segment_file && ::fstat(segment_file.get(), &st) == 0) segment_end = static_cast<std::uint64_t>(st.st_size);
  }

  // Writes the blobs of `records` to segments and makes them durable; fills `where`.
  result<void> write_blobs(const std::vector<const feature_record*>& records, std::vector<segment_location>& where) {
    std::string pending;
    std::uint64_t pending_at = segment_end;
    for (const auto* r : records) {
      std::string blob;
      if (auto e = detail::append_blob(*r, blob); !e) return e;
      if (segment_end > 0 && segment_end + blob.size() > options.segment_bytes) {
        if (auto e = flush(pending, pending_at); !e) return e;
        if (auto e = open_for_append(segment + 1); !e) return e;
        pending_at = segment_end;
      }
      where.push_back({segment, segment_end, blob.size()});
      segment_end += blob.size();
      pending += blob;
    }
    return flush(pending, pending_at);
  }

  // The size and XXH3 of the record stored for `tuple_id`, if any.
  result<std::optional<std::pair<std::uint64_t, std::uint64_t>>> known(std::uint64_t tuple_id) {
    stmt_use use(exists_stmt.get());
    sqlite3_bind_int64(exists_stmt.get(), 1, as_i64(tuple_id));
    const int rc = sqlite3_step(exists_stmt.get());
    if (rc == SQLITE_ROW)
      return std::optional(std::pair(as_u64(sqlite3_column_int64(exists_stmt.get(), 0)),
                                     as_u64(sqlite3_column_int64(exists_stmt.get(), 1))));
    if (rc == SQLITE_DONE) return std::optional<std::pair<std::uint64_t, std::uint64_t>>();
    return db_error("cannot look up tuple " + std::to_string(tuple_id));
  }

  result<void> bump(const char* name, std::uint64_t by) {
    stmt_use use(bump_stmt.get());
    sqlite3_bind_text(bump_stmt.get(), 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(bump_stmt.get(), 2, as_i64(by));
    if (sqlite3_step(bump_stmt.get()) != SQLITE_DONE) return db_error(std::string("cannot count ") + name);
    return {};
  }

  result<void> insert(const feature_record& r, const segment_location& at) {
    auto* s = insert_stmt.get();
    stmt_use use(s);
    sqlite3_bind_int64(s, 1, as_i64(r.tuple_id));
    sqlite3_bind_text(s, 2, r.source.data(), static_cast<int>(r.source.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, as_i64(r.size));
    sqlite3_bind_int64(s, 4, as_i64(r.xxh3));
    sqlite3_bind_int(s, 5, static_cast<int>(r.status));
    sqlite3_bind_text(s, 6, r.error.data(), static_cast<int>(r.error.size()), SQLITE_STATIC);
    sqlite3_bind_text(s, 7, r.worker.data(), static_cast<int>(r.worker.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, r.channel);
    sqlite3_bind_int64(s, 9, r.processed_at_ms);
    sqlite3_bind_int64(s, 10, at.segment);
    sqlite3_bind_int64(s, 11, as_i64(at.offset));
    sqlite3_bind_int64(s, 12, as_i64(at.length));
    if (sqlite3_step(s) != SQLITE_DONE) return db_error("cannot insert tuple " + std::to_string(r.tuple_id));
    return {};
  }

  result<void> commit_rows(const std::vector<const feature_record*>& records,
                           const std::vector<segment_location>& where, std::uint64_t duplicates,
                           std::uint64_t conflicts) {
    if (auto r = exec("BEGIN IMMEDIATE"); !r) return r;
    auto body = [&]() -> result<void> {
      for (std::size_t i = 0; i < records.size(); ++i) {
        if (auto r = insert(*records[i], where[i]); !r) return r;
      }
      if (auto r = bump("batches", 1); !r) return r;
      if (duplicates > 0) {
        if (auto r = bump("duplicates", duplicates); !r) return r;
      }
      if (conflicts > 0) {
        if (auto r = bump("conflicts", conflicts); !r) return r;
      }
      return exec("COMMIT");
    };
    auto r = body();
    if (!r) (void)exec("ROLLBACK");
    return r;
  }

  result<int> reader_for(std::uint32_t n) {
    auto it = readers.find(n);
    if (it == readers.end()) {
      const auto path = segment_path(n);
      file f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!f) return io_error("cannot open " + path.string());
      it = readers.emplace(n, std::move(f)).first;
    }
    return it->second.get();
  }

  // The record of the current row of `s` (selected with row_columns), with its blob read back.
  result<feature_record> read_row(sqlite3_stmt* s) {
    feature_record r;
    r.cursor = as_u64(sqlite3_column_int64(s, 0));
    r.tuple_id = as_u64(sqlite3_column_int64(s, 1));
    r.source = column_text(s, 2);
    r.size = as_u64(sqlite3_column_int64(s, 3));
    r.xxh3 = as_u64(sqlite3_column_int64(s, 4));
    r.status = sqlite3_column_int(s, 5) == 1 ? record_status::failed : record_status::stored;
    r.error = column_text(s, 6);
    r.worker = column_text(s, 7);
    r.channel = static_cast<std::uint32_t>(sqlite3_column_int64(s, 8));
    r.processed_at_ms = sqlite3_column_int64(s, 9);
    const auto seg = static_cast<std::uint32_t>(sqlite3_column_int64(s, 10));
    const auto offset = as_u64(sqlite3_column_int64(s, 11));
    const auto length = as_u64(sqlite3_column_int64(s, 12));

    auto fd = reader_for(seg);
    if (!fd) return fd.error();
    const auto name = segment_path(seg).string();
    auto bytes = read_exact(*fd, offset, length, name);
    if (!bytes) return bytes.error();
    auto blob = detail::decode_blob(*bytes);
    if (!blob) {
      return make_error(500, "tuple " + std::to_string(r.tuple_id) + " in " + name + " at " +
                                 std::to_string(offset) + ": " + blob.error().message);
    }
    if (blob->tuple_id != r.tuple_id) {
      return make_error(500, "tuple " + std::to_string(r.tuple_id) + " in " + name + " at " +
                                 std::to_string(offset) + " points at the blob of tuple " +
                                 std::to_string(blob->tuple_id));
    }
    r.metadata = std::move(blob->metadata);
    r.features = std::move(blob->features);
    r.series = std::move(blob->series);
    return r;
  }
};

// The SQLite backend (see store.hpp).
class sqlite_store final : public store {
 public:
  explicit sqlite_store(std::unique_ptr<sqlite_impl> p) : impl_(std::move(p)) {}
  result<put_result> put(std::vector<feature_record> batch) override;
  result<std::vector<feature_record>> since(std::uint64_t after, std::size_t limit) override;
  result<std::optional<feature_record>> get(std::uint64_t tuple_id) override;
  result<knowledge_entry> put_knowledge(std::string document, std::string summary,
                                        std::int64_t stored_at_ms) override;
  result<std::optional<knowledge_entry>> knowledge(std::uint64_t version) override;
  result<std::vector<knowledge_entry>> knowledge_history(std::size_t limit) override;
  store_counts counts() const override;
  const store_options& options() const noexcept override;
  std::string location() const override;

 private:
  std::unique_ptr<sqlite_impl> impl_;
};

}  // namespace

namespace detail {

result<std::unique_ptr<store>> open_sqlite(store_options options) {
  auto p = std::make_unique<sqlite_impl>();
  p->options = std::move(options);
  if (p->options.segment_bytes == 0) return make_error(500, "segment_bytes must be positive");
  p->segments_dir = p->options.data_dir / "segments";
  std::error_code ec;
  std::filesystem::create_directories(p->segments_dir, ec);
  if (ec) return make_error(500, "cannot create " + p->segments_dir.string() + ": " + ec.message());
  if (auto r = p->open_database(); !r) return r.error();
  if (auto r = p->open_segments(); !r) return r.error();
  return std::unique_ptr<store>(new sqlite_store(std::move(p)));
}

}  // namespace detail

result<put_result> sqlite_store::put(std::vector<feature_record> batch) {
  auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  put_result out;
  if (batch.empty()) return out;

  std::vector<const feature_record*> fresh;
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> seen;  // id -> size, xxh3
  fresh.reserve(batch.size());
  // A second record for an id is a duplicate when it names the same tuple (size and XXH3: a resend),
  // and a conflict when it does not (someone sent other bytes under that id); neither is written.
  auto second = [&](const feature_record& r, std::pair<std::uint64_t, std::uint64_t> first) {
    if (first == std::pair(r.size, r.xxh3)) ++out.duplicates;
    else out.conflicts.push_back(r.tuple_id);
  };
  for (const auto& r : batch) {
    if (auto it = seen.find(r.tuple_id); it != seen.end()) {
      second(r, it->second);
      continue;
    }
    seen.emplace(r.tuple_id, std::pair(r.size, r.xxh3));
    auto known = s.known(r.tuple_id);
    if (!known) return known.error();
    if (*known) second(r, **known);
    else fresh.push_back(&r);
  }

  std::vector<segment_location> where;
  where.reserve(fresh.size());
  if (auto r = s.write_blobs(fresh, where); !r) {
    s.resync_end();
    return r.error();
  }
  if (auto r = s.commit_rows(fresh, where, out.duplicates, out.conflicts.size()); !r) return r.error();

  out.stored = fresh.size();
  for (const auto* r : fresh) {
    ++s.counts.records;
    ++(r->status == record_status::failed ? s.counts.failed : s.counts.stored);
  }
  ++s.counts.batches;
  s.counts.duplicates += out.duplicates;
  s.counts.conflicts += out.conflicts.size();
  return out;
}

result<std::vector<feature_record>> sqlite_store::since(std::uint64_t after, std::size_t limit) {
  auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  std::vector<feature_record> out;
  if (limit == 0) return out;
  auto* q = s.since_stmt.get();
  stmt_use use(q);
  sqlite3_bind_int64(q, 1, after > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : as_i64(after));
  sqlite3_bind_int64(q, 2, limit > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(limit));
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    auto r = s.read_row(q);
    if (!r) return r.error();
    out.push_back(std::move(*r));
  }
  if (rc != SQLITE_DONE) return s.db_error("cannot read records after cursor " + std::to_string(after));
  s.counts.rows_read += out.size();
  return out;
}

result<std::optional<feature_record>> sqlite_store::get(std::uint64_t tuple_id) {
  auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  auto* q = s.by_id_stmt.get();
  stmt_use use(q);
  sqlite3_bind_int64(q, 1, as_i64(tuple_id));
  const int rc = sqlite3_step(q);
  if (rc == SQLITE_DONE) return std::optional<feature_record>();
  if (rc != SQLITE_ROW) return s.db_error("cannot look up tuple " + std::to_string(tuple_id));
  auto r = s.read_row(q);
  if (!r) return r.error();
  return std::optional<feature_record>(std::move(*r));
}

result<knowledge_entry> sqlite_store::put_knowledge(std::string document, std::string summary,
                                             std::int64_t stored_at_ms) {
  auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  auto* q = s.knowledge_insert_stmt.get();
  {
    stmt_use use(q);
    sqlite3_bind_int64(q, 1, stored_at_ms);
    sqlite3_bind_text(q, 2, summary.data(), static_cast<int>(summary.size()), SQLITE_STATIC);
    sqlite3_bind_text(q, 3, document.data(), static_cast<int>(document.size()), SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) return s.db_error("cannot store a knowledge document");
  }
  knowledge_entry e;
  e.version = as_u64(sqlite3_last_insert_rowid(s.db.get()));
  e.stored_at_ms = stored_at_ms;
  e.summary = std::move(summary);
  e.document = std::move(document);
  return e;
}

result<std::optional<knowledge_entry>> sqlite_store::knowledge(std::uint64_t version) {
  auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  auto* q = version == 0 ? s.knowledge_latest_stmt.get() : s.knowledge_by_version_stmt.get();
  stmt_use use(q);
  if (version != 0) {
    sqlite3_bind_int64(q, 1, version > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : as_i64(version));
  }
  const int rc = sqlite3_step(q);
  if (rc == SQLITE_DONE) return std::optional<knowledge_entry>();
  if (rc != SQLITE_ROW) return s.db_error("cannot read knowledge version " + std::to_string(version));
  knowledge_entry e;
  e.version = as_u64(sqlite3_column_int64(q, 0));
  e.stored_at_ms = sqlite3_column_int64(q, 1);
  e.summary = column_text(q, 2);
  e.document = column_text(q, 3);
  return std::optional<knowledge_entry>(std::move(e));
}

result<std::vector<knowledge_entry>> sqlite_store::knowledge_history(std::size_t limit) {
  auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  std::vector<knowledge_entry> out;
  if (limit == 0) return out;
  auto* q = s.knowledge_history_stmt.get();
  stmt_use use(q);
  sqlite3_bind_int64(q, 1, limit > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(limit));
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    knowledge_entry e;
    e.version = as_u64(sqlite3_column_int64(q, 0));
    e.stored_at_ms = sqlite3_column_int64(q, 1);
    e.summary = column_text(q, 2);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return s.db_error("cannot list knowledge versions");
  return out;
}

store_counts sqlite_store::counts() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->counts;
}

const store_options& sqlite_store::options() const noexcept { return impl_->options; }

std::string sqlite_store::location() const { return std::filesystem::absolute(impl_->options.data_dir).string(); }

}  // namespace hio::repository
