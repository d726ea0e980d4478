/* A minimal test harness: CHECK counts, the last line is "N passed, N failed". */
#ifndef ND_CHECK_H
#define ND_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifyd.h"

static int nd_passed;
static int nd_failed;

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (cond) {                                                                        \
      nd_passed++;                                                                     \
    } else {                                                                           \
      nd_failed++;                                                                     \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);        \
    }                                                                                  \
  } while (0)

#define CHECK_RC(expr, want)                                                           \
  do {                                                                                 \
    nd_result rc_ = (expr);                                                            \
    if (rc_ == (nd_result)(want)) {                                                    \
      nd_passed++;                                                                     \
    } else {                                                                           \
      nd_failed++;                                                                     \
      fprintf(stderr, "%s:%d: %s = %u (%s), want %s\n", __FILE__, __LINE__, #expr,    \
              (unsigned)rc_, nd_result_str(rc_), #want);                               \
    }                                                                                  \
  } while (0)

/* A string literal as a (pointer, length) pair. */
#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static int nd_report(void) {
  printf("%d passed, %d failed\n", nd_passed, nd_failed);
  return nd_failed == 0 ? 0 : 1;
}

#endif
