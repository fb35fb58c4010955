#include <hio/worker/processor.hpp>

#include <hio/common/hash.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
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
  result<std::vector<feature>> process(const received_tuple&) override {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms_);
    volatile std::uint64_t x = 88172645463325252ull;
    while (std::chrono::steady_clock::now() < deadline) {
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

struct processor_kind {
  std::string_view name;
  std::string_view usage;
  // Makes the processor from the text after "<name>:" (has_arg false when there was no colon).
  std::function<result<std::unique_ptr<processor>>(std::string_view arg, bool has_arg)> make;
};

const std::array<processor_kind, 4>& kinds() {
  static const std::array<processor_kind, 4> table{{
      {"noop", "noop", [](std::string_view arg, bool has_arg) -> result<std::unique_ptr<processor>> {
         if (auto r = no_argument("noop", arg, has_arg); !r) return r.error();
         return std::unique_ptr<processor>(std::make_unique<noop_processor>());
       }},
      {"checksum", "checksum", [](std::string_view arg, bool has_arg) -> result<std::unique_ptr<processor>> {
         if (auto r = no_argument("checksum", arg, has_arg); !r) return r.error();
         return std::unique_ptr<processor>(std::make_unique<checksum_processor>());
       }},
      {"sleep", "sleep:MS", [](std::string_view arg, bool) -> result<std::unique_ptr<processor>> {
         auto ms = parse_ms("sleep", arg);
         if (!ms) return ms.error();
         return std::unique_ptr<processor>(std::make_unique<sleep_processor>(*ms));
       }},
      {"busy", "busy:MS", [](std::string_view arg, bool) -> result<std::unique_ptr<processor>> {
         auto ms = parse_ms("busy", arg);
         if (!ms) return ms.error();
         return std::unique_ptr<processor>(std::make_unique<busy_processor>(*ms));
       }},
  }};
  return table;
}

}  // namespace

result<std::unique_ptr<processor>> make_processor(std::string_view spec) {
  const auto colon = spec.find(':');
  const bool has_arg = colon != std::string_view::npos;
  const std::string_view kind = spec.substr(0, colon);
  const std::string_view arg = has_arg ? spec.substr(colon + 1) : std::string_view{};
  std::string known;
  for (const auto& k : kinds()) {
    if (k.name == kind) return k.make(arg, has_arg);
    if (!known.empty()) known += ", ";
    known += k.usage;
  }
  return make_error(400, "unknown processor '" + std::string(spec) + "'; known processors: " + known);
}

}  // namespace hio::worker
