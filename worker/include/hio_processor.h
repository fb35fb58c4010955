/*
 * hio_processor.h: the C ABI of an hio processor plugin (hio-worker --processor plugin:PATH).
 *
 * A plugin is a shared library exporting the four functions below with C linkage. Any language that can
 * export C functions can implement it (C, C++ with extern "C", Rust with #[no_mangle] extern "C", Fortran
 * with bind(C), Zig, ...). No C++ types cross this boundary.
 *
 * Isolation: the worker never loads a plugin into its own process. Each channel starts a helper process,
 * hio-plugin-host, which dlopen()s the plugin and calls it; a plugin that crashes, hangs or corrupts
 * memory takes down only its helper, which the channel restarts (see docs/processors.md).
 *
 * Threading: a helper process serves one channel and calls the plugin from one thread only, one call at
 * a time: init once, process once per tuple, free once at the end. A plugin needs no locking, and may
 * keep global state (there is one helper process per channel).
 *
 * Ownership:
 *   - every pointer the host passes (config_json, data, metadata_json, error, sink_context) is owned by
 *     the host and valid only for the duration of the call; copy what must outlive it;
 *   - *state (set by hio_processor_init) is owned by the plugin, handed back on every process call, and
 *     released by the plugin in hio_processor_free;
 *   - feature names passed to the sink are owned by the plugin; the host copies them before the sink
 *     returns.
 *
 * Return codes: 0 is success; any other value is a failure, described by a NUL-terminated message the
 * plugin writes into `error` (at most error_capacity bytes including the NUL; the host truncates).
 *
 * A plugin writes nothing to stdout that it expects to see: the host redirects the plugin's stdout to
 * stderr, which the worker copies into its log, line by line.
 */
#ifndef HIO_PROCESSOR_H
#define HIO_PROCESSOR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes; hio_processor_abi_version() must return it. */
#define HIO_PROCESSOR_ABI_VERSION 1

/* Marks the four functions as exported even when the plugin is built with -fvisibility=hidden. */
#if defined(_WIN32)
#define HIO_PROCESSOR_EXPORT __declspec(dllexport)
#else
#define HIO_PROCESSOR_EXPORT __attribute__((visibility("default")))
#endif

/*
 * Receives one feature: `name` is a NUL-terminated UTF-8 string of 1..255 bytes without control
 * characters, `value` any double. Returns 0 when the feature was kept, non-zero when it was refused
 * (an invalid name, or more than 65536 features for one tuple); a refused feature also makes the tuple
 * fail with a message naming it, so a plugin may ignore the return value.
 */
typedef int (*hio_feature_sink)(void* sink_context, const char* name, double value);

/* Returns HIO_PROCESSOR_ABI_VERSION. The host refuses a plugin returning another version. */
HIO_PROCESSOR_EXPORT int hio_processor_abi_version(void);

/*
 * Called once when the helper process starts, before any tuple. `config_json` is a JSON object, e.g.
 * {"plugin":"/path/libx.so","worker":"node1-4242","channel":0}. Sets *state (may be NULL) and returns 0,
 * or returns non-zero with a message in `error`: every tuple of the channel then fails with that message.
 */
HIO_PROCESSOR_EXPORT int hio_processor_init(const char* config_json, void** state, char* error,
                                            size_t error_capacity);

/*
 * Processes one tuple: `data`/`size` is the payload (uncompressed; `data` may be NULL when size is 0),
 * `metadata_json`/`metadata_size` the tuple's metadata as JSON text, NUL-terminated ("" when the tuple
 * had none). Reports features by calling sink(sink_context, name, value) any number of times, then
 * returns 0; or returns non-zero with a message in `error`: the tuple is stored as failed with that
 * message as its reason and is not retried (features already reported are discarded).
 * A crash or a hang is not a failure of this kind: the host process dies or is killed, and the worker
 * restarts it and retries the tuple a bounded number of times.
 */
HIO_PROCESSOR_EXPORT int hio_processor_process(void* state, const void* data, size_t size,
                                               const char* metadata_json, size_t metadata_size,
                                               hio_feature_sink sink, void* sink_context, char* error,
                                               size_t error_capacity);

/* Called once before the helper exits normally (not after a crash or a kill). Releases `state`. */
HIO_PROCESSOR_EXPORT void hio_processor_free(void* state);

/* The functions' types, for hosts that look them up with dlsym(). */
typedef int (*hio_processor_abi_version_fn)(void);
typedef int (*hio_processor_init_fn)(const char*, void**, char*, size_t);
typedef int (*hio_processor_process_fn)(void*, const void*, size_t, const char*, size_t, hio_feature_sink,
                                        void*, char*, size_t);
typedef void (*hio_processor_free_fn)(void*);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HIO_PROCESSOR_H */
