/* p50/p90/p99 of nd_client_submit (a repeat envelope, so no fsync) against a running notifyd.
 * cc -std=c11 -O2 -Iinclude benches/ffi_submit_latency.c target/release/libnotifyd.a \
 *    -lpthread -ldl -lm -lrt -lutil -lgcc_s -o /tmp/submit_lat
 * /tmp/submit_lat tcp 127.0.0.1:8470 2000 envelope.json   (or: unix /run/notifyd/ingest.sock ...) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "notifyd.h"

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 5) return fprintf(stderr, "usage: %s tcp|unix ADDR N ENVELOPE_FILE\n", argv[0]), 2;
  const char *kind = argv[1], *addr = argv[2];
  int n = atoi(argv[3]);
  FILE *f = fopen(argv[4], "rb");
  if (f == NULL || n <= 0) return perror(argv[4]), 2;
  static uint8_t env[65536];
  size_t len = fread(env, 1, sizeof env, f);
  fclose(f);
  const nd_client *c = NULL;
  nd_result rc = strcmp(kind, "unix") == 0
                     ? nd_client_new_unix((const uint8_t *)addr, strlen(addr), NULL, 0, 5000, &c)
                     : nd_client_new_tcp((const uint8_t *)addr, strlen(addr), NULL, 0, 5000, &c);
  if (rc) return printf("new: %s\n", nd_result_str(rc)), 1;
  double *t = malloc(sizeof(double) * n);
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    nd_submit_result r;
    clock_gettime(CLOCK_MONOTONIC, &a);
    rc = nd_client_submit(c, env, len, &r, NULL, 0, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rc || r.http_status != 200) return printf("submit: %s %d\n", nd_result_str(rc), r.http_status), 1;
    t[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
  }
  qsort(t, n, sizeof *t, cmp);
  printf("libnotifyd %s n=%d p50=%.0fus p90=%.0fus p99=%.0fus\n", kind, n, t[n / 2], t[n * 9 / 10], t[n * 99 / 100]);
  nd_client_free(c);
  return 0;
}
