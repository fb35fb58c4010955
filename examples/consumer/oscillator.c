/* A toy parameter sweep: damped oscillators x'' + 2*zeta*omega*x' + omega^2*x = 0, one realization per
 * (omega, zeta), each sent to an hio cluster as a (T, 1) float64 .npy tuple with its parameters in the
 * metadata. Usage: oscillator MASTER_URL [REALIZATIONS]
 * The source token comes from $HIO_SOURCE_TOKEN or the data directory of `hio up` ($HIO_DATA_DIR). */
#include <hio_connector.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { timepoints = 256, header_bytes = 128 };

/* A .npy version 1.0 header for a little-endian float64 array of shape (rows, 1), padded to 128 bytes. */
static void npy_header(unsigned char* out, int rows) {
  char dict[header_bytes];
  int n = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, 1), }", rows);
  memset(dict + n, ' ', (size_t)(header_bytes - 10 - n));
  dict[header_bytes - 10 - 1] = '\n';
  memcpy(out, "\x93NUMPY\x01\x00", 8);
  out[8] = (unsigned char)((header_bytes - 10) & 0xff);
  out[9] = (unsigned char)((header_bytes - 10) >> 8);
  memcpy(out + 10, dict, (size_t)(header_bytes - 10));
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MASTER_URL [REALIZATIONS]\n", argv[0]);
    return 2;
  }
  const int count = argc > 2 ? atoi(argv[2]) : 32;
  hio_client* client = hio_client_new(argv[1], "oscillator");
  if (!client) {
    fprintf(stderr, "oscillator: %s\n", hio_last_error());
    return 1;
  }
  unsigned char tuple[header_bytes + timepoints * sizeof(double)];
  npy_header(tuple, timepoints);
  int rc = 0;
  for (int i = 0; i < count && rc == 0; ++i) {
    const double omega = 0.1 + 0.05 * (i % 8), zeta = 0.02 * (i / 8);
    double x = 1.0, v = 0.0;
    for (int t = 0; t < timepoints; ++t) { /* semi-implicit Euler, dt = 1 */
      memcpy(tuple + header_bytes + t * sizeof(double), &x, sizeof x);
      v -= 2.0 * zeta * omega * v + omega * omega * x;
      x += v;
    }
    char metadata[160];
    snprintf(metadata, sizeof metadata, "{\"run\": %d, \"params\": {\"omega\": %.3f, \"zeta\": %.3f}}", i, omega, zeta);
    /* HIO_SEND_COPY: the buffer is rewritten for the next realization at once. */
    rc = hio_send_async(client, tuple, sizeof tuple, metadata, HIO_SEND_COPY, NULL, NULL);
  }
  hio_flush_counts counts = {0, 0, 0, 0};
  if (rc == 0) rc = hio_flush(client, 120000, &counts);
  if (rc != 0) fprintf(stderr, "oscillator: %s\n", hio_last_error());
  printf("oscillator: %d realizations: %" PRIu64 " stored, %" PRIu64 " queued, %" PRIu64 " failed, %" PRIu64
         " errors (hio %s)\n",
         count, counts.stored, counts.queued, counts.failed, counts.errors, hio_version());
  hio_client_free(client);
  return rc == 0 && counts.failed == 0 && counts.errors == 0 ? 0 : 1;
}
