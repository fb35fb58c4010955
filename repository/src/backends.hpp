#pragma once
// The two implementations of store, chosen by store::open (open.cpp).

#include <hio/repository/store.hpp>

namespace hio::repository::detail {

// SQLite and segment files in options.data_dir (store.cpp).
result<std::unique_ptr<store>> open_sqlite(store_options options);

// The PostgreSQL database options.store names (postgres_store.cpp).
result<std::unique_ptr<store>> open_postgres(store_options options);

}  // namespace hio::repository::detail
