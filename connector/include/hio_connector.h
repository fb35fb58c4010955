/* hio connector, C ABI: send tuples to an hio cluster from C, Fortran (ISO_C_BINDING), Python (ctypes)
 * or any language with a C foreign-function interface. Library: libhio_connector.so.
 *
 * Conventions
 * - Functions that can fail return an int: HIO_OK (0) or one of the HIO_ERR_* codes. The message of the
 *   last failure on the calling thread is hio_last_error(); it stays until the next failure on that thread.
 * - Strings passed in are NUL-terminated UTF-8, only read during the call (the library copies them).
 * - Every hio_client is thread-safe: any number of threads may send, send asynchronously and flush on
 *   the same client at once. hio_client_free must not run concurrently with other calls on that client.
 * - Nothing a function returns must be freed by the caller, except an hio_client (hio_client_free).
 * - No C++ exception crosses this interface.
 *
 * Typical use:
 *   hio_client* c = hio_client_new("http://127.0.0.1:8080", "my-simulation");
 *   if (!c) { fprintf(stderr, "%s\n", hio_last_error()); ... }
 *   hio_send_result r;
 *   if (hio_send(c, buf, len, "{\"step\":3}", &r) != HIO_OK) { fprintf(stderr, "%s\n", hio_last_error()); }
 *   hio_client_free(c);
 */
#ifndef HIO_CONNECTOR_H
#define HIO_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define HIO_CONNECTOR_API __attribute__((visibility("default")))
#else
#define HIO_CONNECTOR_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes (the same numbers as hio::connector::errc). */
#define HIO_OK 0
#define HIO_ERR_INVALID_ARGUMENT 1   /* NULL client or data, bad option, metadata not a JSON object */
#define HIO_ERR_LEASE_REFUSED 2      /* the master refused (bad source token, bad request) */
#define HIO_ERR_LEASE_TIMEOUT 3      /* no lease within lease_timeout_ms (master down or busy throughout) */
#define HIO_ERR_ATTEMPTS_EXHAUSTED 4 /* the tuple was sent max_attempts times without acknowledgement */
#define HIO_ERR_CLOSED 5             /* the client was freed before the tuple had a result */
#define HIO_ERR_TIMEOUT 6            /* hio_flush passed its deadline */
#define HIO_ERR_BAD_LEASE 7          /* the master's lease answer was unusable */
#define HIO_ERR_CONNECT_FAILED 8     /* the leased endpoint could not be reached */
#define HIO_ERR_INTERNAL 99          /* out of memory or an unexpected internal error */

/* Final status of a tuple that got an acknowledgement. */
#define HIO_STATUS_STORED 0 /* processed and its features durably stored */
#define HIO_STATUS_FAILED 1 /* processed, and processing failed: final, not retried; see `reason` */
#define HIO_STATUS_QUEUED 2 /* durably in the master's overflow queue: final for the source */

/* hio_send_async flags */
#define HIO_SEND_COPY 1 /* copy the data: the caller may reuse its buffer as soon as the call returns */

typedef struct hio_client hio_client;

/* The result of one tuple. Plain data, owned by whoever allocated it; filled by the library. */
typedef struct hio_send_result {
  uint64_t tuple_id; /* the id the cluster knows the tuple by */
  int32_t status;    /* HIO_STATUS_* */
  uint32_t attempts; /* how many times it was sent */
  char reason[256];  /* NUL-terminated (truncated) reason when status is HIO_STATUS_FAILED, else "" */
} hio_send_result;

/* Counts of asynchronous sends that finished since the previous hio_flush. */
typedef struct hio_flush_counts {
  uint64_t stored;
  uint64_t failed;
  uint64_t queued;
  uint64_t errors; /* tuples that got no acknowledgement (an HIO_ERR_* result) */
} hio_flush_counts;

/* Called once per asynchronous tuple, from an internal thread of the library, with code HIO_OK and the
 * result, or an HIO_ERR_* code and a message (`result` then has tuple_id 0, or the tuple's id if it had
 * one). `result` and `message` are valid only during the call. The callback must return quickly and must
 * not call hio_send, hio_flush or hio_client_free on the same client. */
typedef void (*hio_send_callback)(void* user_data, int code, const hio_send_result* result, const char* message);

/* The message of the last failure on this thread ("" if none). Owned by the library; valid until the
 * next failing call on this thread. */
HIO_CONNECTOR_API const char* hio_last_error(void);

/* The library version, e.g. "0.1.0". Static storage. */
HIO_CONNECTOR_API const char* hio_version(void);

/* A new client for the master at `master_url` ("http://host:port"), naming itself `source_name` in
 * every tuple's metadata. Nothing is connected yet. Returns NULL (see hio_last_error) on a bad argument
 * or out of memory. Free with hio_client_free. */
HIO_CONNECTOR_API hio_client* hio_client_new(const char* master_url, const char* source_name);

