// hio-plugin-host PLUGIN [CONFIG_JSON]: loads a processor plugin (hio_processor.h) and serves the
// processor protocol (hio/worker/processor_protocol.hpp) on stdin/stdout, one tuple at a time, until its
// input ends. The worker starts one per channel for `--processor plugin:PATH`, so a plugin that crashes or
// hangs takes down this process only. The plugin's stdout goes to stderr (the worker's log): the protocol
// keeps stdout to itself. When the plugin cannot be loaded or initialised, every tuple is answered
// "failed" with the reason, rather than crashing again and again.
#include <hio/worker/processor_protocol.hpp>
#include <hio_processor.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

namespace {

namespace protocol = hio::worker::protocol;

// Reads exactly n bytes; false at end of input (or on an error, reported to stderr).
bool read_full(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r < 0) std::fprintf(stderr, "hio-plugin-host: reading a request: %s\n", std::strerror(errno));
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool write_full(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

struct plugin {
  void* library = nullptr;
  hio_processor_init_fn init = nullptr;
  hio_processor_process_fn process = nullptr;
  hio_processor_free_fn free = nullptr;
  void* state = nullptr;
  bool initialised = false;
};

// Loads and initialises the plugin; "" on success, else why not.
std::string load(plugin& p, const char* path, const char* config) {
  p.library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (p.library == nullptr) {
    const char* e = dlerror();
    return std::string("cannot load plugin: ") + (e != nullptr ? e : path);
  }
  const auto symbol = [&](const char* name) { return dlsym(p.library, name); };
  auto* version = reinterpret_cast<hio_processor_abi_version_fn>(symbol("hio_processor_abi_version"));
  p.init = reinterpret_cast<hio_processor_init_fn>(symbol("hio_processor_init"));
  p.process = reinterpret_cast<hio_processor_process_fn>(symbol("hio_processor_process"));
  p.free = reinterpret_cast<hio_processor_free_fn>(symbol("hio_processor_free"));
  std::string missing;
  for (const auto& [fn, name] : {std::pair{reinterpret_cast<void*>(version), "hio_processor_abi_version"},
                                 std::pair{reinterpret_cast<void*>(p.init), "hio_processor_init"},
                                 std::pair{reinterpret_cast<void*>(p.process), "hio_processor_process"},
                                 std::pair{reinterpret_cast<void*>(p.free), "hio_processor_free"}}) {
    if (fn == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
  }
  if (!missing.empty()) return std::string("plugin ") + path + " does not export " + missing + " (see hio_processor.h)";
  if (const int v = version(); v != HIO_PROCESSOR_ABI_VERSION) {
    return std::string("plugin ") + path + " implements ABI version " + std::to_string(v) + "; this host speaks " +
           std::to_string(HIO_PROCESSOR_ABI_VERSION);
  }
  char error[1024] = {};
  if (const int rc = p.init(config, &p.state, error, sizeof error); rc != 0) {
    error[sizeof error - 1] = '\0';
    const std::string why = error[0] != '\0' ? std::string(error) : "hio_processor_init returned " + std::to_string(rc);
    return "plugin initialisation failed: " + protocol::sanitize_text(why);
  }
  p.initialised = true;
  return {};
}

struct sink_context {
  std::vector<hio::feature>* features;
  std::string* problem;  // the first refused feature
};

extern "C" int collect_feature(void* context, const char* name, double value) {
  auto* c = static_cast<sink_context*>(context);
  const std::string_view n = name != nullptr ? std::string_view(name) : std::string_view();
  if (!protocol::valid_feature_name(n)) {
    if (c->problem->empty()) {
      *c->problem = "the plugin reported a feature with an invalid name \"" +
                    protocol::sanitize_text(n.substr(0, 64)) + "\" (1..255 bytes of UTF-8 without control characters)";
    }
    return -1;
  }
  if (c->features->size() >= protocol::max_features) {
    if (c->problem->empty()) *c->problem = "the plugin reported more than 65536 features";
    return -1;
  }
  c->features->push_back(hio::feature{std::string(n), value});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: hio-plugin-host PLUGIN.so [CONFIG_JSON]\n"
                         "  serves the hio processor protocol on stdin/stdout (started by hio-worker)\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a worker gone shows as a failed write
  // The protocol owns the real stdout; whatever the plugin prints goes to stderr.
  const int out = dup(1);
  if (out < 0 || dup2(2, 1) < 0) {
    std::fprintf(stderr, "hio-plugin-host: cannot set up stdout: %s\n", std::strerror(errno));
    return 1;
  }
  const int in = 0;
  plugin p;
  std::string setup_error = load(p, argv[1], argc == 3 ? argv[2] : "{}");
  if (setup_error.size() > 4000) setup_error.resize(4000);
  if (!setup_error.empty()) std::fprintf(stderr, "hio-plugin-host: %s\n", setup_error.c_str());

  std::vector<std::byte> metadata, payload;
  std::vector<hio::feature> features;
  std::string problem;
  for (;;) {
    std::array<std::byte, protocol::header_bytes> header{};
    if (!read_full(in, header.data(), header.size())) break;  // the worker closed our input: done
    auto h = protocol::decode_request_header(header);
    if (!h) {
      std::fprintf(stderr, "hio-plugin-host: %s\n", h.error().message.c_str());
      return 3;
    }
    metadata.resize(h->metadata_bytes + 1);
    payload.resize(h->payload_bytes);
    if (!read_full(in, metadata.data(), h->metadata_bytes) || !read_full(in, payload.data(), payload.size())) {
      std::fprintf(stderr, "hio-plugin-host: the input ended inside a request\n");
      return 3;
    }
    metadata[h->metadata_bytes] = std::byte{0};

    protocol::response r;
    r.tuple_id = h->tuple_id;
    if (!setup_error.empty()) {
      r.status = protocol::status::failed;
      r.error = setup_error;
    } else {
      features.clear();
      problem.clear();
      sink_context context{&features, &problem};
      char error[4096] = {};
      const int rc = p.process(p.state, payload.empty() ? nullptr : payload.data(), payload.size(),
                               reinterpret_cast<const char*>(metadata.data()), h->metadata_bytes, collect_feature,
                               &context, error, sizeof error);
      error[sizeof error - 1] = '\0';
      if (rc != 0) {
        r.status = protocol::status::failed;
        const std::string why =
            error[0] != '\0' ? std::string(error) : "hio_processor_process returned " + std::to_string(rc);
        r.error = protocol::sanitize_text(why);
      } else if (!problem.empty()) {
        r.status = protocol::status::failed;
        r.error = problem;
      } else {
        r.features = std::move(features);
      }
    }
    auto frame = protocol::encode_response(r);
    if (!frame) {  // cannot happen: the features were checked as they came
      std::fprintf(stderr, "hio-plugin-host: %s\n", frame.error().message.c_str());
      return 3;
    }
    if (!write_full(out, frame->data(), frame->size())) break;  // the worker is gone
    features = std::move(r.features);  // keep the capacity
  }
  if (p.initialised && p.free != nullptr) p.free(p.state);
  // The library stays loaded: a plugin's atexit handlers and thread-locals may still point into it.
  return 0;
}
