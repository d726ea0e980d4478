/*
 * Every function of libnotifyd through its C header: success paths, every error path, NULL
 * arguments and short buffers. The ingest client runs against the notifyd whose addresses the
 * driver (ffi/tests/c_harness.rs) passes in ND_TEST_ADDR and ND_TEST_SOCK; the signing vector
 * comes from ND_SIGVEC_DIR, ND_REQ_SIGNATURE, ND_RESP_CONTENT and ND_RESP_SIGNATURE.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

static const char PAYMENT[] =
    "{\"partnerId\":\"P000000000000001xxxx\",\"paymentId\":\"201911271907410100070000009999xxxx\","
    "\"paymentRequestId\":\"2019112719074101000700000088881xxxx\","
    "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"10000\"},"
    "\"paymentTime\":\"2019-11-27T12:01:01+08:30\",\"paymentStatus\":\"SUCCESS\"}";

#define LEN(a) (sizeof(a) - 1)

static const char *env(const char *name) {
  const char *v = getenv(name);
  if (v == NULL) {
    fprintf(stderr, "missing environment variable %s (run through cargo test)\n", name);
    nd_failed++;
  }
  return v;
}

/* Reads a whole file into a malloc'd buffer (C memory, freed by C). */
static uint8_t *slurp(const char *dir, const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  uint8_t *buf = malloc(1 << 16);
  *len = fread(buf, 1, 1 << 16, f);
  fclose(f);
  return buf;
}

static void test_version_and_results(void) {
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", ND_VERSION_MAJOR, ND_VERSION_MINOR, ND_VERSION_PATCH);
  CHECK(strcmp(nd_version(), want) == 0);
  CHECK(strcmp(nd_result_str(ND_RESULT_OK), "ok") == 0);
  CHECK(strstr(nd_result_str(ND_RESULT_INSUFFICIENT_SIZE), "too small") != NULL);
  CHECK(strcmp(nd_result_str(12345), "unknown result code") == 0);
  CHECK(nd_result_is_retryable(ND_RESULT_TIMEOUT));
  CHECK(nd_result_is_retryable(ND_RESULT_CONNECT));
  CHECK(!nd_result_is_retryable(ND_RESULT_INVALID_NOTIFICATION));
  CHECK(!nd_result_is_retryable(12345));
}

/* Whether s is well-formed UTF-8: every lead byte has all its continuation bytes. */
static int utf8_ok(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
    if (n < 0) return 0;
    p++;
    for (int i = 0; i < n; i++, p++)
      if ((*p & 0xc0) != 0x80) return 0;
  }
  return 1;
}

