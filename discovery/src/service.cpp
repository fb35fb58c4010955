#include <hio/discovery/service.hpp>

#include <hio/common/hash.hpp>
#include <hio/common/http.hpp>
#include <hio/common/json.hpp>
#include <hio/common/record.hpp>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>

namespace hio::discovery {
namespace {

using json = nlohmann::json;

// rows.log is a sequence of frames: magic, payload length, the repository cursor after the frame's page,
// the XXH3-64 of the payload, then the payload: encode_records() of the page's stored rows, each with
// its metadata replaced by its parameter-point key. A frame is whole or, at the end after a crash, cut off.
constexpr std::uint32_t frame_magic = 0x44'4f'49'48;  // "HIOD"
constexpr std::size_t header_bytes = 24;

error io_error(const std::string& what) { return make_error(500, what + ": " + std::strerror(errno)); }

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

struct frame_header {
  std::uint64_t length = 0;
  std::uint64_t cursor = 0;
  std::uint64_t hash = 0;
};

// Reads exactly n bytes at offset; false at end of file or on error.
bool read_at(int fd, std::uint64_t offset, char* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const auto r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

struct discovery_service::impl {
  service_options options;
  std::filesystem::path log_path;
  int fd = -1;
  std::uint64_t end = 0;     // bytes of whole frames
  std::uint64_t cursor = 0;  // repository cursor after the last frame
  std::uint64_t rows = 0;    // stored rows in the log
  bool published = false;
  http::client repository;

  explicit impl(service_options o)
      : options(std::move(o)), repository(options.repository, options.secret, std::chrono::seconds(60)) {}
  ~impl() {
    if (fd >= 0) ::close(fd);
  }

  // The header at `offset` if a whole, intact frame starts there.
  std::optional<frame_header> frame_at(std::uint64_t offset, std::uint64_t file_size, std::string* payload) const {
    if (offset + header_bytes > file_size) return std::nullopt;
    char h[header_bytes];
    if (!read_at(fd, offset, h, header_bytes) || get_le(h, 4) != frame_magic) return std::nullopt;
    frame_header f{get_le(h + 4, 4), get_le(h + 8, 8), get_le(h + 16, 8)};
    if (offset + header_bytes + f.length > file_size) return std::nullopt;
    std::string body(f.length, '\0');
    if (!read_at(fd, offset + header_bytes, body.data(), body.size()) || xxh3_64(body) != f.hash) return std::nullopt;
    if (payload) *payload = std::move(body);
    return f;
  }

  result<void> recover() {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return io_error("cannot stat " + log_path.string());
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::string payload;
    while (auto f = frame_at(end, size, &payload)) {
      auto batch = decode_records(payload);
      if (!batch) break;
      rows += batch->size();
      cursor = f->cursor;
      end += header_bytes + f->length;
    }
    if (end < size) {
      spdlog::warn("discovery: {} has {} bytes after its last whole frame (left by a crash); cutting them off",
                   log_path.string(), size - end);
      if (::ftruncate(fd, static_cast<off_t>(end)) != 0 || ::fsync(fd) != 0) {
        return io_error("cannot truncate " + log_path.string());
      }
    }
    return {};
  }

  result<void> append(const std::vector<feature_record>& page, std::uint64_t next_cursor) {
    const std::string payload = encode_records(page);
    std::string frame;
    frame.reserve(header_bytes + payload.size());
    put_u32(frame, frame_magic);
    put_u32(frame, static_cast<std::uint32_t>(payload.size()));
    put_u64(frame, next_cursor);
    put_u64(frame, xxh3_64(payload));
    frame += payload;
    std::size_t done = 0;
    while (done < frame.size()) {
      const auto n = ::pwrite(fd, frame.data() + done, frame.size() - done, static_cast<off_t>(end + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int ignored = ::ftruncate(fd, static_cast<off_t>(end));  // best effort: recover() cuts it anyway
        (void)ignored;
        return io_error("cannot write " + log_path.string());
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fdatasync(fd) != 0) return io_error("cannot fdatasync " + log_path.string());
    end += frame.size();
    cursor = next_cursor;
    rows += page.size();
    return {};
  }

  // Pulls every page after the cursor into the log; returns the rows the repository returned.
  result<std::uint64_t> pull() {
    std::uint64_t pulled = 0;
    for (;;) {
      auto r = repository.get("/v1/features?after=" + std::to_string(cursor) +
                              "&limit=" + std::to_string(options.page_records) + "&format=binary");
      if (!r) return make_error(503, "repository " + options.repository + " unreachable: " + r.error().message);
      if (r->status != 200) {
        return make_error(502, "repository answered GET /v1/features with " + std::to_string(r->status) + ": " +
                                   r->body.substr(0, 300));
      }
      auto page = decode_records(r->body);
      if (!page) return make_error(502, "repository sent a bad record batch: " + page.error().message);
      if (page->empty()) return pulled;
      pulled += page->size();
      const std::uint64_t next = page->back().cursor;
      const bool last = page->size() < options.page_records;
      std::vector<feature_record> kept;
      kept.reserve(page->size());
      for (auto& rec : *page) {
        if (rec.status != record_status::stored) continue;
        feature_record k;
        k.tuple_id = rec.tuple_id;
        k.cursor = rec.cursor;
        k.metadata = parameter_point_key(rec.metadata, rec.tuple_id);
        k.features = std::move(rec.features);
        kept.push_back(std::move(k));
      }
      page->clear();
      if (auto a = append(kept, next); !a) return a.error();
      if (last) return pulled;
    }
  }

  // Every logged row as a feature table (columns: the union of feature names, NaN where a row lacks one).
  result<feature_table> load() const {
    feature_table table;
    table.rows.reserve(rows);
    std::unordered_map<std::string, std::size_t> column_of;
    std::uint64_t offset = 0;
    std::string payload;
    while (offset < end) {
      auto f = frame_at(offset, end, &payload);
      if (!f) return make_error(500, log_path.string() + " changed under this process at byte " + std::to_string(offset));
      offset += header_bytes + f->length;
      auto batch = decode_records(payload);
      if (!batch) return make_error(500, log_path.string() + ": " + batch.error().message);
      for (auto& rec : *batch) {
        observation o;
        o.id = rec.tuple_id;
        o.point = std::move(rec.metadata);
        o.values.assign(table.columns.size(), std::numeric_limits<double>::quiet_NaN());
        for (const auto& feat : rec.features) {
          auto [it, fresh] = column_of.try_emplace(feat.name, table.columns.size());
          if (fresh) table.columns.push_back(feat.name);
          if (it->second >= o.values.size()) o.values.resize(it->second + 1, std::numeric_limits<double>::quiet_NaN());
          o.values[it->second] = feat.value;
        }
        table.rows.push_back(std::move(o));
      }
    }
    for (auto& o : table.rows) o.values.resize(table.columns.size(), std::numeric_limits<double>::quiet_NaN());
    return table;
  }
};

discovery_service::discovery_service(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
discovery_service::~discovery_service() = default;

result<std::unique_ptr<discovery_service>> discovery_service::open(service_options options) {
  if (options.page_records == 0) return make_error(400, "page_records must be positive");
  auto p = std::make_unique<impl>(std::move(options));
  std::error_code ec;
  std::filesystem::create_directories(p->options.data_dir, ec);
  if (ec) return make_error(500, "cannot create " + p->options.data_dir.string() + ": " + ec.message());
  p->log_path = p->options.data_dir / "rows.log";
  p->fd = ::open(p->log_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (p->fd < 0) return io_error("cannot open " + p->log_path.string());
  if (auto r = p->recover(); !r) return r.error();
  return std::unique_ptr<discovery_service>(new discovery_service(std::move(p)));
}

std::uint64_t discovery_service::cursor() const noexcept { return impl_->cursor; }

result<tick_report> discovery_service::tick() {
  auto& s = *impl_;
  const auto start = std::chrono::steady_clock::now();
  tick_report report;
  auto pulled = s.pull();
  if (!pulled) return pulled.error();
  report.pulled = *pulled;
  report.rows = s.rows;
  report.cursor = s.cursor;
  if (report.pulled == 0 && s.published) {
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }

  auto table = s.load();
  if (!table) return table.error();
  auto doc = make_knowledge(std::move(*table), s.options.knowledge);
  if (!doc) return doc.error();
  report.groups = (*doc)["groups"].get<std::uint64_t>();
  report.clusters = (*doc)["clusters"].size();
  if (const auto& c = (*doc)["cut"]; c["by"] == "criterion") {
    report.cut = fmt::format("{} {:.3g}", c["criterion"].get<std::string>(), c["score"].get<double>());
  } else {
    report.cut = c["by"].get<std::string>();
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  (*doc)["created_at_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count();
  (*doc)["tick"] = json{{"pulled", report.pulled}, {"seconds", report.seconds}, {"cursor", report.cursor}};

  const std::string body = doc->dump(-1, ' ', false, json::error_handler_t::replace);
  doc->clear();
  auto r = s.repository.post("/v1/knowledge", body);
  if (!r) return make_error(503, "repository " + s.options.repository + " unreachable: " + r.error().message);
  if (r->status != 200) {
    return make_error(502, "repository refused the knowledge (" + std::to_string(r->status) + "): " +
                               r->body.substr(0, 300));
  }
  auto answer = hio::parse_json_or_discarded(r->body);
  if (!answer.is_discarded()) report.version = answer.value("version", std::uint64_t{0});
  s.published = true;
  return report;
}

}  // namespace hio::discovery