/* Sets an option, before the first send (afterwards: HIO_ERR_INVALID_ARGUMENT). Names and values:
 *   "token"               source token, sent as "Authorization: Bearer <token>"
 *   "session_tuples"      tuple ids per lease (default 0: 64 MiB of tuples, 64..65536)
 *   "session_max_ms"      a session this old ends at its next tuple, to be placed again (default 1000)
 *   "session_idle_ms"     a session with nothing to send for this long is closed (default 20)
 *   "max_bytes_in_flight" unacknowledged bytes held before sends block (default 268435456)
 *   "max_attempts"        sends of one tuple before it fails (default 8)
 *   "lease_timeout_ms"    how long to keep asking an unreachable or busy master (default 60000)
 *   "ack_timeout_ms"      silence tolerated while tuples are unacknowledged (default 60000)
 *   "close_timeout_ms"    how long hio_client_free waits for tuples in flight (default 30000)
 *   "compress"            "1"/"true": zstd payloads when that makes them smaller (default "0")
 *   "transport"           "tcp" (default), "ucx" (an error here when built without UCX), or "auto"
 *                         (UCX where the leased channel offers it); the overflow queue is always TCP */
HIO_CONNECTOR_API int hio_client_set_option(hio_client* client, const char* name, const char* value);

/* Sends one tuple and waits for its result. `data` (len bytes; NULL allowed when len is 0) is read in
 * place, during the call only. `metadata_json` is NULL or a JSON object. `out` may be NULL. Returns
 * HIO_OK when the tuple was acknowledged (then see out->status: stored, failed or queued), else an
 * HIO_ERR_* code. Blocks while max_bytes_in_flight are held by asynchronous sends. */
HIO_CONNECTOR_API int hio_send(hio_client* client, const void* data, size_t len, const char* metadata_json,
                               hio_send_result* out);

/* Queues one tuple and returns; blocks only while max_bytes_in_flight are held. Without HIO_SEND_COPY
 * in `flags` the data is not copied: the caller keeps it alive and unchanged until the tuple's callback
 * has run or hio_flush has returned HIO_OK or HIO_ERR_*, other than HIO_ERR_TIMEOUT. `callback` may
 * be NULL (results are then only counted by hio_flush). Returns HIO_OK when queued; otherwise nothing
 * was queued and the callback will not run. */
HIO_CONNECTOR_API int hio_send_async(hio_client* client, const void* data, size_t len, const char* metadata_json,
                                     int flags, hio_send_callback callback, void* user_data);

/* Sends `count` tuples in one call and waits until each has its result; the tuples travel pipelined, as
 * with hio_send_async. Tuple i is data[i] (lens[i] bytes, read in place during the call) with metadata
 * metadata_json[i] (metadata_json NULL, or an entry NULL: none). codes[i] gets HIO_OK and results[i] the
 * acknowledgement (stored, failed or queued), or an HIO_ERR_* code and results[i].reason the message.
 * `counts` (may be NULL) gets the totals. Returns HIO_OK when every tuple was acknowledged, else the first
 * error's code (message in hio_last_error). Results do not enter hio_flush's counts. */
HIO_CONNECTOR_API int hio_send_many(hio_client* client, size_t count, const void* const* data, const size_t* lens,
                                    const char* const* metadata_json, hio_send_result* results, int32_t* codes,
                                    hio_flush_counts* counts);

/* hio_send_many with each tuple in two pieces that the receiver sees as one payload: heads[i]
 * (head_lens[i] bytes; heads and head_lens both NULL, or an entry of length 0: none) followed by
 * data[i]. Neither piece is copied over TCP: e.g. a .npy header written by the caller in front of an
 * array's own memory. */
HIO_CONNECTOR_API int hio_send_many_parts(hio_client* client, size_t count, const void* const* heads,
                                          const size_t* head_lens, const void* const* data, const size_t* lens,
                                          const char* const* metadata_json, hio_send_result* results,
                                          int32_t* codes, hio_flush_counts* counts);

/* Waits until every queued tuple has its result (at most timeout_ms; <= 0 means 600000), then reports
 * in `counts` (may be NULL) how the asynchronous tuples finished since the previous flush and resets the
 * counts. Returns HIO_OK when none of them got an error, the code of the first error otherwise (message
 * in hio_last_error), or HIO_ERR_TIMEOUT (counts are then not reset). */
HIO_CONNECTOR_API int hio_flush(hio_client* client, int64_t timeout_ms, hio_flush_counts* counts);

/* Waits up to close_timeout_ms for tuples in flight (their callbacks run), closes the connections and
 * frees the client. Tuples still without a result get HIO_ERR_CLOSED. NULL is ignored. */
HIO_CONNECTOR_API void hio_client_free(hio_client* client);

#ifdef __cplusplus
}
#endif

#endif /* HIO_CONNECTOR_H */