static void test_validate(void) {
  char err[256];
  CHECK_RC(nd_notification_validate(S("notifyPayment"), S(PAYMENT), err, sizeof err), ND_RESULT_OK);
  CHECK_RC(nd_notification_validate(S("notifyPayment"), S(PAYMENT), NULL, 0), ND_RESULT_OK);

  static const char bad_amount[] =
      "{\"partnerId\":\"P1\",\"paymentId\":\"PAY1\",\"paymentRequestId\":\"R1\","
      "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"12a\"},\"paymentStatus\":\"SUCCESS\"}";
  CHECK_RC(nd_notification_validate(S("notifyPayment"), S(bad_amount), err, sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strncmp(err, "paymentAmount.value: ", 21) == 0);

  CHECK_RC(nd_notification_validate(S("notifyPayment"), S("{\"partnerId\":\"P1\"}"), err, sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strstr(err, "is required") != NULL);
  CHECK_RC(nd_notification_validate(S("notifyPayment"), S("not json"), err, sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strstr(err, "must be valid JSON") != NULL);

  /* A short message buffer truncates and stays NUL-terminated. */
  char tiny[8];
  memset(tiny, 'x', sizeof tiny);
  CHECK_RC(nd_notification_validate(S("notifyPayment"), S(bad_amount), tiny, sizeof tiny),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strcmp(tiny, "payment") == 0);

  /* Messages echo unknown keys; a short buffer must not end inside one of their characters.
   * "\xc3\xa9\xf0\x9f\x98\x80" is "é😀" (2 + 4 bytes). */
  static const char odd_key[] = "{\"\xc3\xa9\xf0\x9f\x98\x80\":\"1\"}";
  int torn = 0;
  for (size_t cap = 1; cap <= 12; cap++) {
    char cut[12];
    CHECK_RC(nd_notification_validate(S("notifyPayment"), S(odd_key), cut, cap), ND_RESULT_INVALID_NOTIFICATION);
    if (!utf8_ok(cut)) torn++, fprintf(stderr, "err_cap %zu: torn character\n", cap);
  }
  CHECK(torn == 0);
  CHECK_RC(nd_notification_validate(S("notifyPayment"), S(odd_key), tiny, 4), ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strcmp(tiny, "\xc3\xa9") == 0);
  CHECK_RC(nd_notification_validate(S("notifyPayment"), S(odd_key), err, sizeof err), ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strncmp(err, "\xc3\xa9\xf0\x9f\x98\x80: ", 8) == 0);

  CHECK_RC(nd_notification_validate(S("inquiryPayment"), S(PAYMENT), err, sizeof err), ND_RESULT_UNKNOWN_API);
  CHECK(strncmp(err, "api: must be one of", 19) == 0);
  CHECK_RC(nd_notification_validate(NULL, 5, S(PAYMENT), err, sizeof err), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_notification_validate(S("notifyPayment"), NULL, 3, err, sizeof err), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_notification_validate(S("notify\xff"), S(PAYMENT), err, sizeof err), ND_RESULT_INVALID_UTF8);
  /* Success never touches the message buffer. */
  strcpy(err, "untouched");
  CHECK_RC(nd_notification_validate(S("notifyPayment"), S(PAYMENT), err, sizeof err), ND_RESULT_OK);
  CHECK(strcmp(err, "untouched") == 0);
}

static void test_encode(void) {
  /* Same fields in canonical order, with spaces that encoding drops. */
  static const char spaced[] =
      "{ \"partnerId\": \"P1\", \"paymentId\": \"PAY1\", \"paymentRequestId\": \"R1\", "
      "\"paymentAmount\": {\"currency\": \"USD\", \"value\": \"100\"}, \"paymentStatus\": \"FAIL\" }";
  static const char canonical[] =
      "{\"partnerId\":\"P1\",\"paymentId\":\"PAY1\",\"paymentRequestId\":\"R1\","
      "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"100\"},\"paymentStatus\":\"FAIL\"}";
  char err[128];
  size_t need = 0;
  CHECK_RC(nd_notification_encode(S("notifyPayment"), S(spaced), NULL, 0, &need, err, sizeof err),
           ND_RESULT_INSUFFICIENT_SIZE);
  CHECK(need == LEN(canonical));

  uint8_t small[16];
  memset(small, 0xAA, sizeof small);
  size_t len = 0;
  CHECK_RC(nd_notification_encode(S("notifyPayment"), S(spaced), small, sizeof small, &len, err, sizeof err),
           ND_RESULT_INSUFFICIENT_SIZE);
  CHECK(len == LEN(canonical));
  CHECK(small[0] == 0xAA && small[15] == 0xAA);

  uint8_t buf[512];
  len = 0;
  CHECK_RC(nd_notification_encode(S("notifyPayment"), S(spaced), buf, need, &len, err, sizeof err), ND_RESULT_OK);
  CHECK(len == LEN(canonical) && memcmp(buf, canonical, len) == 0);

  CHECK_RC(nd_notification_encode(S("notifyPayment"), S(spaced), buf, sizeof buf, NULL, err, sizeof err),
           ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_notification_encode(S("notifyPayment"), S(spaced), NULL, 10, &len, err, sizeof err),
           ND_RESULT_NULL_PARAMETER);
  len = 777;
  CHECK_RC(nd_notification_encode(S("notifyVoid"), S(spaced), buf, sizeof buf, &len, err, sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(len == 777); /* out-parameters untouched on failure */
  CHECK_RC(nd_notification_encode(S("nope"), S(spaced), buf, sizeof buf, &len, NULL, 0), ND_RESULT_UNKNOWN_API);
}

static void test_envelope(void) {
  char err[256];
  static const char env_json[] =
      "{\"api\":\"notifyPayment\",\"url\":\"https://m.example.com/notify\",\"body\":"
      "{\"partnerId\":\"P1\",\"paymentId\":\"PAY1\",\"paymentRequestId\":\"R1\","
      "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"100\"},\"paymentStatus\":\"SUCCESS\"}}";
  static const char body[] =
      "{\"partnerId\":\"P1\",\"paymentId\":\"PAY1\",\"paymentRequestId\":\"R1\","
      "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"100\"},\"paymentStatus\":\"SUCCESS\"}";

  nd_envelope *parsed = NULL, *built = NULL, *other_url = NULL, *named = NULL;
  CHECK_RC(nd_envelope_parse(S(env_json), &parsed, err, sizeof err), ND_RESULT_OK);
  CHECK(parsed != NULL);
  CHECK(strcmp(nd_envelope_api(parsed), "notifyPayment") == 0);
  CHECK(nd_envelope_api(NULL) == NULL);

  CHECK_RC(nd_envelope_new(S("notifyPayment"), S("https://m.example.com/notify"), NULL, 0, S(body), &built,
                           err, sizeof err),
           ND_RESULT_OK);
  CHECK_RC(nd_envelope_new(S("notifyPayment"), S("https://other.example.com/notify"), S("default"), S(body),
                           &other_url, err, sizeof err),
           ND_RESULT_OK);
  CHECK_RC(nd_envelope_new(S("notifyPayment"), S("https://m.example.com/notify"), S("acme"), S(body), &named,
                           err, sizeof err),
           ND_RESULT_OK);

  nd_idem_key a, b, c, d;
  CHECK_RC(nd_envelope_idempotency(parsed, &a), ND_RESULT_OK);
  CHECK_RC(nd_envelope_idempotency(built, &b), ND_RESULT_OK);
  CHECK_RC(nd_envelope_idempotency(other_url, &c), ND_RESULT_OK);
  CHECK_RC(nd_envelope_idempotency(named, &d), ND_RESULT_OK);
  CHECK(memcmp(&a, &b, sizeof a) == 0);                                 /* parse == parts, default profile */
  CHECK(memcmp(a.key, c.key, 16) == 0);                                 /* url is a key field ... */
  CHECK(memcmp(a.fingerprint, c.fingerprint, 16) != 0);                 /* ... not part of the key */
  CHECK(memcmp(a.key, d.key, 16) != 0);                                 /* the profile is */
  CHECK_RC(nd_envelope_idempotency(NULL, &a), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_envelope_idempotency(parsed, NULL), ND_RESULT_NULL_PARAMETER);

  uint8_t buf[512];
  size_t len = 0;
  CHECK_RC(nd_envelope_encode(parsed, buf, sizeof buf, &len), ND_RESULT_OK);
  CHECK(len == LEN(body) && memcmp(buf, body, len) == 0);
  CHECK_RC(nd_envelope_encode(parsed, buf, 3, &len), ND_RESULT_INSUFFICIENT_SIZE);
  CHECK(len == LEN(body));
  CHECK_RC(nd_envelope_encode(NULL, buf, sizeof buf, &len), ND_RESULT_NULL_PARAMETER);

  nd_envelope *none = NULL;
  CHECK_RC(nd_envelope_parse(S("{\"api\":\"notifyPayment\",\"url\":\"https://m.example.com/\",\"body\":"
                               "{\"partnerId\":\"P1\"}}"),
                             &none, err, sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(none == NULL);
  CHECK(strncmp(err, "body.", 5) == 0);
  CHECK_RC(nd_envelope_new(S("notifyPayment"), S("ftp://m.example.com/"), NULL, 0, S(body), &none, err,
                           sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strncmp(err, "url", 3) == 0);
  CHECK_RC(nd_envelope_new(S("notifyPayment"), S("https://m.example.com/"), S("bad profile!"), S(body), &none,
                           err, sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strncmp(err, "profile", 7) == 0);
  CHECK_RC(nd_envelope_new(S("refund"), S("https://m.example.com/"), NULL, 0, S(body), &none, err, sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strncmp(err, "api", 3) == 0);
  CHECK_RC(nd_envelope_new(S("notifyPayment"), S("https://m.example.com/"), NULL, 0, S("{oops"), &none, err,
                           sizeof err),
           ND_RESULT_INVALID_NOTIFICATION);
  CHECK(strncmp(err, "body: must be valid JSON", 24) == 0);
  CHECK_RC(nd_envelope_parse(S(env_json), NULL, err, sizeof err), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_envelope_new(S("notifyPayment"), NULL, 4, NULL, 0, S(body), &none, err, sizeof err),
           ND_RESULT_NULL_PARAMETER);
  CHECK(none == NULL);

  nd_envelope_free(parsed);
  nd_envelope_free(built);
  nd_envelope_free(other_url);
  nd_envelope_free(named);
  nd_envelope_free(NULL);
}

static void test_idempotency_table(void) {
  const nd_idem_table *t = NULL;
  CHECK_RC(nd_idem_table_new(0, 1000, &t), ND_RESULT_INVALID_ARGUMENT);
  CHECK_RC(nd_idem_table_new(100, 0, &t), ND_RESULT_INVALID_ARGUMENT);
  CHECK(t == NULL);
  CHECK_RC(nd_idem_table_new(100, 1000, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_idem_table_new(1024, 60000, &t), ND_RESULT_OK);

  nd_idem_key k;
  memset(&k, 0, sizeof k);
  k.key[15] = 0x42;
  k.fingerprint[0] = 1;
  nd_idem_check first, again, look;
  CHECK_RC(nd_idem_table_check(t, &k, 1000, &look), ND_RESULT_OK);
  CHECK(look.verdict == ND_IDEM_VERDICT_UNKNOWN && look.id_hi == 0 && look.id_str[0] == '\0');

  CHECK_RC(nd_idem_table_reserve(t, &k, 1000, &first), ND_RESULT_OK);
  CHECK(first.verdict == ND_IDEM_VERDICT_NEW && first.pending);
  CHECK(strlen(first.id_str) == 26);
  CHECK(first.id_hi != 0 || first.id_lo != 0);
  CHECK(nd_idem_table_len(t) == 1);

  CHECK_RC(nd_idem_table_reserve(t, &k, 2000, &again), ND_RESULT_OK);
  CHECK(again.verdict == ND_IDEM_VERDICT_DUPLICATE && again.pending);
  CHECK(again.id_hi == first.id_hi && again.id_lo == first.id_lo);
  CHECK(strcmp(again.id_str, first.id_str) == 0);

  nd_idem_key changed = k;
  changed.fingerprint[0] = 2;
  CHECK_RC(nd_idem_table_reserve(t, &changed, 2000, &again), ND_RESULT_OK);
  CHECK(again.verdict == ND_IDEM_VERDICT_INCONSISTENT && again.id_lo == first.id_lo);

  CHECK_RC(nd_idem_table_confirm(t, &k, first.id_hi, first.id_lo + 1), ND_RESULT_NOT_RESERVED);
  CHECK_RC(nd_idem_table_confirm(t, &k, first.id_hi, first.id_lo), ND_RESULT_OK);
  CHECK_RC(nd_idem_table_check(t, &k, 3000, &look), ND_RESULT_OK);
  CHECK(look.verdict == ND_IDEM_VERDICT_DUPLICATE && !look.pending);
  CHECK_RC(nd_idem_table_release(t, &k, first.id_hi, first.id_lo), ND_RESULT_NOT_RESERVED); /* settled */

  /* A released reservation makes the same key new again. */
  nd_idem_key k2 = k;
  k2.key[15] = 0x43;
  nd_idem_check r2, r3;
  CHECK_RC(nd_idem_table_reserve(t, &k2, 1000, &r2), ND_RESULT_OK);
  CHECK_RC(nd_idem_table_release(t, &k2, r2.id_hi, r2.id_lo), ND_RESULT_OK);
  CHECK_RC(nd_idem_table_reserve(t, &k2, 1000, &r3), ND_RESULT_OK);
  CHECK(r3.verdict == ND_IDEM_VERDICT_NEW);

  /* Past the retention window the key is unknown again. */
  CHECK_RC(nd_idem_table_check(t, &k, 1000 + 60000, &look), ND_RESULT_OK);
  CHECK(look.verdict == ND_IDEM_VERDICT_UNKNOWN);

  CHECK_RC(nd_idem_table_reserve(NULL, &k, 1, &look), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_idem_table_reserve(t, NULL, 1, &look), ND_RESULT_NULL_PARAMETER);
  size_t before = nd_idem_table_len(t);
  nd_idem_key k4 = k;
  k4.key[15] = 0x44;
  CHECK_RC(nd_idem_table_reserve(t, &k4, 1, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK(nd_idem_table_len(t) == before); /* a NULL out-parameter leaves no reservation behind */
  CHECK_RC(nd_idem_table_check(t, &k, 1, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_idem_table_check(NULL, &k, 1, &look), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_idem_table_confirm(NULL, &k, 0, 0), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_idem_table_release(t, NULL, 0, 0), ND_RESULT_NULL_PARAMETER);
  CHECK(nd_idem_table_len(NULL) == 0);
  nd_idem_table_free(t);
  nd_idem_table_free(NULL);
}

static nd_outcome http_outcome(uint16_t status, const char *body, int64_t retry_after_ms) {
  nd_outcome o;
  memset(&o, 0, sizeof o);
  o.kind = ND_OUTCOME_KIND_HTTP;
  o.http_status = status;
  o.retry_after_ms = retry_after_ms;
  o.body = (const uint8_t *)body;
  o.body_len = body ? strlen(body) : 0;
  o.signature = ND_SIGNATURE_CHECK_NOT_CHECKED;
  return o;
}

static void test_ack(void) {
  nd_ack ack;
  nd_outcome o = http_outcome(200, "{\"result\":{\"resultStatus\":\"S\",\"resultCode\":\"SUCCESS\"}}", -1);
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OPTIONAL, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_DONE && ack.is_final && !ack.unexpected_code);
  CHECK(strcmp(ack.code, "SUCCESS") == 0 && strcmp(ack.metric_outcome, "ack") == 0);
  CHECK(strcmp(ack.reason, "") == 0);

  o = http_outcome(200,
                   "{\"result\":{\"resultStatus\":\"F\",\"resultCode\":\"PROCESS_FAIL\",\"resultMessage\":\"no\"}}",
                   -1);
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_PERM_FAIL && ack.is_final);
  CHECK(strcmp(ack.code, "PROCESS_FAIL") == 0 && strcmp(ack.message, "no") == 0);
  CHECK(strcmp(ack.metric_outcome, "rejected") == 0);

  /* An F about our side holds the endpoint: for the notification, a retry that spends nothing. */
  o = http_outcome(200,
                   "{\"result\":{\"resultStatus\":\"F\",\"resultCode\":\"INVALID_SIGNATURE\"}}",
                   -1);
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_RETRY && !ack.is_final && strcmp(ack.reason, "our_side") == 0);
  CHECK(strcmp(ack.code, "INVALID_SIGNATURE") == 0 && strcmp(ack.metric_outcome, "rejected") == 0);

  o = http_outcome(200, "{\"result\":{\"resultStatus\":\"U\",\"resultCode\":\"UNKNOWN_EXCEPTION\"}}", -1);
  CHECK_RC(nd_ack_classify(S("notifyVoid"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_RETRY && !ack.is_final && strcmp(ack.reason, "unknown_result") == 0);
  CHECK(strcmp(ack.code, "UNKNOWN_EXCEPTION") == 0);

  o = http_outcome(429, NULL, 30000);
  CHECK_RC(nd_ack_classify(S("alipayplus.notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_BACKOFF_HARD && ack.retry_after_ms == 30000);
  CHECK(strcmp(ack.metric_outcome, "throttled") == 0);

  o = http_outcome(503, "busy", -1);
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_RETRY && strcmp(ack.reason, "http_status") == 0);

  /* A required signature that was not checked fails closed. */
  o = http_outcome(200, "{\"result\":{\"resultStatus\":\"S\",\"resultCode\":\"SUCCESS\"}}", -1);
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_REQUIRED, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_RETRY && strcmp(ack.reason, "signature_not_checked") == 0);
  o.signature = ND_SIGNATURE_CHECK_INVALID;
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OPTIONAL, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_RETRY && strcmp(ack.reason, "signature_invalid") == 0);

  o.kind = ND_OUTCOME_KIND_TIMEOUT;
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_OK);
  CHECK(ack.action == ND_ACTION_RETRY && strcmp(ack.reason, "timeout") == 0);
  o.kind = ND_OUTCOME_KIND_TRANSPORT;
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_OK);
  CHECK(strcmp(ack.metric_outcome, "transport_error") == 0);

  o = http_outcome(200, "{}", -1);
  ack.action = ND_ACTION_DONE;
  o.kind = 9;
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_INVALID_ARGUMENT);
  o.kind = ND_OUTCOME_KIND_HTTP;
  o.signature = 9;
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_INVALID_ARGUMENT);
  o.signature = ND_SIGNATURE_CHECK_VERIFIED;
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, 9, &ack), ND_RESULT_INVALID_ARGUMENT);
  o.retry_after_ms = -2;
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_INVALID_ARGUMENT);
  o.retry_after_ms = -1;
  o.body = NULL; /* with body_len 2 */
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_NULL_PARAMETER);
  CHECK(ack.action == ND_ACTION_DONE); /* untouched by the failures above */
  CHECK_RC(nd_ack_classify(S("refund"), &o, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_UNKNOWN_API);
  CHECK_RC(nd_ack_classify(S("notifyPayment"), NULL, ND_SIGNATURE_MODE_OFF, &ack), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_ack_classify(S("notifyPayment"), &o, ND_SIGNATURE_MODE_OFF, NULL), ND_RESULT_NULL_PARAMETER);
}

static void test_backoff(void) {
  const nd_retry_policy *p = NULL;
  uint64_t ms = 0;
  CHECK_RC(nd_retry_policy_alipay_default(&p), ND_RESULT_OK);
  CHECK(nd_retry_policy_max_attempts(p) == 8);
  CHECK_RC(nd_retry_policy_next_delay(p, 0, 0, 0.5, &ms), ND_RESULT_OK);
  CHECK(ms == 0);
  CHECK_RC(nd_retry_policy_next_delay(p, 1, 0, 0.5, &ms), ND_RESULT_OK);
  CHECK(ms == 120000);
  CHECK_RC(nd_retry_policy_next_delay(p, 1, 0, 0.0, &ms), ND_RESULT_OK);
  CHECK(ms == 108000); /* -10 % jitter */
  CHECK_RC(nd_retry_policy_next_delay(p, 7, 0, 0.5, &ms), ND_RESULT_OK);
  CHECK(ms == 15ull * 3600 * 1000);
  ms = 1;
  CHECK_RC(nd_retry_policy_next_delay(p, 8, 0, 0.5, &ms), ND_RESULT_RETRIES_EXHAUSTED);
  CHECK(ms == 1);
  CHECK_RC(nd_retry_policy_throttled_delay(p, 1000, -1, &ms), ND_RESULT_OK);
  CHECK(ms == 60000);
  CHECK_RC(nd_retry_policy_throttled_delay(p, 1000, 120000, &ms), ND_RESULT_OK);
  CHECK(ms == 120000);
  CHECK_RC(nd_retry_policy_throttled_delay(p, 1000, -7, &ms), ND_RESULT_INVALID_ARGUMENT);
  CHECK_RC(nd_retry_policy_next_delay(p, 1, 0, 0.5, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_retry_policy_next_delay(NULL, 1, 0, 0.5, &ms), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_retry_policy_throttled_delay(NULL, 1, -1, &ms), ND_RESULT_NULL_PARAMETER);
  nd_retry_policy_free(p);

  const uint64_t delays[] = {0, 1000, 5000};
  p = NULL;
  CHECK_RC(nd_retry_policy_schedule(delays, 3, 0.0, &p), ND_RESULT_OK);
  CHECK(nd_retry_policy_max_attempts(p) == 3);
  CHECK_RC(nd_retry_policy_next_delay(p, 2, 0, 0.9, &ms), ND_RESULT_OK);
  CHECK(ms == 5000);
  nd_retry_policy_free(p);
  p = NULL;
  CHECK_RC(nd_retry_policy_schedule(NULL, 0, 0.0, &p), ND_RESULT_POLICY_EMPTY_SCHEDULE);
  CHECK_RC(nd_retry_policy_schedule(NULL, 2, 0.0, &p), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_retry_policy_schedule(delays, 3, 1.0, &p), ND_RESULT_POLICY_JITTER);
  uint64_t many[101] = {0};
  CHECK_RC(nd_retry_policy_schedule(many, 101, 0.0, &p), ND_RESULT_POLICY_SCHEDULE_TOO_LONG);
  CHECK_RC(nd_retry_policy_schedule(delays, 3, 0.0, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK(p == NULL);

  CHECK_RC(nd_retry_policy_exponential(1000, 2.0, 10000, 5, 0, 0.0, &p), ND_RESULT_OK);
  CHECK_RC(nd_retry_policy_next_delay(p, 3, 0, 0.5, &ms), ND_RESULT_OK);
  CHECK(ms == 4000);
  CHECK_RC(nd_retry_policy_next_delay(p, 5, 0, 0.5, &ms), ND_RESULT_RETRIES_EXHAUSTED);
  nd_retry_policy_free(p);
  p = NULL;
  CHECK_RC(nd_retry_policy_exponential(1000, 2.0, 10000, 5, 5000, 0.0, &p), ND_RESULT_OK);
  CHECK_RC(nd_retry_policy_next_delay(p, 3, 3000, 0.5, &ms), ND_RESULT_RETRIES_EXHAUSTED); /* past deadline */
  nd_retry_policy_free(p);
  p = NULL;
  CHECK_RC(nd_retry_policy_exponential(0, 2.0, 10000, 5, 0, 0.0, &p), ND_RESULT_POLICY_INITIAL);
  CHECK_RC(nd_retry_policy_exponential(1000, 0.5, 10000, 5, 0, 0.0, &p), ND_RESULT_POLICY_MULTIPLIER);
  CHECK_RC(nd_retry_policy_exponential(1000, 2.0, 10, 5, 0, 0.0, &p), ND_RESULT_POLICY_MAX_DELAY);
  CHECK_RC(nd_retry_policy_exponential(1000, 2.0, 10000, 0, 0, 0.0, &p), ND_RESULT_POLICY_MAX_ATTEMPTS);
  CHECK_RC(nd_retry_policy_exponential(1000, 2.0, 10000, 5, 0, -0.1, &p), ND_RESULT_POLICY_JITTER);
  CHECK_RC(nd_retry_policy_exponential(1000, 2.0, 10000, 5, 0, 0.0, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK(p == NULL);
  CHECK(nd_retry_policy_max_attempts(NULL) == 0);
  nd_retry_policy_free(NULL);
}

static nd_sign_parts parts_of(const char *method, const char *uri, const char *client_id, const char *time,
                              const uint8_t *body, size_t body_len) {
  nd_sign_parts p;
  p.method = (const uint8_t *)method;
  p.method_len = strlen(method);
  p.request_uri = (const uint8_t *)uri;
  p.request_uri_len = strlen(uri);
  p.client_id = (const uint8_t *)client_id;
  p.client_id_len = strlen(client_id);
  p.time = (const uint8_t *)time;
  p.time_len = strlen(time);
  p.body = body;
  p.body_len = body_len;
  return p;
}

static void test_signing(void) {
  const char *dir = env("ND_SIGVEC_DIR");
  const char *req_sig = env("ND_REQ_SIGNATURE");
  const char *resp_content = env("ND_RESP_CONTENT");
  const char *resp_sig = env("ND_RESP_SIGNATURE");
  if (!dir || !req_sig || !resp_content || !resp_sig) return;
  size_t priv_len = 0, pub_len = 0, content_len = 0;
  uint8_t *priv = slurp(dir, "test_private_key_pkcs8.pem", &priv_len);
  uint8_t *pub = slurp(dir, "test_public_key_x509.pem", &pub_len);
  uint8_t *content = slurp(dir, "req_content.bin", &content_len);
  CHECK(priv && pub && content);
  if (!priv || !pub || !content) return;

  uint8_t buf[1024];
  size_t len = 0;
  CHECK_RC(nd_request_uri(S("https://host:8443/v1/payments/notifyPayment?a=1#frag"), buf, sizeof buf, &len),
           ND_RESULT_OK);
  CHECK(len == 30 && memcmp(buf, "/v1/payments/notifyPayment?a=1", 30) == 0);
  CHECK_RC(nd_request_uri(S("https://host"), buf, sizeof buf, &len), ND_RESULT_OK);
  CHECK(len == 1 && buf[0] == '/');
  CHECK_RC(nd_request_uri(S("not a url"), buf, sizeof buf, &len), ND_RESULT_INVALID_URL);
  CHECK_RC(nd_request_uri(S("https://host/x"), buf, 1, &len), ND_RESULT_INSUFFICIENT_SIZE);
  CHECK(len == 2);

  /* The request of the test vector: content "POST <uri>\n<client>.<time>.<body>". */
  const char *nl = memchr(content, '\n', content_len);
  const char *body = (const char *)content;
  for (int dots = 0; dots < 2; body++) {
    if (body > nl && *body == '.') dots++;
  }
  /* Time and client id between the newline and the body. */
  char client_id[64] = {0}, time[64] = {0};
  const char *dot1 = memchr(nl + 1, '.', 64);
  memcpy(client_id, nl + 1, (size_t)(dot1 - nl - 1));
  memcpy(time, dot1 + 1, (size_t)(body - dot1 - 2));
  size_t body_len = content_len - (size_t)((const uint8_t *)body - content);
  nd_sign_parts req = parts_of("POST", "/v1/payments/notifyPayment", client_id, time, (const uint8_t *)body,
                               body_len);

  CHECK_RC(nd_sign_content(&req, buf, sizeof buf, &len), ND_RESULT_OK);
  CHECK(len == content_len && memcmp(buf, content, len) == 0);
  CHECK_RC(nd_sign_content(&req, buf, 10, &len), ND_RESULT_INSUFFICIENT_SIZE);
  CHECK(len == content_len);
  CHECK_RC(nd_sign_content(NULL, buf, sizeof buf, &len), ND_RESULT_NULL_PARAMETER);

  const nd_signing_key *sk = NULL;
  const nd_verifying_key *vk = NULL;
  CHECK_RC(nd_signing_key_from_pem(priv, priv_len, &sk), ND_RESULT_OK);
  CHECK_RC(nd_verifying_key_from_pem(pub, pub_len, &vk), ND_RESULT_OK);

  CHECK_RC(nd_signing_key_sign(sk, 1, &req, buf, sizeof buf, &len), ND_RESULT_OK);
  CHECK(len == strlen(req_sig) && memcmp(buf, req_sig, len) == 0); /* PKCS#1 v1.5 is deterministic */
  CHECK_RC(nd_signing_key_sign(sk, 1, &req, buf, 16, &len), ND_RESULT_INSUFFICIENT_SIZE);
  CHECK(len == strlen(req_sig));
  CHECK_RC(nd_signing_key_sign(NULL, 1, &req, buf, sizeof buf, &len), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_verifying_key_verify(vk, &req, (const uint8_t *)req_sig, strlen(req_sig)), ND_RESULT_OK);

  /* The response of the vector: same method and URI, the response's time and body. */
  const char *rnl = strchr(resp_content, '\n');
  const char *rdot1 = strchr(rnl + 1, '.');
  const char *rbody = strstr(rdot1 + 1, ".{") + 1;
  char rclient[64] = {0}, rtime[64] = {0};
  memcpy(rclient, rnl + 1, (size_t)(rdot1 - rnl - 1));
  memcpy(rtime, rdot1 + 1, (size_t)(rbody - rdot1 - 2));
  nd_sign_parts resp = parts_of("POST", "/v1/payments/notifyPayment", rclient, rtime, (const uint8_t *)rbody,
                                strlen(rbody));
  CHECK_RC(nd_verifying_key_verify(vk, &resp, (const uint8_t *)resp_sig, strlen(resp_sig)), ND_RESULT_OK);
  resp.body_len -= 1;
  CHECK_RC(nd_verifying_key_verify(vk, &resp, (const uint8_t *)resp_sig, strlen(resp_sig)), ND_RESULT_BAD_SIGNATURE);
  CHECK_RC(nd_verifying_key_verify(vk, &resp, S("keyVersion=1, signature=abc")),
           ND_RESULT_SIGNATURE_HEADER_MISSING_ALGORITHM);
  CHECK_RC(nd_verifying_key_verify(vk, &resp, S("algorithm=ECC224, signature=abc")),
           ND_RESULT_SIGNATURE_HEADER_UNSUPPORTED_ALGORITHM);
  CHECK_RC(nd_verifying_key_verify(vk, &resp, S("algorithm=RSA256")), ND_RESULT_SIGNATURE_HEADER_MISSING_SIGNATURE);
  CHECK_RC(nd_verifying_key_verify(vk, &resp, S("algorithm=RSA256, signature=***")),
           ND_RESULT_SIGNATURE_HEADER_ENCODING);
  CHECK_RC(nd_verifying_key_verify(vk, &resp, S("algorithm=RSA256, algorithm=RSA256, signature=abc")),
           ND_RESULT_SIGNATURE_HEADER_DUPLICATE_KEY);
  CHECK_RC(nd_verifying_key_verify(vk, &resp, S("algorithm=RSA256, junk")), ND_RESULT_SIGNATURE_HEADER_MALFORMED_PAIR);
  CHECK_RC(nd_verifying_key_verify(NULL, &resp, S("x")), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_verifying_key_verify(vk, NULL, S("x")), ND_RESULT_NULL_PARAMETER);

  const nd_signing_key *bad_sk = NULL;
  const nd_verifying_key *bad_vk = NULL;
  CHECK_RC(nd_signing_key_from_pem(S("no pem here"), &bad_sk), ND_RESULT_KEY_PEM_NO_BLOCK);
  CHECK_RC(nd_signing_key_from_pem(pub, pub_len, &bad_sk), ND_RESULT_KEY_PEM_LABEL);
  CHECK_RC(nd_verifying_key_from_pem(priv, priv_len, &bad_vk), ND_RESULT_KEY_PEM_LABEL);
  CHECK_RC(nd_signing_key_from_pem(S("-----BEGIN PRIVATE KEY-----\nAAAA\n"), &bad_sk),
           ND_RESULT_KEY_PEM_UNTERMINATED);
  CHECK_RC(nd_signing_key_from_pem(S("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"), &bad_sk),
           ND_RESULT_KEY_PEM_BASE64);
  CHECK_RC(nd_signing_key_from_pem(S("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), &bad_sk),
           ND_RESULT_KEY_REJECTED);
  CHECK_RC(nd_verifying_key_from_pem(S("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), &bad_vk),
           ND_RESULT_KEY_DER);
  CHECK_RC(nd_signing_key_from_pem(priv, priv_len, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK(bad_sk == NULL && bad_vk == NULL);

  nd_signing_key_free(sk);
  nd_verifying_key_free(vk);
  nd_signing_key_free(NULL);
  nd_verifying_key_free(NULL);
  free(priv);
  free(pub);
  free(content);
}

static void submit_text(const nd_client *c, const char *json, nd_submit_result *out, nd_result want) {
  CHECK_RC(nd_client_submit(c, (const uint8_t *)json, strlen(json), out, NULL, 0, NULL), want);
}

static void test_client(void) {
  const char *addr = env("ND_TEST_ADDR");
  const char *sock = env("ND_TEST_SOCK");
  if (!addr || !sock) return;
  const nd_client *tcp = NULL, *unix_c = NULL, *bad = NULL;
  CHECK_RC(nd_client_new_tcp((const uint8_t *)addr, strlen(addr), NULL, 0, 5000, &tcp), ND_RESULT_OK);
  CHECK_RC(nd_client_new_unix((const uint8_t *)sock, strlen(sock), NULL, 0, 5000, &unix_c), ND_RESULT_OK);
  CHECK_RC(nd_client_new_tcp(S("no-port-here"), NULL, 0, 5000, &bad), ND_RESULT_INVALID_ADDRESS);
  CHECK_RC(nd_client_new_tcp(S("127.0.0.1:1"), NULL, 0, 0, &bad), ND_RESULT_INVALID_ARGUMENT);
  CHECK_RC(nd_client_new_tcp(S("127.0.0.1:1"), S("bad\ntoken"), 100, &bad), ND_RESULT_INVALID_ARGUMENT);
  CHECK_RC(nd_client_new_unix(NULL, 0, NULL, 0, 100, &bad), ND_RESULT_INVALID_ADDRESS);
  CHECK_RC(nd_client_new_tcp(S("127.0.0.1:1"), NULL, 0, 100, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK(bad == NULL);

  static const char first[] =
      "{\"api\":\"notifyPayment\",\"url\":\"http://127.0.0.1:9/notify\",\"body\":"
      "{\"partnerId\":\"P1\",\"paymentId\":\"C-PAY1\",\"paymentRequestId\":\"C-R1\","
      "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"100\"},\"paymentStatus\":\"SUCCESS\"}}";
  static const char changed[] =
      "{\"api\":\"notifyPayment\",\"url\":\"http://127.0.0.1:9/notify\",\"body\":"
      "{\"partnerId\":\"P1\",\"paymentId\":\"C-PAY1\",\"paymentRequestId\":\"C-R1\","
      "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"999\"},\"paymentStatus\":\"SUCCESS\"}}";
  static const char invalid[] =
      "{\"api\":\"notifyPayment\",\"url\":\"http://127.0.0.1:9/notify\",\"body\":"
      "{\"partnerId\":\"P1\",\"paymentId\":\"C-PAY2\",\"paymentRequestId\":\"C-R2\","
      "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"100\"},\"paymentStatus\":\"MAYBE\"}}";

  nd_submit_result r, dup;
  submit_text(tcp, first, &r, ND_RESULT_OK);
  CHECK(r.http_status == 200 && strcmp(r.result_status, "S") == 0 && strcmp(r.result_code, "SUCCESS") == 0);
  CHECK(strlen(r.notification_id) == 26 && !r.duplicate && r.retry_after_s == -1);

  submit_text(unix_c, first, &dup, ND_RESULT_OK); /* the same notification over the Unix socket */
  CHECK(dup.http_status == 200 && dup.duplicate && strcmp(dup.notification_id, r.notification_id) == 0);

  submit_text(tcp, changed, &r, ND_RESULT_OK);
  CHECK(r.http_status == 409 && strcmp(r.result_status, "F") == 0);
  CHECK(strcmp(r.result_code, "REPEAT_REQ_INCONSISTENT") == 0);

  uint8_t body[16];
  size_t body_len = 0;
  CHECK_RC(nd_client_submit(tcp, S(invalid), &r, body, sizeof body, &body_len), ND_RESULT_OK);
  CHECK(r.http_status == 400 && strcmp(r.result_code, "PARAM_ILLEGAL") == 0);
  CHECK(strncmp(r.result_message, "body.paymentStatus: ", 20) == 0);
  CHECK(body_len > sizeof body && body[0] == '{'); /* truncated, full length reported */

  static const char batch[] =
      "{\"notifications\":[{\"api\":\"notifyVoid\",\"url\":\"http://127.0.0.1:9/void\",\"body\":"
      "{\"voidRequestId\":\"V1\",\"paymentId\":\"C-PAY1\",\"voidResult\":{\"resultStatus\":\"S\","
      "\"resultCode\":\"SUCCESS\"}}},{\"api\":\"notifyVoid\",\"url\":\"http://127.0.0.1:9/void\",\"body\":{}}]}";
  CHECK_RC(nd_client_submit_batch(unix_c, S(batch), &r, NULL, 0, NULL), ND_RESULT_OK);
  CHECK(r.http_status == 200 && r.batch_items == 2 && r.batch_accepted == 1);

  CHECK_RC(nd_client_submit(NULL, S(first), &r, NULL, 0, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_client_submit(tcp, S(first), NULL, NULL, 0, NULL), ND_RESULT_NULL_PARAMETER);
  CHECK_RC(nd_client_submit(tcp, S(first), &r, NULL, 5, NULL), ND_RESULT_NULL_PARAMETER);

  /* Transport failures: nothing listening, a socket path that does not exist, a silent peer. */
  const nd_client *refused = NULL, *missing = NULL, *silent_c = NULL;
  CHECK_RC(nd_client_new_tcp(S("127.0.0.1:1"), NULL, 0, 2000, &refused), ND_RESULT_OK);
  CHECK_RC(nd_client_submit(refused, S(first), &r, NULL, 0, NULL), ND_RESULT_CONNECT);
  CHECK_RC(nd_client_new_unix(S("/nonexistent/notifyd.sock"), NULL, 0, 2000, &missing), ND_RESULT_OK);
  CHECK_RC(nd_client_submit(missing, S(first), &r, NULL, 0, NULL), ND_RESULT_CONNECT);

  int silent = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  CHECK(bind(silent, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(silent, 4) == 0);
  CHECK(getsockname(silent, (struct sockaddr *)&sa, &sl) == 0);
  char silent_addr[64];
  snprintf(silent_addr, sizeof silent_addr, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
  CHECK_RC(nd_client_new_tcp((const uint8_t *)silent_addr, strlen(silent_addr), S("token"), 200, &silent_c),
           ND_RESULT_OK);
  CHECK_RC(nd_client_submit(silent_c, S(first), &r, NULL, 0, NULL), ND_RESULT_TIMEOUT);
  close(silent);

  nd_client_free(tcp);
  nd_client_free(unix_c);
  nd_client_free(refused);
  nd_client_free(missing);
  nd_client_free(silent_c);
  nd_client_free(NULL);
}

int main(void) {
  test_version_and_results();
  test_validate();
  test_encode();
  test_envelope();
  test_idempotency_table();
  test_ack();
  test_backoff();
  test_signing();
  test_client();
  return nd_report();
}
