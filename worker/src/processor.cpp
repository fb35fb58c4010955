#include <hio/worker/processor.hpp>

#include "features_processor.hpp"

#include <hio/common/clock.hpp>
#include <hio/common/hash.hpp>
#include <hio/worker/isolated_processor.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

namespace hio::worker {
namespace {

constexpr std::uint64_t max_duration_ms = 3'600'000;  // an hour: anything longer is a typo

class noop_processor final : public processor {
 public:
  result<std::vector<feature>> process(const received_tuple&) override { return std::vector<feature>{}; }
  std::string name() const override { return "noop"; }
};

class checksum_processor final : public processor {
 public:
  result<std::vector<feature>> process(const received_tuple& t) override {
    std::uint64_t sum = 0;
    for (std::byte b : t.payload) sum += std::to_integer<std::uint8_t>(b);
    const double size = static_cast<double>(t.payload.size());
    const double mean = t.payload.empty() ? 0.0 : static_cast<double>(sum) / size;
    const std::uint64_t h = xxh3_64(t.payload);
    return std::vector<feature>{{"bytes", size},
                                {"mean_byte", mean},
                                {"xxh3_low32", static_cast<double>(h & 0xffffffffu)}};
  }
  std::string name() const override { return "checksum"; }
};

class sleep_processor final : public processor {
 public:
  explicit sleep_processor(std::uint64_t ms) : ms_(ms) {}
  result<std::vector<feature>> process(const received_tuple&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms_));
    return std::vector<feature>{};
  }
  std::string name() const override { return "sleep:" + std::to_string(ms_); }

 private:
  std::uint64_t ms_;
};

class busy_processor final : public processor {
 public:
  explicit busy_processor(std::uint64_t ms) : ms_(ms) {}
  // Burns MS ms of this thread's CPU time (not wall time): on a loaded machine a tuple then takes longer,
  // as real work would.
  result<std::vector<feature>> process(const received_tuple&) override {
    const double deadline = thread_cpu_ms() + static_cast<double>(ms_);
    volatile std::uint64_t x = 88172645463325252ull;
    while (thread_cpu_ms() < deadline) {
      for (int i = 0; i < 1000; ++i) {  // xorshift: real work the compiler cannot drop
        std::uint64_t v = x;
        v ^= v << 13;
        v ^= v >> 7;
        v ^= v << 17;
        x = v;
      }
    }
    return std::vector<feature>{};
  }
  std::string name() const override { return "busy:" + std::to_string(ms_); }

 private:
  std::uint64_t ms_;
};

result<std::uint64_t> parse_ms(std::string_view kind, std::string_view arg) {
  std::uint64_t ms = 0;
  const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ms);
  if (arg.empty() || ec != std::errc{} || end != arg.data() + arg.size() || ms > max_duration_ms) {
    return make_error(400, "processor '" + std::string(kind) + "' needs a duration in milliseconds (0.." +
                               std::to_string(max_duration_ms) + "), e.g. " + std::string(kind) +
                               ":100; got '" + std::string(arg) + "'");
  }
  return ms;
}

result<void> no_argument(std::string_view kind, std::string_view arg, bool has_arg) {
  if (has_arg) {
    return make_error(400, "processor '" + std::string(kind) + "' takes no argument; got '" + std::string(arg) + "'");
  }
  return {};
}

// Where hio-plugin-host is: options.plugin_host, $HIO_PLUGIN_HOST, or beside the running executable.
result<std::string> plugin_host_path(const processor_options& options) {
  if (!options.plugin_host.empty()) return options.plugin_host;
  if (const char* env = std::getenv("HIO_PLUGIN_HOST"); env != nullptr && *env != '\0') return std::string(env);
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return make_error(400, "cannot find hio-plugin-host (set HIO_PLUGIN_HOST): " + ec.message());
  return (self.parent_path() / "hio-plugin-host").string();
}

std::string label_of(const processor_options& options) {
  return "channel " + std::to_string(options.channel) + " processor";
}

std::vector<std::string> child_env(const processor_options& options) {
  return {"HIO_WORKER=" + options.worker_id, "HIO_CHANNEL=" + std::to_string(options.channel)};
}

