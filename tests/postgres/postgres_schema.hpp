#pragma once
// A fresh schema per test in the PostgreSQL server named by $HIO_TEST_POSTGRES (a key=value conninfo;
// tests/integration/postgres_store_test.py starts a server and sets it), dropped with everything in it
// when the test ends. conninfo() points a store at it through search_path.

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>

#include <unistd.h>

namespace hio::repository::testing {

class postgres_schema {
 public:
  postgres_schema() {
    const char* base = std::getenv("HIO_TEST_POSTGRES");
    REQUIRE_MESSAGE(base != nullptr, "HIO_TEST_POSTGRES is not set: run tests/integration/postgres_store_test.py");
    base_ = base;
    static std::atomic<unsigned> counter{0};
    name_ = "hio_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    run("DROP SCHEMA IF EXISTS " + name_ + " CASCADE; CREATE SCHEMA " + name_);
  }
  ~postgres_schema() { run("DROP SCHEMA IF EXISTS " + name_ + " CASCADE", false); }
  postgres_schema(const postgres_schema&) = delete;
  postgres_schema& operator=(const postgres_schema&) = delete;

  std::string conninfo() const { return base_ + " options='-csearch_path=" + name_ + "'"; }
  const std::string& name() const { return name_; }

  // Runs SQL in this schema; returns the first value of the last result ("" when none).
  std::string run(const std::string& sql, bool check = true) const {
    std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(conninfo().c_str()), &PQfinish);
    if (PQstatus(c.get()) != CONNECTION_OK) {
      if (check) FAIL("cannot connect: " << PQerrorMessage(c.get()));
      return {};
    }
    PQsetNoticeProcessor(c.get(), [](void*, const char*) {}, nullptr);
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), &PQclear);
    const auto status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      if (check) FAIL(sql << ": " << PQresultErrorMessage(r.get()));
      return {};
    }
    return status == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
  }

 private:
  std::string base_;
  std::string name_;
};

}  // namespace hio::repository::testing
