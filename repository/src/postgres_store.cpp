// The PostgreSQL backend of store (see store.hpp), on libpq.
//
// Several repository processes may write one database. Two things then need care:
//
// - Cursors. A bigserial value is taken when a row is inserted but becomes visible when its transaction
//   commits, and two transactions may commit in the other order: a reader that has seen cursor 20 of a
//   later batch would never ask again for cursor 15 of an earlier one committed just after. So every
//   put() takes one transaction-scoped advisory lock (cursor_lock) before it looks up its ids and
//   inserts: batches run one after another across all processes, each takes its cursors from the
//   sequence while holding the lock, and PostgreSQL makes a commit visible before it releases the
//   transaction's locks, so a batch's rows are visible before the next batch can take a cursor.
//   A reader therefore never sees cursor c + k committed while c is still to come. Gaps (a rolled-back
//   batch's cursors) are harmless. The lock also makes the duplicate check exact: no other batch can
//   insert between the lookup and the insert. The unique index on tuple_id stays as the last word.
// - Knowledge versions: the same, with knowledge_lock, so versions also commit in increasing order.
//
// Values read from the server are checked like any untrusted input: the shape of each result (number,
// format and type of columns, value lengths), cursors ascending past `after`, and each blob decoded
// with the checksummed decoder the SQLite backend uses for its segment files.

#include <hio/repository/store.hpp>

#include "backends.hpp"
#include "blob.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace hio::repository {
namespace {

// Type OIDs of pg_type (fixed since PostgreSQL 7; the server's catalog header is not in libpq-dev).
constexpr Oid bytea_oid = 17, int8_oid = 20, int2_oid = 21, text_oid = 25;

// Keys of pg_advisory_xact_lock, "hio\0" in the high bytes so other applications' keys do not collide.
constexpr std::int64_t migrate_lock = 0x68696f0000000001;
constexpr std::int64_t cursor_lock = 0x68696f0000000002;
constexpr std::int64_t knowledge_lock = 0x68696f0000000003;

// The largest value PostgreSQL stores in one field is 1 GB; refuse before sending rather than after.
constexpr std::size_t max_field_bytes = (1u << 30) - (1u << 16);

// The schema, one step per version. A step runs once, inside the transaction that records it in
// hio_schema_migrations; a later version appends a step and never edits an earlier one.
struct migration {
  int version;
  const char* description;
  const char* sql;
};
constexpr std::array migrations{
    migration{1, "tuples, counters and knowledge",
              // source, error and worker are bytea: a record's text fields are bytes, not necessarily
              // UTF-8, and must come back as they were sent. The blob is stored uncompressed (EXTERNAL):
              // features are floats that do not compress, and octet_length() then reads no data.
              "CREATE TABLE hio_tuples ("
              " cursor bigserial PRIMARY KEY, tuple_id bigint NOT NULL UNIQUE, source bytea NOT NULL,"
              " size bigint NOT NULL, xxh3 bigint NOT NULL, status smallint NOT NULL, error bytea NOT NULL,"
              " worker bytea NOT NULL, channel bigint NOT NULL, processed_at_ms bigint NOT NULL,"
              " blob bytea NOT NULL);"
              "ALTER TABLE hio_tuples ALTER COLUMN blob SET STORAGE EXTERNAL;"
              "CREATE TABLE hio_counters (name text PRIMARY KEY, value bigint NOT NULL);"
              "INSERT INTO hio_counters VALUES ('records', 0), ('failed', 0), ('batches', 0),"
              " ('duplicates', 0), ('conflicts', 0);"
              "CREATE TABLE hio_knowledge ("
              " version bigserial PRIMARY KEY, stored_at_ms bigint NOT NULL, summary text NOT NULL,"
              " document text NOT NULL);"},
};

constexpr const char* row_columns =
    "cursor, tuple_id, source, size, xxh3, status, error, worker, channel, processed_at_ms, blob";
constexpr std::initializer_list<Oid> row_types = {int8_oid,  int8_oid,  bytea_oid, int8_oid, int8_oid, int2_oid,
                                                  bytea_oid, bytea_oid, int8_oid,  int8_oid, bytea_oid};

struct result_free {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
struct conn_free {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using pg_result = std::unique_ptr<PGresult, result_free>;
using conn_ptr = std::unique_ptr<PGconn, conn_free>;

std::int64_t as_i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t as_u64(std::int64_t v) { return static_cast<std::uint64_t>(v); }
std::int64_t clamp_i64(std::uint64_t v) {
  return v > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(v);
}

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// One line of a libpq message (they end in a newline and may hold several lines).
std::string one_line(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& c : s) {
    if (c == '\n') c = ' ';
  }
  return s.empty() ? "unknown error" : s;
}

// Parameters of one statement, all sent in binary format except those added with text().
class params {
 public:
  params& i64(std::int64_t v) {
    std::string b;
    put_be(b, static_cast<std::uint64_t>(v), 8);
    return add(std::move(b), int8_oid, 1);
  }
  params& bytes(std::string_view v) { return add(std::string(v), bytea_oid, 1); }
  params& utf8(std::string_view v) { return add(std::string(v), text_oid, 1); }
  // A value in PostgreSQL's text form, typed by the statement (e.g. an array literal with $1::bigint[]).
  params& text(std::string v) { return add(std::move(v), 0, 0); }

  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }
  const char* const* values() const { return pointers_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  params& add(std::string v, Oid type, int format) {
    values_.push_back(std::move(v));  // a deque: earlier elements never move
    pointers_.push_back(values_.back().c_str());
    lengths_.push_back(static_cast<int>(values_.back().size()));
    types_.push_back(type);
    formats_.push_back(format);
    return *this;
  }
  std::deque<std::string> values_;
  std::vector<const char*> pointers_;
  std::vector<int> lengths_;
  std::vector<Oid> types_;
  std::vector<int> formats_;
};

// Reads the values of a binary-format result whose shape check_shape() has accepted. Any value that is
// NULL or has the wrong length clears ok(); the caller turns that into one error.
class row_reader {
 public:
  row_reader(const PGresult* r, int row) : r_(r), row_(row) {}
  std::int64_t i64(int col) {
    if (!sized(col, 8)) return 0;
    std::uint64_t v = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row_, col));
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return static_cast<std::int64_t>(v);
  }
  std::int16_t i16(int col) {
    if (!sized(col, 2)) return 0;
    const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row_, col));
    return static_cast<std::int16_t>((p[0] << 8) | p[1]);
  }
  std::string bytes(int col) {
    if (PQgetisnull(r_, row_, col)) {
      ok_ = false;
      return {};
    }
    return std::string(PQgetvalue(r_, row_, col), static_cast<std::size_t>(PQgetlength(r_, row_, col)));
  }
  bool ok() const { return ok_; }

 private:
  bool sized(int col, int n) {
    if (PQgetisnull(r_, row_, col) || PQgetlength(r_, row_, col) != n) ok_ = false;
    return ok_;
  }
  const PGresult* r_;
  int row_;
  bool ok_ = true;
};