result<std::unique_ptr<processor>> make_plugin(std::string_view arg, const processor_options& options) {
  if (arg.empty()) return make_error(400, "processor 'plugin' needs the plugin's path, e.g. plugin:/opt/libmine.so");
  std::error_code ec;
  const auto path = std::filesystem::absolute(std::filesystem::path(arg), ec);
  if (ec || !std::filesystem::is_regular_file(path, ec)) {
    return make_error(400, "processor plugin '" + std::string(arg) + "': no such file");
  }
  auto host = plugin_host_path(options);
  if (!host) return host.error();
  isolated_processor_options o;
  const nlohmann::json config{{"plugin", path.string()}, {"worker", options.worker_id}, {"channel", options.channel}};
  o.argv = {*host, path.string(), config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  o.env = child_env(options);
  o.name = "plugin:" + std::string(arg);
  o.label = label_of(options);
  o.timeout = options.process_timeout;
  o.retries = options.process_retries;
  auto p = isolated_processor::create(std::move(o));
  if (!p) return make_error(400, "processor plugin needs hio-plugin-host: " + p.error().message);
  return std::unique_ptr<processor>(std::move(*p));
}

result<std::unique_ptr<processor>> make_exec(std::string_view arg, const processor_options& options) {
  isolated_processor_options o;
  std::size_t from = 0;
  while (from < arg.size()) {
    const std::size_t to = std::min(arg.find_first_of(" \t", from), arg.size());
    if (to > from) o.argv.emplace_back(arg.substr(from, to - from));
    from = to + 1;
  }
  if (o.argv.empty()) return make_error(400, "processor 'exec' needs a command, e.g. exec:python3 my_processor.py");
  o.env = child_env(options);
  o.name = "exec:" + std::string(arg);
  o.label = label_of(options);
  o.timeout = options.process_timeout;
  o.retries = options.process_retries;
  auto p = isolated_processor::create(std::move(o));
  if (!p) return p.error();
  return std::unique_ptr<processor>(std::move(*p));
}

// What a kind's factory gets: the text after "<kind>:" and the options.
struct processor_args {
  std::string_view arg;   // "" when there was no colon
  bool has_arg = false;   // whether there was a colon
  const processor_options& options;
};

struct processor_kind {
  std::string_view name;
  std::string_view usage;
  std::function<result<std::unique_ptr<processor>>(const processor_args&)> make;
};

// The known kinds, in the order the error message lists them. A new kind is one more entry.
const std::vector<processor_kind>& kinds() {
  static const std::vector<processor_kind> table{
      {"noop", "noop", [](const processor_args& a) -> result<std::unique_ptr<processor>> {
         if (auto r = no_argument("noop", a.arg, a.has_arg); !r) return r.error();
         return std::unique_ptr<processor>(std::make_unique<noop_processor>());
       }},
      {"checksum", "checksum", [](const processor_args& a) -> result<std::unique_ptr<processor>> {
         if (auto r = no_argument("checksum", a.arg, a.has_arg); !r) return r.error();
         return std::unique_ptr<processor>(std::make_unique<checksum_processor>());
       }},
      {"sleep", "sleep:MS", [](const processor_args& a) -> result<std::unique_ptr<processor>> {
         auto ms = parse_ms("sleep", a.arg);
         if (!ms) return ms.error();
         return std::unique_ptr<processor>(std::make_unique<sleep_processor>(*ms));
       }},
      {"busy", "busy:MS", [](const processor_args& a) -> result<std::unique_ptr<processor>> {
         auto ms = parse_ms("busy", a.arg);
         if (!ms) return ms.error();
         return std::unique_ptr<processor>(std::make_unique<busy_processor>(*ms));
       }},
      {"plugin", "plugin:PATH", [](const processor_args& a) { return make_plugin(a.arg, a.options); }},
      {"exec", "exec:COMMAND", [](const processor_args& a) { return make_exec(a.arg, a.options); }},
      {"features", "features[:gpu|:cpu|:harmonicpe]",
       [](const processor_args& a) { return detail::make_features_processor(a.arg, a.options); }},
  };
  return table;
}

}  // namespace

result<std::unique_ptr<processor>> make_processor(std::string_view spec, const processor_options& options) {
  const auto colon = spec.find(':');
  const bool has_arg = colon != std::string_view::npos;
  const std::string_view kind = spec.substr(0, colon);
  const std::string_view arg = has_arg ? spec.substr(colon + 1) : std::string_view{};
  std::string known;
  for (const auto& k : kinds()) {
    if (k.name == kind) return k.make(processor_args{arg, has_arg, options});
    if (!known.empty()) known += ", ";
    known += k.usage;
  }
  return make_error(400, "unknown processor '" + std::string(spec) + "'; known processors: " + known);
}

}  // namespace hio::worker
