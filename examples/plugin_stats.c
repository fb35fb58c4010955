/*
 * An example hio processor plugin in plain C (see worker/include/hio_processor.h, docs/processors.md).
 *
 * Features of each tuple: bytes, mean_byte, min_byte, max_byte, and calls (how many tuples this helper
 * process has served: it stays up across tuples). For tests, the tuple's metadata can ask it to misbehave:
 *   "crash": true   dies of SIGSEGV        "hang": true   never returns
 *   "fail": true    returns an error ("asked to fail by the tuple's metadata")
 *
 * Build: cc -shared -fPIC -I worker/include -o libhio_example_plugin.so examples/plugin_stats.c
 * Run:   hio-worker --processor plugin:/path/to/libhio_example_plugin.so ...
 */
#define _POSIX_C_SOURCE 200809L

#include <hio_processor.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct stats_state {
  unsigned long long calls;
};

/* Whether the JSON text has "key": true at some level. Good enough for an example; a real plugin would use
 * a JSON library. */
static const char* skip_space(const char* p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
  return p;
}

static int flag_set(const char* json, const char* key) {
  char quoted[64];
  const char* p = json;
  size_t n;
  if (snprintf(quoted, sizeof quoted, "\"%s\"", key) >= (int)sizeof quoted) return 0;
  n = strlen(quoted);
  while ((p = strstr(p, quoted)) != NULL) {
    const char* q = skip_space(p + n);
    p += n;
    if (*q != ':') continue;
    q = skip_space(q + 1);
    if (strncmp(q, "true", 4) == 0) return 1;
  }
  return 0;
}

HIO_PROCESSOR_EXPORT int hio_processor_abi_version(void) { return HIO_PROCESSOR_ABI_VERSION; }

HIO_PROCESSOR_EXPORT int hio_processor_init(const char* config_json, void** state, char* error,
                                            size_t error_capacity) {
  struct stats_state* s = calloc(1, sizeof *s);
  if (s == NULL) {
    snprintf(error, error_capacity, "out of memory");
    return 1;
  }
  fprintf(stderr, "plugin_stats: started with config %s\n", config_json);
  *state = s;
  return 0;
}

HIO_PROCESSOR_EXPORT int hio_processor_process(void* state, const void* data, size_t size,
                                               const char* metadata_json, size_t metadata_size,
                                               hio_feature_sink sink, void* sink_context, char* error,
                                               size_t error_capacity) {
  struct stats_state* s = state;
  const unsigned char* bytes = data;
  unsigned long long sum = 0;
  unsigned min = 255, max = 0;
  size_t i;
  (void)metadata_size;
  s->calls++;
  if (flag_set(metadata_json, "crash")) raise(SIGSEGV);
  if (flag_set(metadata_json, "hang")) {
    for (;;) pause();
  }
  if (flag_set(metadata_json, "fail")) {
    snprintf(error, error_capacity, "asked to fail by the tuple's metadata");
    return 1;
  }
  for (i = 0; i < size; ++i) {
    sum += bytes[i];
    if (bytes[i] < min) min = bytes[i];
    if (bytes[i] > max) max = bytes[i];
  }
  sink(sink_context, "bytes", (double)size);
  sink(sink_context, "mean_byte", size == 0 ? 0.0 : (double)sum / (double)size);
  sink(sink_context, "min_byte", size == 0 ? 0.0 : (double)min);
  sink(sink_context, "max_byte", size == 0 ? 0.0 : (double)max);
  sink(sink_context, "calls", (double)s->calls);
  return 0;
}

HIO_PROCESSOR_EXPORT void hio_processor_free(void* state) { free(state); }
