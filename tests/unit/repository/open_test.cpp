// store::open's choice of backend from --store, and how a store names itself in logs.
#include <hio/repository/store.hpp>

#include "temp_dir.hpp"

#include <doctest/doctest.h>

using hio::repository::is_postgres;
using hio::repository::redacted;

TEST_CASE("--store names PostgreSQL by URL scheme or key=value conninfo, anything else is not PostgreSQL") {
  CHECK(is_postgres("postgres://hio@db:5432/hio"));
  CHECK(is_postgres("postgresql://hio@db/hio"));
  CHECK(is_postgres("host=db port=5432 dbname=hio"));
  CHECK_FALSE(is_postgres(""));
  CHECK_FALSE(is_postgres("/data/hio-repo"));
  CHECK_FALSE(is_postgres("mysql://db/hio"));
}

TEST_CASE("a store's password never reaches the log") {
  CHECK(redacted("postgres://hio:s3cret@db:5432/hio") == "postgres://hio:***@db:5432/hio");
  CHECK(redacted("postgresql://hio@db/hio?password=s3cret&sslmode=require") ==
        "postgresql://hio@db/hio?password=***&sslmode=require");
  CHECK(redacted("host=db password='a b\\' c' dbname=hio") == "host=db password=*** dbname=hio");
  CHECK(redacted("host=db password=s3cret") == "host=db password=***");
  CHECK(redacted("postgres://hio@db/hio") == "postgres://hio@db/hio");
}

TEST_CASE("a --store value that is neither SQLite's default nor PostgreSQL is refused with what to write") {
  hio::repository::testing::temp_dir dir;
  hio::repository::store_options o;
  o.data_dir = dir.path();
  o.store = "sqlite:/tmp/x";
  auto s = hio::repository::store::open(o);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == 500);
  CHECK(s.error().message.find("postgres://") != std::string::npos);
  o.store.clear();
  auto sqlite = hio::repository::store::open(o);
  REQUIRE(sqlite.has_value());
  CHECK((*sqlite)->location() == std::filesystem::absolute(dir.path()).string());
}
