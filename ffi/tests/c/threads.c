/* Several pthreads share one nd_idem_table: every key is reserved exactly once. */
#include <pthread.h>

#include "check.h"

enum { THREADS = 8, KEYS = 2000 };

static const nd_idem_table *table;
static int new_count[THREADS];
static int dup_count[THREADS];
static int errors[THREADS];

static nd_idem_key key_for(int i) {
  nd_idem_key k;
  memset(&k, 0, sizeof k);
  /* Spread keys over the shards, which are picked by the top bits. */
  k.key[0] = (uint8_t)i;
  k.key[1] = (uint8_t)(i >> 8);
  k.key[15] = (uint8_t)(i * 37);
  k.key[14] = (uint8_t)(i * 11);
  k.fingerprint[0] = 1;
  return k;
}

static void *worker(void *arg) {
  int t = (int)(size_t)arg;
  for (int i = 0; i < KEYS; i++) {
    /* Each thread walks the keys from a different start so they collide mid-flight. */
    int k = (i + t * (KEYS / THREADS)) % KEYS;
    nd_idem_key key = key_for(k);
    nd_idem_check out;
    if (nd_idem_table_reserve(table, &key, 1000, &out) != ND_RESULT_OK) {
      errors[t]++;
      continue;
    }
    if (out.verdict == ND_IDEM_VERDICT_NEW) {
      new_count[t]++;
      if (nd_idem_table_confirm(table, &key, out.id_hi, out.id_lo) != ND_RESULT_OK) errors[t]++;
    } else if (out.verdict == ND_IDEM_VERDICT_DUPLICATE) {
      dup_count[t]++;
    } else {
      errors[t]++;
    }
  }
  return NULL;
}

int main(void) {
  CHECK_RC(nd_idem_table_new(KEYS * 2, 60000, &table), ND_RESULT_OK);
  pthread_t threads[THREADS];
  for (int t = 0; t < THREADS; t++) {
    CHECK(pthread_create(&threads[t], NULL, worker, (void *)(size_t)t) == 0);
  }
  int news = 0, dups = 0, errs = 0;
  for (int t = 0; t < THREADS; t++) {
    CHECK(pthread_join(threads[t], NULL) == 0);
    news += new_count[t];
    dups += dup_count[t];
    errs += errors[t];
  }
  CHECK(errs == 0);
  CHECK(news == KEYS);                       /* each key won by exactly one thread */
  CHECK(dups == KEYS * (THREADS - 1));       /* every other attempt saw the winner */
  CHECK(nd_idem_table_len(table) == KEYS);
  nd_idem_table_free(table);
  return nd_report();
}