// Error (code 500) unless `r` has exactly the columns `types`, in binary format.
result<void> check_shape(const PGresult* r, std::initializer_list<Oid> types, const std::string& what) {
  if (PQnfields(r) != static_cast<int>(types.size())) {
    return make_error(500, what + ": the database returned " + std::to_string(PQnfields(r)) + " columns, expected " +
                               std::to_string(types.size()));
  }
  int i = 0;
  for (const Oid t : types) {
    if (PQfformat(r, i) != 1 || PQftype(r, i) != t) {
      return make_error(500, what + ": column " + std::to_string(i) + " has type " + std::to_string(PQftype(r, i)) +
                                 ", expected " + std::to_string(t) + ": is this a database of hio?");
    }
    ++i;
  }
  return {};
}

// The state of one store: one connection, used under `mutex` only.
struct pg_impl {
  store_options options;
  std::string where;  // options.store without its password
  std::mutex mutex;
  conn_ptr conn;
  store_counts last_counts;     // the database's counters as last read (counts() when it is unreachable)
  std::uint64_t rows_read = 0;  // rows since() returned in this process

  error conn_error(const std::string& what) const {
    return make_error(500, what + ": " + one_line(conn ? PQerrorMessage(conn.get()) : "not connected"));
  }

  // Connects, or reconnects a connection that has been lost (a restarted or unreachable server).
  result<void> connect() {
    if (conn && PQstatus(conn.get()) == CONNECTION_OK) return {};
    if (conn) {
      spdlog::warn("repository: connection to {} lost; reconnecting", where);
      PQreset(conn.get());
    } else {
      // Defaults first: libpq keeps the last value of a repeated key, so the conninfo may override them.
      const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
      const char* values[] = {"10", "hio-repository", options.store.c_str(), nullptr};
      conn.reset(PQconnectdbParams(keys, values, 1));
    }
    if (!conn) return make_error(500, "cannot connect to " + where + ": out of memory");
    if (PQstatus(conn.get()) != CONNECTION_OK) return conn_error("cannot connect to " + where);
    // The server's notices ("relation already exists, skipping") go to the debug log, not to stderr.
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char* message) { spdlog::debug("repository: postgres: {}", one_line(message)); },
        nullptr);
    // put() promises its batch is durable when it returns: a server configured for asynchronous
    // commit would break that, so this session commits synchronously whatever the server's default.
    auto sync = exec_simple("SHOW synchronous_commit", PGRES_TUPLES_OK);
    if (!sync) return sync.error();
    if (PQntuples(sync->get()) == 1 && std::string_view(PQgetvalue(sync->get(), 0, 0)) == "off") {
      if (auto r = exec_simple("SET synchronous_commit TO on", PGRES_COMMAND_OK); !r) return r.error();
    }
    return {};
  }

  result<pg_result> check(PGresult* raw, ExecStatusType want, const char* sql) {
    pg_result r(raw);
    if (!r) return conn_error(std::string("cannot run '") + sql + "'");
    if (PQresultStatus(r.get()) != want) {
      return make_error(500, std::string("repository database: ") + one_line(PQresultErrorMessage(r.get())) +
                                 " (in: " + std::string(sql).substr(0, 200) + ")");
    }
    return r;
  }

  result<pg_result> exec_simple(const char* sql, ExecStatusType want) {
    return check(PQexec(conn.get(), sql), want, sql);
  }

  result<pg_result> exec(const char* sql, const params& p, ExecStatusType want = PGRES_TUPLES_OK) {
    return check(PQexecParams(conn.get(), sql, p.size(), p.types(), p.values(), p.lengths(), p.formats(), 1), want,
                 sql);
  }

  // Begins a transaction holding advisory lock `key` until it ends. A connection found dead here has
  // done nothing of this transaction yet, so it is reconnected and the begin tried once more.
  result<void> begin(std::int64_t key) {
    const std::string sql = "BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(key) + ")";
    for (int attempt = 0;; ++attempt) {
      if (auto r = connect(); !r) return r;
      auto r = exec_simple(sql.c_str(), PGRES_TUPLES_OK);
      if (r) return {};
      if (attempt > 0 || PQstatus(conn.get()) == CONNECTION_OK) {
        rollback();
        return r.error();
      }
    }
  }

  result<void> commit() {
    auto r = exec_simple("COMMIT", PGRES_COMMAND_OK);
    if (!r) return r.error();
    // A transaction that failed answers COMMIT with ROLLBACK, not with an error.
    if (std::string_view(PQcmdStatus(r->get())) != "COMMIT") {
      return make_error(500, "repository database: the transaction was rolled back");
    }
    return {};
  }

  void rollback() {
    if (conn && PQstatus(conn.get()) == CONNECTION_OK && PQtransactionStatus(conn.get()) != PQTRANS_IDLE) {
      pg_result(PQexec(conn.get(), "ROLLBACK"));
    }
  }

  // Runs `body` in a transaction holding advisory lock `key`; commits when it succeeds, rolls back
  // otherwise. A COMMIT whose answer is lost may still have committed: put() is idempotent, so the
  // caller's retry finds its records stored.
  template <class F>
  result<void> transaction(std::int64_t key, F&& body) {
    if (auto r = begin(key); !r) return r;
    auto r = body();
    if (r) r = commit();
    if (!r) rollback();
    return r;
  }

  result<void> migrate() {
    auto body = [&]() -> result<void> {
      if (auto r = exec_simple("CREATE TABLE IF NOT EXISTS hio_schema_migrations (version integer PRIMARY KEY,"
                               " description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                               PGRES_COMMAND_OK);
          !r) {
        return r.error();
      }
      auto v = exec("SELECT coalesce(max(version), 0)::bigint FROM hio_schema_migrations", params());
      if (!v) return v.error();
      if (auto r = check_shape(v->get(), {int8_oid}, "schema version"); !r) return r;
      row_reader row(v->get(), 0);
      const auto current = PQntuples(v->get()) == 1 ? row.i64(0) : -1;
      if (!row.ok() || current < 0) return make_error(500, "cannot read the schema version of " + where);
      const auto latest = migrations.back().version;
      if (current > latest) {
        return make_error(500, where + " has hio schema version " + std::to_string(current) +
                                   ", newer than this hio-repository's " + std::to_string(latest) +
                                   ": upgrade hio-repository");
      }
      for (const auto& m : migrations) {
        if (m.version <= current) continue;
        if (auto r = exec_simple(m.sql, PGRES_COMMAND_OK); !r) return r.error();
        auto done = exec("INSERT INTO hio_schema_migrations (version, description) VALUES ($1::integer, $2)",
                         params().text(std::to_string(m.version)).utf8(m.description), PGRES_COMMAND_OK);
        if (!done) return done.error();
        spdlog::info("repository: {} migrated to schema version {} ({})", where, m.version, m.description);
      }
      return {};
    };
    return transaction(migrate_lock, body);
  }

  result<store_counts> read_counts() {
    if (auto r = connect(); !r) return r.error();
    auto q = exec("SELECT name, value FROM hio_counters", params());
    if (!q) return q.error();
    if (auto r = check_shape(q->get(), {text_oid, int8_oid}, "counters"); !r) return r.error();
    store_counts c;
    for (int i = 0; i < PQntuples(q->get()); ++i) {
      row_reader row(q->get(), i);
      const auto name = row.bytes(0);
      const auto value = row.i64(1);
      if (!row.ok() || value < 0) return make_error(500, "counter " + name + " of " + where + " is not a count");
      if (name == "records") c.records = as_u64(value);
      else if (name == "failed") c.failed = as_u64(value);
      else if (name == "batches") c.batches = as_u64(value);
      else if (name == "duplicates") c.duplicates = as_u64(value);
      else if (name == "conflicts") c.conflicts = as_u64(value);
    }
    if (c.failed > c.records) return make_error(500, "the counters of " + where + " count more failed than records");
    c.stored = c.records - c.failed;
    return c;
  }

  // The record of row `i` of `r` (selected with row_columns), its blob decoded and checked.
  result<feature_record> read_row(const PGresult* r, int i) {
    row_reader row(r, i);
    feature_record out;
    out.cursor = as_u64(row.i64(0));
    out.tuple_id = as_u64(row.i64(1));
    out.source = row.bytes(2);
    out.size = as_u64(row.i64(3));
    out.xxh3 = as_u64(row.i64(4));
    const auto status = row.i16(5);
    out.error = row.bytes(6);
    out.worker = row.bytes(7);
    const auto channel = row.i64(8);
    out.processed_at_ms = row.i64(9);
    if (!row.ok()) return make_error(500, "a row of " + where + " has a NULL or malformed value");
    if (status != 0 && status != 1) {
      return make_error(500, "tuple " + std::to_string(out.tuple_id) + " has status " + std::to_string(status));
    }
    if (channel < 0 || channel > std::numeric_limits<std::uint32_t>::max()) {
      return make_error(500, "tuple " + std::to_string(out.tuple_id) + " has channel " + std::to_string(channel));
    }
    out.status = status == 1 ? record_status::failed : record_status::stored;
    out.channel = static_cast<std::uint32_t>(channel);
    auto blob = detail::decode_blob(
        std::string_view(PQgetvalue(r, i, 10), static_cast<std::size_t>(PQgetlength(r, i, 10))));
    if (PQgetisnull(r, i, 10) || !blob) {
      return make_error(500, "tuple " + std::to_string(out.tuple_id) + " in " + where + ": " +
                                 (blob ? std::string("no blob") : blob.error().message));
    }
    if (blob->tuple_id != out.tuple_id) {
      return make_error(500, "tuple " + std::to_string(out.tuple_id) + " in " + where + " holds the blob of tuple " +
                                 std::to_string(blob->tuple_id));
    }
    out.metadata = std::move(blob->metadata);
    out.features = std::move(blob->features);
    out.series = std::move(blob->series);
    return out;
  }

  // Writes `fresh` with COPY (binary): one round trip per batch whatever its size, where INSERT takes one
  // per row. Cursors come from the column's sequence, in this order.
  result<void> copy_rows(const std::vector<const feature_record*>& fresh, const std::vector<std::string>& blobs) {
    auto start = exec_simple(
        "COPY hio_tuples (tuple_id, source, size, xxh3, status, error, worker, channel, processed_at_ms, blob)"
        " FROM STDIN (FORMAT binary)",
        PGRES_COPY_IN);
    if (!start) return start.error();
    std::string buf("PGCOPY\n\377\r\n\0", 11);
    put_be(buf, 0, 4);  // flags
    put_be(buf, 0, 4);  // header extension length
    auto send = [&]() -> bool {
      const bool ok = PQputCopyData(conn.get(), buf.data(), static_cast<int>(buf.size())) == 1;
      buf.clear();
      return ok;
    };
    auto field = [&](std::string_view v) {
      put_be(buf, v.size(), 4);
      buf += v;
    };
    auto int_field = [&](std::uint64_t v, int bytes) {
      put_be(buf, static_cast<std::uint64_t>(bytes), 4);
      put_be(buf, v, bytes);
    };
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      const auto& r = *fresh[i];
      put_be(buf, 10, 2);
      int_field(r.tuple_id, 8);
      field(r.source);
      int_field(r.size, 8);
      int_field(r.xxh3, 8);
      int_field(r.status == record_status::failed ? 1 : 0, 2);
      field(r.error);
      field(r.worker);
      int_field(r.channel, 8);
      int_field(static_cast<std::uint64_t>(r.processed_at_ms), 8);
      field(blobs[i]);
      if (buf.size() >= (1u << 20) && !send()) return conn_error("cannot send records");
    }
    put_be(buf, 0xffff, 2);  // the trailer: a field count of -1
    if (!send()) return conn_error("cannot send records");
    if (PQputCopyEnd(conn.get(), nullptr) != 1) return conn_error("cannot end sending records");
    auto done = check(PQgetResult(conn.get()), PGRES_COMMAND_OK, "COPY hio_tuples");
    // libpq ends the results of a statement with a null one; the connection takes no query before it.
    for (pg_result extra(PQgetResult(conn.get())); extra; extra.reset(PQgetResult(conn.get()))) {
    }
    if (!done) return done.error();
    return {};
  }
};

