// `hio export --format hdf5 OUT.h5`: every record of the repository and the latest knowledge in one HDF5
// file (layout: docs/export.md). Pages are read with `GET /v1/features` and appended to extendible
// datasets as they come, so memory holds one page, the tuple ids and the parameters, never the table.
// Everything the repository sends is checked; the file is written as OUT.tmp and renamed when complete.
#include <hio/cli/commands.hpp>

#include <cstdio>

#ifndef HIO_WITH_HDF5

namespace hio::cli {

int export_file(const export_options&) {
  std::fprintf(stderr, "hio export: this hio was built without HDF5 (install libhdf5-dev and rebuild)\n");
  return 1;
}

}  // namespace hio::cli

#else

#include <hio/common/http.hpp>
#include <hio/common/json.hpp>

#include <nlohmann/json.hpp>

#include <hdf5.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hio::cli {

namespace {

using json = nlohmann::json;

constexpr std::uint64_t page_records = 8192;           // records asked for per page (16 row chunks)
constexpr std::size_t max_page_bytes = 256u << 20;     // a larger answer is refused (features or knowledge)
constexpr std::size_t max_block_values = 4u << 20;     // doubles per dense block written to /features
constexpr hsize_t max_chunk_columns = 256;              // /features chunks: up to 256 columns ...
constexpr hsize_t chunk_doubles = 32768;                // ... of about 128-256 KiB (rows: a power of 2)
constexpr hsize_t column_chunk = 4096;                  // chunk length of the 1-D datasets
constexpr int deflate_level = 4;
constexpr std::int64_t format_version = 1;
const double missing = std::numeric_limits<double>::quiet_NaN();  // a value not there

// One HDF5 identifier and the function that closes it. Move-only; closes on destruction. The C API
// is used directly (HDF5's C++ wrapper throws exceptions, a separate Debian library with its own ABI):
// this is the only RAII it needs.
class h5_id {
 public:
  h5_id() = default;
  h5_id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  h5_id(h5_id&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  h5_id& operator=(h5_id&& o) noexcept {
    if (this != &o) {
      close();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  h5_id(const h5_id&) = delete;
  h5_id& operator=(const h5_id&) = delete;
  ~h5_id() { close(); }

  hid_t get() const noexcept { return id_; }
  explicit operator bool() const noexcept { return id_ >= 0; }
  // Closes now; false when HDF5 reports an error (for a file: what it had buffered may not be written).
  bool close() noexcept {
    if (id_ < 0) return true;
    const bool ok = close_(std::exchange(id_, H5I_INVALID_HID)) >= 0;
    return ok;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

// The innermost message of HDF5's error stack ("unable to open file: ... Permission denied"), or "".
std::string hdf5_error() {
  std::string out;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        if (n == 0 && e && e->desc) *static_cast<std::string*>(data) = e->desc;
        return 0;
      },
      &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

error h5_failure(const std::string& what) {
  const auto why = hdf5_error();
  return make_error(0, what + (why.empty() ? "" : ": " + why));
}

h5_id string_type() {
  h5_id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

h5_id space(std::initializer_list<hsize_t> dims, std::initializer_list<hsize_t> max = {}) {
  std::vector<hsize_t> d(dims), m(max);
  return {H5Screate_simple(static_cast<int>(d.size()), d.data(), m.empty() ? nullptr : m.data()), H5Sclose};
}

bool deflate_available() { return H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0; }

// Dataset creation properties: chunked with `chunk` (shuffle + deflate when HDF5 has zlib), `fill`
// as the fill value when given.
h5_id chunked(std::vector<hsize_t> chunk, hid_t fill_type = H5I_INVALID_HID, const void* fill = nullptr) {
  h5_id p(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(p.get(), static_cast<int>(chunk.size()), chunk.data());
  if (deflate_available()) {
    H5Pset_shuffle(p.get());
    H5Pset_deflate(p.get(), deflate_level);
  }
  if (fill) H5Pset_fill_value(p.get(), fill_type, fill);
  return p;
}

result<h5_id> create_dataset(hid_t where, const char* name, hid_t type, hid_t space_id, hid_t dcpl) {
  h5_id d(H5Dcreate2(where, name, type, space_id, H5P_DEFAULT, dcpl, H5P_DEFAULT), H5Dclose);
  if (!d) return h5_failure(std::string("cannot create ") + name);
  return d;
}

// A fixed 1-D dataset of `n` values of `mem_type` (file type `file_type`), chunked and compressed when
// not empty.
result<void> write_column(hid_t where, const char* name, hid_t file_type, hid_t mem_type, std::size_t n,
                          const void* data) {
  auto sp = space({n});
  h5_id dcpl = n ? chunked({std::min<hsize_t>(n, column_chunk)}) : h5_id(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  auto d = create_dataset(where, name, file_type, sp.get(), dcpl.get());
  if (!d) return d.error();
  if (n && H5Dwrite(d->get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    return h5_failure(std::string("cannot write ") + name);
  return {};
}

result<void> write_strings(hid_t where, const char* name, const std::vector<std::string>& values) {
  std::vector<const char*> p;
  p.reserve(values.size());
  for (const auto& v : values) p.push_back(v.c_str());
  auto t = string_type();
  return write_column(where, name, t.get(), t.get(), p.size(), p.data());
}

template <class T>
hid_t native_type();
template <>
hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <>
hid_t native_type<std::int64_t>() { return H5T_NATIVE_INT64; }

hid_t file_type_of(hid_t native) {
  return native == H5T_NATIVE_DOUBLE ? H5T_IEEE_F64LE : H5T_STD_I64LE;
}

template <class T>
result<void> write_numbers(hid_t where, const char* name, const std::vector<T>& values) {
  return write_column(where, name, file_type_of(native_type<T>()), native_type<T>(), values.size(), values.data());
}

result<void> attribute(hid_t obj, const char* name, hid_t type, const void* value) {
  h5_id sp(H5Screate(H5S_SCALAR), H5Sclose);
  h5_id a(H5Acreate2(obj, name, type, sp.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a || H5Awrite(a.get(), type, value) < 0) return h5_failure(std::string("cannot write attribute ") + name);
  return {};
}
result<void> attribute(hid_t obj, const char* name, const std::string& v) {
  const char* p = v.c_str();
  auto t = string_type();
  return attribute(obj, name, t.get(), &p);
}
result<void> attribute(hid_t obj, const char* name, std::int64_t v) { return attribute(obj, name, H5T_NATIVE_INT64, &v); }
result<void> attribute(hid_t obj, const char* name, double v) { return attribute(obj, name, H5T_NATIVE_DOUBLE, &v); }

// A 1-D dataset that grows page by page.
class growing_column {
 public:
  static result<growing_column> create(hid_t where, const char* name, hid_t file_type, hid_t mem_type) {
    auto sp = space({0}, {H5S_UNLIMITED});
    auto dcpl = chunked({column_chunk});
    auto d = create_dataset(where, name, file_type, sp.get(), dcpl.get());
    if (!d) return d.error();
    growing_column c;
    c.name_ = name;
    c.mem_type_ = h5_id(H5Tcopy(mem_type), H5Tclose);
    c.dataset_ = std::move(*d);
    return c;
  }
  result<void> append(const void* data, std::size_t n) {
    if (n == 0) return {};
    const hsize_t start = size_, count = n, total = size_ + n;
    if (H5Dset_extent(dataset_.get(), &total) < 0) return h5_failure("cannot extend " + name_);
    h5_id fs(H5Dget_space(dataset_.get()), H5Sclose);
    H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
    auto ms = space({count});
    if (H5Dwrite(dataset_.get(), mem_type_.get(), ms.get(), fs.get(), H5P_DEFAULT, data) < 0)
      return h5_failure("cannot write " + name_);
    size_ = total;
    return {};
  }
  result<void> append_strings(const std::vector<std::string>& values) {
    std::vector<const char*> p;
    p.reserve(values.size());
    for (const auto& v : values) p.push_back(v.c_str());
    return append(p.data(), p.size());
  }
  bool close() { return dataset_.close() && mem_type_.close(); }

 private:
  std::string name_;
  h5_id mem_type_, dataset_;
  hsize_t size_ = 0;
};

// One parameter over all tuples: its present values by row (numbers, or text when any is not a number).
struct param_column {
  std::string name;
  std::vector<std::pair<std::uint64_t, double>> numbers;
  std::vector<std::pair<std::uint64_t, std::string>> texts;  // JSON text for values that are not strings
  bool numeric = true;
};

// What one page holds before it is appended.
struct page_rows {
  std::vector<std::uint64_t> ids;
  std::vector<std::string> sources, statuses, errors;
  std::vector<std::vector<std::pair<std::uint32_t, double>>> features;  // (column, value) per row
  void clear() { *this = page_rows{}; }
};

std::string text_of(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An error body for a one-line message: its "error" when it is such JSON, control characters as '?',
// runs of blanks as one, at most 200 characters.
std::string short_text(std::string_view body) {
  std::string text(body.substr(0, 4096));
  if (const json j = hio::parse_json_or_discarded(body); j.is_object() && j.contains("error") && j["error"].is_string())
    text = j["error"].get<std::string>();
  std::string out;
  for (const char c : text) {
    const bool blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out += blank ? ' ' : (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    if (out.size() == 200) return out + "...";
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The name of /params/<name>: '%' and '/' percent-encoded, "." as "%2E", "" as "%" (HDF5 link names).
std::string link_name(const std::string& name) {
  if (name.empty()) return "%";
  if (name == ".") return "%2E";
  std::string out;
  for (const char c : name) {
    if (c == '%') out += "%25";
    else if (c == '/') out += "%2F";
    else out += c;
  }
  return out;
}

std::optional<std::uint64_t> decimal_id(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty() || s.size() > 20 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Whether `v` is a whole number in [lo, hi] (an integer, or a float such as 3.0 from another producer).
bool integral(const json& v, std::int64_t lo, std::int64_t hi) {
  if (v.is_number_unsigned()) {
    const auto x = v.get<std::uint64_t>();
    return x <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
           static_cast<std::int64_t>(x) >= lo && static_cast<std::int64_t>(x) <= hi;
  }
  if (v.is_number_integer()) return v.get<std::int64_t>() >= lo && v.get<std::int64_t>() <= hi;
  if (!v.is_number_float()) return false;
  const double x = v.get<double>();
  return std::isfinite(x) && x == std::floor(x) && x >= static_cast<double>(lo) && x <= static_cast<double>(hi) &&
         std::fabs(x) < 0x1p62;
}

// The value of `v`, once integral() said yes.
std::int64_t as_int(const json& v) {
  return v.is_number_float() ? static_cast<std::int64_t>(v.get<double>()) : v.get<std::int64_t>();
}

std::string utc_iso8601(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Writes the export into an open file. Not thread-safe; one per export.
class exporter {
 public:
  exporter(const export_options& o, hid_t file) : o_(o), file_(file), http_(o.repository, {}, o.timeout) {
    http_.set_max_body_bytes(max_page_bytes);  // a longer answer stops being read at the limit
  }

  result<void> run() {
    if (auto r = create(); !r) return r;
    if (auto r = read_features(); !r) return r;
    if (auto r = finish_features(); !r) return r;
    if (auto r = write_params(); !r) return r;
    if (auto r = read_knowledge(); !r) return r;
    return write_root_attributes();
  }

  std::size_t tuples() const { return ids_.size(); }
  std::size_t features() const { return names_.size(); }
  std::size_t params() const { return params_.size(); }
  std::int64_t knowledge_version() const { return knowledge_version_; }

 private:
  // /features, once the first page with features says how wide its chunks should be: as wide as the
  // features then known (a sweep's feature set is one row of chunks), NaN where nothing was written.
  result<void> create_features(hsize_t cols) {
    const hsize_t chunk_cols = std::clamp<hsize_t>(cols, 1, max_chunk_columns);
    const hsize_t chunk_rows = std::clamp<hsize_t>(std::bit_floor(chunk_doubles / chunk_cols), 16, 8192);
    auto sp = space({0, 0}, {H5S_UNLIMITED, H5S_UNLIMITED});
    auto dcpl = chunked({chunk_rows, chunk_cols}, H5T_NATIVE_DOUBLE, &missing);
    auto d = create_dataset(file_, "features", H5T_IEEE_F64LE, sp.get(), dcpl.get());
    if (!d) return d.error();
    features_ = std::move(*d);
    return {};
  }

  result<void> create() {
    auto st = string_type();
    auto id = growing_column::create(file_, "tuple_id", H5T_STD_U64LE, H5T_NATIVE_UINT64);
    if (!id) return id.error();
    tuple_id_ = std::move(*id);
    growing_column* text[] = {&source_, &status_, &error_};
    const char* names[] = {"source", "status", "error"};
    for (int i = 0; i < 3; ++i) {
      auto c = growing_column::create(file_, names[i], st.get(), st.get());
      if (!c) return c.error();
      *text[i] = std::move(*c);
    }
    return {};
  }

  error unreadable(const error& e) const {
    const bool slow = e.message.find("timeout") != std::string::npos;
    return make_error(0, "cannot read the repository at " + o_.repository + ": " + e.message +
                             (slow ? " (--timeout " + std::to_string(o_.timeout.count()) + " s)" : ""));
  }

  error bad_page(const std::string& why) const {
    return make_error(0, "the repository at " + o_.repository + " sent a malformed page of records after cursor " +
                             std::to_string(page_after_) + ": " + why + "; nothing was written");
  }

  result<void> read_features() {
    for (;;) {
      page_after_ = cursor_;
      auto r = http_.get("/v1/features?after=" + std::to_string(cursor_) + "&limit=" + std::to_string(page_records) +
                         "&format=jsonl");
      if (!r) return unreadable(r.error());
      if (r->status != 200)
        return make_error(0, "the repository at " + o_.repository + " answered HTTP " + std::to_string(r->status) +
                                 " to GET /v1/features: " + short_text(r->body));
      if (r->body.size() > max_page_bytes)
        return bad_page("the page is " + std::to_string(r->body.size()) + " bytes, over the limit of " +
                        std::to_string(max_page_bytes));
      page_rows page;
      std::size_t start = 0, line_no = 0;
      const std::string& body = r->body;
      while (start < body.size()) {
        auto end = body.find('\n', start);
        if (end == std::string::npos) end = body.size();
        const std::string_view line(body.data() + start, end - start);
        start = end + 1;
        ++line_no;
        if (line.empty()) continue;
        if (page.ids.size() == page_records) return bad_page("more than the " + std::to_string(page_records) + " records asked for");
        if (auto ok = parse_record(line, line_no, page); !ok) return ok;
      }
      if (auto ok = append(page); !ok) return ok;
      if (page.ids.size() < page_records) return {};
    }
  }

  result<void> parse_record(std::string_view line, std::size_t line_no, page_rows& page) {
    const std::string where = "line " + std::to_string(line_no);
    const json j = hio::parse_json_or_discarded(line);
    if (!j.is_object())
      return bad_page(where + " is not a JSON object of at most " + std::to_string(hio::max_json_depth) + " levels");
    const auto id = j.find("id");
    if (id == j.end() || !id->is_number_unsigned()) return bad_page(where + " has no tuple id (an unsigned integer)");
    const auto cursor = j.find("cursor");
    if (cursor == j.end() || !cursor->is_number_unsigned() || cursor->get<std::uint64_t>() <= cursor_)
      return bad_page(where + ": its cursor does not advance past " + std::to_string(cursor_));
    cursor_ = cursor->get<std::uint64_t>();
    const auto tuple = id->get<std::uint64_t>();
    const auto row = ids_.size() + page.ids.size();
    if (!row_of_.emplace(tuple, row).second) return bad_page(where + ": tuple " + std::to_string(tuple) + " comes twice");
    page.ids.push_back(tuple);
    page.sources.push_back(text_of(j, "source"));
    page.statuses.push_back(text_of(j, "status"));
    page.errors.push_back(text_of(j, "error"));
    auto& values = page.features.emplace_back();
    if (const auto f = j.find("features"); f != j.end() && f->is_object()) {
      values.reserve(f->size());
      for (const auto& [name, v] : f->items()) {
        auto [it, fresh] = column_of_.try_emplace(name, names_.size());
        if (fresh) {
          if (names_.size() == o_.max_columns) {
            column_of_.erase(it);
            return make_error(0, "the repository's records have more than " + std::to_string(o_.max_columns) +
                                     " distinct feature names (the table would be tuples x names); raise --max-columns");
          }
          names_.push_back(name);
        }
        values.emplace_back(static_cast<std::uint32_t>(it->second), v.is_number() ? v.get<double>() : missing);
      }
    }
    const auto meta = j.find("metadata");
    if (meta == j.end() || !meta->is_object()) return {};
    const auto p = meta->find("params");
    if (p == meta->end() || !p->is_object()) return {};
    for (const auto& [name, v] : p->items()) {
      if (v.is_null()) continue;
      auto [it, fresh] = param_of_.try_emplace(name, params_.size());
      if (fresh) {
        if (params_.size() == o_.max_columns) {
          param_of_.erase(it);
          return make_error(0, "the repository's records have more than " + std::to_string(o_.max_columns) +
                                   " distinct parameter names; raise --max-columns");
        }
        params_.push_back(param_column{name, {}, {}, true});
      }
      auto& c = params_[it->second];
      if (v.is_number()) {
        c.numbers.emplace_back(row, v.get<double>());
      } else {
        c.numeric = false;
        c.texts.emplace_back(row, v.is_string() ? v.get<std::string>() : v.dump());
      }
    }
    return {};
  }

  result<void> append(const page_rows& page) {
    const std::size_t n = page.ids.size();
    if (n == 0) return {};
    if (auto r = tuple_id_.append(page.ids.data(), n); !r) return r;
    if (auto r = source_.append_strings(page.sources); !r) return r;
    if (auto r = status_.append_strings(page.statuses); !r) return r;
    if (auto r = error_.append_strings(page.errors); !r) return r;
    const hsize_t first = ids_.size(), cols = names_.size();
    ids_.insert(ids_.end(), page.ids.begin(), page.ids.end());
    if (cols == 0) return {};
    if (!features_)
      if (auto r = create_features(cols); !r) return r;
    const hsize_t extent[2] = {ids_.size(), cols};
    if (H5Dset_extent(features_.get(), extent) < 0) return h5_failure("cannot extend /features");
    // Dense blocks of rows, NaN where a record lacks a feature, at most max_block_values at a time.
    const std::size_t block = std::max<std::size_t>(1, max_block_values / cols);
    std::vector<double> dense;
    for (std::size_t r0 = 0; r0 < n; r0 += block) {
      const std::size_t rows = std::min(block, n - r0);
      dense.assign(rows * cols, missing);
      for (std::size_t i = 0; i < rows; ++i)
        for (const auto& [c, v] : page.features[r0 + i]) dense[i * cols + c] = v;
      const hsize_t start[2] = {first + r0, 0}, count[2] = {rows, cols};
      h5_id fs(H5Dget_space(features_.get()), H5Sclose);
      H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
      h5_id ms(H5Screate_simple(2, count, nullptr), H5Sclose);
      if (H5Dwrite(features_.get(), H5T_NATIVE_DOUBLE, ms.get(), fs.get(), H5P_DEFAULT, dense.data()) < 0)
        return h5_failure("cannot write /features");
    }
    return {};
  }

  result<void> finish_features() {
    if (!features_)
      if (auto r = create_features(1); !r) return r;
    const hsize_t extent[2] = {ids_.size(), names_.size()};
    if (H5Dset_extent(features_.get(), extent) < 0) return h5_failure("cannot extend /features");
    return write_strings(file_, "feature_names", names_);
  }

  result<void> write_params() {
    h5_id group(H5Gcreate2(file_, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!group) return h5_failure("cannot create /params");
    for (const auto& c : params_) {
      const std::string link = link_name(c.name);
      if (c.numeric) {
        std::vector<double> v(ids_.size(), missing);
        for (const auto& [row, x] : c.numbers) v[row] = x;
        if (auto r = write_numbers(group.get(), link.c_str(), v); !r) return r;
      } else {
        std::vector<std::string> v(ids_.size());
        for (const auto& [row, x] : c.numbers) v[row] = json(x).dump();
        for (const auto& [row, x] : c.texts) v[row] = x;
        if (auto r = write_strings(group.get(), link.c_str(), v); !r) return r;
      }
      h5_id d(H5Dopen2(group.get(), link.c_str(), H5P_DEFAULT), H5Dclose);
      if (auto r = attribute(d.get(), "name", c.name); !r) return r;
    }
    return {};
  }

  error bad_knowledge(const std::string& why) const {
    return make_error(0, "the repository at " + o_.repository + " sent a malformed knowledge document: " + why +
                             "; nothing was written");
  }

  result<void> read_knowledge() {
    auto r = http_.get("/v1/knowledge/latest");
    if (!r) return unreadable(r.error());
    if (r->status == 404) return {};  // nothing published yet: no /knowledge
    if (r->status != 200)
      return make_error(0, "the repository at " + o_.repository + " answered HTTP " + std::to_string(r->status) +
                               " to GET /v1/knowledge/latest: " + short_text(r->body));
    if (r->body.size() > max_page_bytes)
      return bad_knowledge(std::to_string(r->body.size()) + " bytes, over the limit of " + std::to_string(max_page_bytes));
    const json doc = hio::parse_json_or_discarded(r->body);
    if (!doc.is_object()) return bad_knowledge("not a JSON object of at most " + std::to_string(hio::max_json_depth) + " levels");
    constexpr std::int64_t max_label = std::numeric_limits<std::int32_t>::max();

    // labels: {tuple id: label >= 1}, aligned to /tuple_id (0: not clustered).
    std::vector<std::int64_t> labels(ids_.size(), 0);
    if (const auto l = doc.find("labels"); l != doc.end()) {
      if (!l->is_object()) return bad_knowledge("\"labels\" is not an object");
      for (const auto& [key, v] : l->items()) {
        const auto id = decimal_id(key);
        if (!id) return bad_knowledge("\"labels\" names \"" + short_text(key) + "\", not a tuple id");
        if (!integral(v, 1, max_label)) return bad_knowledge("the label of tuple " + key + " is not an integer >= 1");
        if (const auto it = row_of_.find(*id); it != row_of_.end()) labels[it->second] = as_int(v);
      }
    }

    // linkage: SciPy's (n-1) x 4 layout over n leaves.
    std::vector<double> linkage;
    std::size_t merges = 0;
    if (const auto z = doc.find("linkage"); z != doc.end()) {
      if (!z->is_array()) return bad_knowledge("\"linkage\" is not an array");
      merges = z->size();
      const auto leaves = static_cast<std::int64_t>(merges + 1);
      for (std::size_t i = 0; i < merges; ++i) {
        const auto& row = (*z)[i];
        const std::string at = "linkage row " + std::to_string(i);
        if (!row.is_array() || row.size() != 4) return bad_knowledge(at + " is not [a, b, distance, size]");
        const auto limit = leaves + static_cast<std::int64_t>(i) - 1;
        if (!integral(row[0], 0, limit) || !integral(row[1], 0, limit) || as_int(row[0]) == as_int(row[1]))
          return bad_knowledge(at + " joins clusters that do not exist yet");
        if (!row[2].is_number() || !std::isfinite(row[2].get<double>()) || row[2].get<double>() < 0)
          return bad_knowledge(at + " has no finite distance >= 0");
        if (!integral(row[3], 2, leaves)) return bad_knowledge(at + " has no size in 2.." + std::to_string(leaves));
        for (int k = 0; k < 4; ++k) linkage.push_back(row[k].get<double>());
      }
    }
    const std::size_t leaves = merges + 1;

    std::vector<std::int64_t> order;
    if (const auto lo = doc.find("leaf_order"); lo != doc.end()) {
      if (!lo->is_array()) return bad_knowledge("\"leaf_order\" is not an array");
      std::vector<bool> seen(leaves, false);
      for (const auto& v : *lo) {
        if (!integral(v, 0, static_cast<std::int64_t>(leaves) - 1) || seen[static_cast<std::size_t>(as_int(v))])
          return bad_knowledge("\"leaf_order\" is not a permutation of the linkage's leaves");
        seen[static_cast<std::size_t>(as_int(v))] = true;
        order.push_back(as_int(v));
      }
      if (merges > 0 && order.size() != leaves)
        return bad_knowledge("\"leaf_order\" has " + std::to_string(order.size()) + " leaves, the linkage " +
                             std::to_string(leaves));
    }

    // point_labels: per parameter point its label, its linkage leaf and its tuples.
    std::vector<std::int64_t> point_label, point_leaf, tuple_point(ids_.size(), -1);
    if (const auto pl = doc.find("point_labels"); pl != doc.end()) {
      if (!pl->is_array()) return bad_knowledge("\"point_labels\" is not an array");
      for (std::size_t i = 0; i < pl->size(); ++i) {
        const auto& p = (*pl)[i];
        const std::string at = "point " + std::to_string(i);
        if (!p.is_object()) return bad_knowledge(at + " is not an object");
        const auto label = p.find("label"), tuples = p.find("tuples"), leaf = p.find("leaf");
        if (label == p.end() || !integral(*label, 1, max_label)) return bad_knowledge(at + " has no label >= 1");
        if (tuples == p.end() || !tuples->is_array()) return bad_knowledge(at + " has no \"tuples\" array");
        std::int64_t leaf_index = static_cast<std::int64_t>(i);
        if (leaf != p.end()) {
          if (!integral(*leaf, 0, std::numeric_limits<std::int64_t>::max())) return bad_knowledge(at + " has a bad \"leaf\"");
          leaf_index = as_int(*leaf);
        }
        point_label.push_back(as_int(*label));
        point_leaf.push_back(leaf_index);
        for (const auto& t : *tuples) {
          if (!t.is_number_unsigned()) return bad_knowledge(at + " lists a tuple id that is not an unsigned integer");
          const auto it = row_of_.find(t.get<std::uint64_t>());
          if (it == row_of_.end()) continue;  // stored after this export's last page, or not exported
          if (tuple_point[it->second] != -1) return bad_knowledge("tuple " + t.dump() + " is in two points");
          tuple_point[it->second] = static_cast<std::int64_t>(i);
        }
      }
    }

    h5_id group(H5Gcreate2(file_, "knowledge", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!group) return h5_failure("cannot create /knowledge");
    const hid_t g = group.get();
    if (auto w = write_numbers(g, "labels", labels); !w) return w;
    {
      auto sp = space({merges, 4});
      h5_id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
      auto d = create_dataset(g, "linkage", H5T_IEEE_F64LE, sp.get(), dcpl.get());
      if (!d) return d.error();
      if (merges && H5Dwrite(d->get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, linkage.data()) < 0)
        return h5_failure("cannot write /knowledge/linkage");
    }
    if (auto w = write_numbers(g, "leaf_order", order); !w) return w;
    if (auto w = write_numbers(g, "point_label", point_label); !w) return w;
    if (auto w = write_numbers(g, "point_leaf", point_leaf); !w) return w;
    if (auto w = write_numbers(g, "tuple_point", tuple_point); !w) return w;
    if (auto w = write_strings(g, "document", {doc.dump()}); !w) return w;

    for (const char* key : {"version", "created_at_ms", "stored_at_ms", "points", "groups"}) {
      const auto v = doc.find(key);
      if (v == doc.end() || !integral(*v, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()))
        continue;
      if (auto w = attribute(g, key, as_int(*v)); !w) return w;
    }
    if (const auto v = doc.find("version"); v != doc.end() && integral(*v, 1, std::numeric_limits<std::int64_t>::max()))
      knowledge_version_ = as_int(*v);
    if (const auto m = doc.find("method"); m != doc.end() && m->is_string())
      if (auto w = attribute(g, "method", m->get<std::string>()); !w) return w;
    if (const auto t = doc.find("two_stage"); t != doc.end() && t->is_boolean())
      if (auto w = attribute(g, "two_stage", std::int64_t{t->get<bool>()}); !w) return w;
    if (const auto c = doc.find("cut"); c != doc.end() && c->is_object()) {
      for (const char* key : {"criterion", "by"})
        if (const auto v = c->find(key); v != c->end() && v->is_string())
          if (auto w = attribute(g, (std::string("cut_") + key).c_str(), v->get<std::string>()); !w) return w;
      if (const auto v = c->find("clusters"); v != c->end() && integral(*v, 0, std::numeric_limits<std::int64_t>::max()))
        if (auto w = attribute(g, "cut_clusters", as_int(*v)); !w) return w;
      for (const char* key : {"threshold", "score"})
        if (const auto v = c->find(key); v != c->end() && (v->is_number() || v->is_null()))
          if (auto w = attribute(g, (std::string("cut_") + key).c_str(), v->is_number() ? v->get<double>() : missing); !w)
            return w;
    }
    return {};
  }

  result<void> write_root_attributes() {
    const auto now = std::chrono::system_clock::now();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const hid_t root = file_;
    for (auto r : {attribute(root, "format", std::string("hio-export")),
                   attribute(root, "format_version", format_version),
                   attribute(root, "hio_version", std::string(HIO_VERSION_STRING)),
                   attribute(root, "repository", o_.repository), attribute(root, "exported_at", utc_iso8601(now)),
                   attribute(root, "exported_at_ms", static_cast<std::int64_t>(ms)),
                   attribute(root, "cursor", static_cast<std::int64_t>(std::min<std::uint64_t>(
                                                 cursor_, std::numeric_limits<std::int64_t>::max())))})
      if (!r) return r;
    return {};
  }

 public:
  // Closes every dataset this exporter opened; false when HDF5 reports an error.
  bool close() {
    bool ok = features_.close();
    for (auto* c : {&tuple_id_, &source_, &status_, &error_}) ok = c->close() && ok;
    return ok;
  }

 private:
  const export_options& o_;
  hid_t file_;
  http::client http_;
  h5_id features_;
  growing_column tuple_id_, source_, status_, error_;
  std::vector<std::uint64_t> ids_;
  std::unordered_map<std::uint64_t, std::size_t> row_of_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::size_t> column_of_;
  std::vector<param_column> params_;
  std::unordered_map<std::string, std::size_t> param_of_;
  std::uint64_t cursor_ = 0, page_after_ = 0;
  std::int64_t knowledge_version_ = 0;
};

// fsync of a path (a file, or a directory for a rename in it); false on error.
bool sync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int export_file(const export_options& o) {
  if (o.format != "hdf5") {
    std::fprintf(stderr, "hio export: unknown format %s (hdf5)\n", o.format.c_str());
    return 2;
  }
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors come back as values and are reported once, here
  const std::string tmp = o.out + ".tmp";
  const auto fail = [&](const std::string& message) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    std::fprintf(stderr, "hio export: %s\n", message.c_str());
    return 1;
  };
  h5_id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file) return fail(h5_failure("cannot create " + tmp).message);
  exporter e(o, file.get());
  auto r = e.run();
  const bool closed = e.close();
  if (!r) {
    file.close();
    return fail(r.error().message);
  }
  if (!closed || !file.close()) return fail(h5_failure("cannot finish writing " + tmp).message);
  if (!sync_path(tmp, false)) return fail("cannot flush " + tmp + " to disk");
  std::error_code ec;
  std::filesystem::rename(tmp, o.out, ec);
  if (ec) return fail("cannot rename " + tmp + " to " + o.out + ": " + ec.message());
  const auto dir = std::filesystem::path(o.out).parent_path();
  sync_path(dir.empty() ? "." : dir.string(), true);
  std::printf("exported %zu tuples, %zu features, %zu parameters", e.tuples(), e.features(), e.params());
  if (e.knowledge_version() > 0) std::printf(", knowledge version %lld", static_cast<long long>(e.knowledge_version()));
  std::printf(" to %s\n", o.out.c_str());
  return 0;
}

}  // namespace hio::cli

#endif  // HIO_WITH_HDF5