class postgres_store final : public store {
 public:
  explicit postgres_store(std::unique_ptr<pg_impl> p) : impl_(std::move(p)) {}

  result<put_result> put(std::vector<feature_record> batch) override {
    auto& s = *impl_;
    std::lock_guard lock(s.mutex);
    put_result out;
    if (batch.empty()) return out;

    std::string ids = "{";
    for (const auto& r : batch) {
      if (ids.size() > 1) ids += ',';
      ids += std::to_string(as_i64(r.tuple_id));
    }
    ids += '}';

    std::vector<const feature_record*> fresh;
    std::vector<std::string> blobs;
    std::uint64_t failed = 0;
    auto body = [&]() -> result<void> {
      out = put_result{};
      fresh.clear();
      blobs.clear();
      failed = 0;
      auto q = s.exec("SELECT tuple_id, size, xxh3 FROM hio_tuples WHERE tuple_id = ANY($1::bigint[])",
                      params().text(ids));
      if (!q) return q.error();
      if (auto r = check_shape(q->get(), {int8_oid, int8_oid, int8_oid}, "known tuples"); !r) return r;
      std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> known;  // id -> size, xxh3
      for (int i = 0; i < PQntuples(q->get()); ++i) {
        row_reader row(q->get(), i);
        const auto id = as_u64(row.i64(0));
        const auto size = as_u64(row.i64(1));
        const auto xxh3 = as_u64(row.i64(2));
        if (!row.ok()) return make_error(500, "a known tuple of " + s.where + " has a malformed value");
        known.emplace(id, std::pair(size, xxh3));
      }
      // As in the SQLite backend: the first record of an id wins; a second one is a duplicate when it
      // names the same tuple (size and XXH3: a resend), and a conflict when it does not.
      std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> seen;
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
        if (auto it = known.find(r.tuple_id); it != known.end()) {
          second(r, it->second);
          continue;
        }
        std::string blob;
        if (auto e = detail::append_blob(r, blob); !e) return e;
        if (blob.size() > max_field_bytes) {
          return make_error(400, "record of tuple " + std::to_string(r.tuple_id) + " is too large to store");
        }
        fresh.push_back(&r);
        blobs.push_back(std::move(blob));
        if (r.status == record_status::failed) ++failed;
      }
      if (!fresh.empty()) {
        if (auto r = s.copy_rows(fresh, blobs); !r) return r;
      }
      auto c = s.exec(
          "UPDATE hio_counters SET value = value + CASE name WHEN 'records' THEN $1 WHEN 'failed' THEN $2"
          " WHEN 'batches' THEN 1 WHEN 'duplicates' THEN $3 WHEN 'conflicts' THEN $4 ELSE 0 END",
          params()
              .i64(static_cast<std::int64_t>(fresh.size()))
              .i64(static_cast<std::int64_t>(failed))
              .i64(static_cast<std::int64_t>(out.duplicates))
              .i64(static_cast<std::int64_t>(out.conflicts.size())),
          PGRES_COMMAND_OK);
      if (!c) return c.error();
      return {};
    };
    if (auto r = s.transaction(cursor_lock, body); !r) return r.error();
    out.stored = fresh.size();
    return out;
  }

  result<std::vector<feature_record>> since(std::uint64_t after, std::size_t limit) override {
    auto& s = *impl_;
    std::lock_guard lock(s.mutex);
    std::vector<feature_record> out;
    if (limit == 0) return out;
    if (auto r = s.connect(); !r) return r.error();
    // A page of large records must not be held in memory whole, whatever `limit` says: rows stop at
    // page_bytes of blobs. The window sum reads each blob's length from its TOAST pointer, not its
    // bytes; the first row of a page always passes (its preceding sum is 0).
    const std::string sql = std::string("SELECT ") + row_columns +
                            " FROM (SELECT *, sum(octet_length(blob)) OVER (ORDER BY cursor) AS page_bytes"
                            " FROM hio_tuples WHERE cursor > $1 ORDER BY cursor LIMIT $2) page"
                            " WHERE page_bytes - octet_length(blob) < $3 ORDER BY cursor";
    auto q = s.exec(sql.c_str(),
                    params().i64(clamp_i64(after)).i64(clamp_i64(limit)).i64(clamp_i64(s.options.page_bytes)));
    if (!q) return q.error();
    const std::string what = "records after cursor " + std::to_string(after);
    if (auto r = check_shape(q->get(), row_types, what); !r) return r.error();
    const int n = PQntuples(q->get());
    if (static_cast<std::size_t>(n) > limit) return make_error(500, what + ": the database returned too many rows");
    out.reserve(static_cast<std::size_t>(n));
    std::uint64_t last = after;
    for (int i = 0; i < n; ++i) {
      auto r = s.read_row(q->get(), i);
      if (!r) return r.error();
      if (r->cursor <= last) return make_error(500, what + ": the database returned cursors out of order");
      last = r->cursor;
      out.push_back(std::move(*r));
    }
    s.rows_read += out.size();
    return out;
  }

  result<std::optional<feature_record>> get(std::uint64_t tuple_id) override {
    auto& s = *impl_;
    std::lock_guard lock(s.mutex);
    if (auto r = s.connect(); !r) return r.error();
    const std::string sql = std::string("SELECT ") + row_columns + " FROM hio_tuples WHERE tuple_id = $1";
    auto q = s.exec(sql.c_str(), params().i64(as_i64(tuple_id)));
    if (!q) return q.error();
    const std::string what = "tuple " + std::to_string(tuple_id);
    if (auto r = check_shape(q->get(), row_types, what); !r) return r.error();
    if (PQntuples(q->get()) == 0) return std::optional<feature_record>();
    if (PQntuples(q->get()) != 1) return make_error(500, what + ": the database returned several rows");
    auto r = s.read_row(q->get(), 0);
    if (!r) return r.error();
    if (r->tuple_id != tuple_id) return make_error(500, what + ": the database returned another tuple");
    return std::optional<feature_record>(std::move(*r));
  }

  result<knowledge_entry> put_knowledge(std::string document, std::string summary,
                                        std::int64_t stored_at_ms) override {
    auto& s = *impl_;
    std::lock_guard lock(s.mutex);
    knowledge_entry e;
    auto body = [&]() -> result<void> {
      auto q = s.exec("INSERT INTO hio_knowledge (stored_at_ms, summary, document) VALUES ($1, $2, $3)"
                      " RETURNING version",
                      params().i64(stored_at_ms).utf8(summary).utf8(document));
      if (!q) return q.error();
      if (auto r = check_shape(q->get(), {int8_oid}, "knowledge version"); !r) return r;
      row_reader row(q->get(), 0);
      const auto version = PQntuples(q->get()) == 1 ? row.i64(0) : 0;
      if (!row.ok() || version <= 0) return make_error(500, "the database returned no knowledge version");
      e.version = as_u64(version);
      return {};
    };
    if (auto r = s.transaction(knowledge_lock, body); !r) return r.error();
    e.stored_at_ms = stored_at_ms;
    e.summary = std::move(summary);
    e.document = std::move(document);
    return e;
  }

  result<std::optional<knowledge_entry>> knowledge(std::uint64_t version) override {
    auto& s = *impl_;
    std::lock_guard lock(s.mutex);
    if (auto r = s.connect(); !r) return r.error();
    auto q = version == 0
                 ? s.exec("SELECT version, stored_at_ms, summary, document FROM hio_knowledge"
                          " ORDER BY version DESC LIMIT 1",
                          params())
                 : s.exec("SELECT version, stored_at_ms, summary, document FROM hio_knowledge WHERE version = $1",
                          params().i64(clamp_i64(version)));
    if (!q) return q.error();
    const std::string what = "knowledge version " + std::to_string(version);
    if (auto r = check_shape(q->get(), {int8_oid, int8_oid, text_oid, text_oid}, what); !r) return r.error();
    if (PQntuples(q->get()) == 0) return std::optional<knowledge_entry>();
    row_reader row(q->get(), 0);
    knowledge_entry e;
    e.version = as_u64(row.i64(0));
    e.stored_at_ms = row.i64(1);
    e.summary = row.bytes(2);
    e.document = row.bytes(3);
    if (!row.ok() || PQntuples(q->get()) != 1 || (version != 0 && e.version != version)) {
      return make_error(500, what + ": the database returned a malformed row");
    }
    return std::optional<knowledge_entry>(std::move(e));
  }

  result<std::vector<knowledge_entry>> knowledge_history(std::size_t limit) override {
    auto& s = *impl_;
    std::lock_guard lock(s.mutex);
    std::vector<knowledge_entry> out;
    if (limit == 0) return out;
    if (auto r = s.connect(); !r) return r.error();
    auto q = s.exec("SELECT version, stored_at_ms, summary FROM hio_knowledge ORDER BY version DESC LIMIT $1",
                    params().i64(clamp_i64(limit)));
    if (!q) return q.error();
    if (auto r = check_shape(q->get(), {int8_oid, int8_oid, text_oid}, "knowledge versions"); !r) return r.error();
    const int n = PQntuples(q->get());
    if (static_cast<std::size_t>(n) > limit) return make_error(500, "knowledge versions: too many rows");
    for (int i = 0; i < n; ++i) {
      row_reader row(q->get(), i);
      knowledge_entry e;
      e.version = as_u64(row.i64(0));
      e.stored_at_ms = row.i64(1);
      e.summary = row.bytes(2);
      if (!row.ok()) return make_error(500, "knowledge versions: the database returned a malformed row");
      out.push_back(std::move(e));
    }
    return out;
  }

  store_counts counts() const override {
    auto& s = *impl_;
    std::lock_guard lock(s.mutex);
    if (auto c = s.read_counts()) {
      s.last_counts = *c;
    } else {
      spdlog::warn("repository: cannot read the counts of {}: {}", s.where, c.error().message);
    }
    auto c = s.last_counts;
    c.rows_read = s.rows_read;
    return c;
  }

  const store_options& options() const noexcept override { return impl_->options; }
  std::string location() const override { return "PostgreSQL " + impl_->where; }

 private:
  std::unique_ptr<pg_impl> impl_;
};

}  // namespace

namespace detail {

result<std::unique_ptr<store>> open_postgres(store_options options) {
  auto p = std::make_unique<pg_impl>();
  p->options = std::move(options);
  p->where = redacted(p->options.store);
  if (p->options.page_bytes == 0) return make_error(500, "page_bytes must be positive");
  if (auto r = p->migrate(); !r) return r.error();
  auto c = p->read_counts();
  if (!c) return c.error();
  p->last_counts = *c;
  return std::unique_ptr<store>(new postgres_store(std::move(p)));
}

}  // namespace detail
}  // namespace hio::repository
