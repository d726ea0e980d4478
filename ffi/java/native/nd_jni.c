/*
 * JNI shim: dev.notifyd.NdNative over include/notifyd.h. It copies Java arrays into C memory,
 * calls the C ABI, and turns a non-OK nd_result into dev.notifyd.NdException. Handles cross as
 * jlong. No state is kept here, so Java threads may call in from anywhere.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jni.h>

#include "dev_notifyd_NdNative.h"
#include "notifyd.h"

/* A Java byte[] copied into malloc'd memory; NULL arrays become (NULL, 0). */
typedef struct {
  uint8_t *p;
  size_t n;
} bytes;

static bytes get(JNIEnv *env, jbyteArray a) {
  bytes b = {NULL, 0};
  if (a == NULL) return b;
  jsize n = (*env)->GetArrayLength(env, a);
  b.p = malloc(n > 0 ? (size_t)n : 1);
  b.n = (size_t)n;
  (*env)->GetByteArrayRegion(env, a, 0, n, (jbyte *)b.p);
  return b;
}

static void put(bytes b) { free(b.p); }

static jbyteArray to_java(JNIEnv *env, const uint8_t *p, size_t n) {
  jbyteArray a = (*env)->NewByteArray(env, (jsize)n);
  if (a != NULL) (*env)->SetByteArrayRegion(env, a, 0, (jsize)n, (const jbyte *)p);
  return a;
}

/* new cls(args...) through the constructor with signature sig; NULL with a Java exception
 * pending when the class, the constructor or an argument could not be made. */
static jobject new_object(JNIEnv *env, const char *cls, const char *sig, ...) {
  if ((*env)->ExceptionCheck(env)) return NULL;
  jclass c = (*env)->FindClass(env, cls);
  if (c == NULL) return NULL;
  jmethodID ctor = (*env)->GetMethodID(env, c, "<init>", sig);
  if (ctor == NULL) return NULL;
  va_list args;
  va_start(args, sig);
  jobject o = (*env)->NewObjectV(env, c, ctor, args);
  va_end(args);
  return o;
}

/* A Java String from NUL-terminated UTF-8 that libnotifyd wrote. NewStringUTF takes *modified*
 * UTF-8, in which a 4-byte sequence (an emoji in an echoed key or in a merchant's resultMessage)
 * is invalid even when intact: HotSpot decodes it into the wrong characters, and -Xcheck:jni
 * flags it. ASCII reads the same in both, so only text with a byte >= 0x80 goes through
 * new String(bytes, UTF_8), which decodes 4-byte sequences as surrogate pairs and replaces any
 * malformed one instead of misreading it. NULL with a Java exception pending on failure. */
static jstring jstr(JNIEnv *env, const char *s) {
  if ((*env)->ExceptionCheck(env)) return NULL;
  size_t n = strlen(s);
  size_t i = 0;
  while (i < n && (unsigned char)s[i] < 0x80) i++;
  if (i == n) return (*env)->NewStringUTF(env, s);
  jbyteArray bytes = to_java(env, (const uint8_t *)s, n);
  if (bytes == NULL) return NULL;
  jclass charsets = (*env)->FindClass(env, "java/nio/charset/StandardCharsets");
  if (charsets == NULL) return NULL;
  jfieldID utf8 = (*env)->GetStaticFieldID(env, charsets, "UTF_8", "Ljava/nio/charset/Charset;");
  if (utf8 == NULL) return NULL;
  jobject charset = (*env)->GetStaticObjectField(env, charsets, utf8);
  return (jstring)new_object(env, "java/lang/String", "([BLjava/nio/charset/Charset;)V", bytes, charset);
}

/* Throws NdException(code, detail or the code's description); returns true when it threw. */
static int fail(JNIEnv *env, nd_result rc, const char *detail) {
  if (rc == ND_RESULT_OK) return 0;
  jstring msg = jstr(env, detail != NULL && detail[0] ? detail : nd_result_str(rc));
  jobject ex = new_object(env, "dev/notifyd/NdException", "(ILjava/lang/String;)V", (jint)rc, msg);
  if (ex != NULL) (*env)->Throw(env, (jthrowable)ex);
  return 1;
}

/* A new handle for Java, or 0 after throwing for a non-OK rc. */
static jlong handle(JNIEnv *env, nd_result rc, const char *detail, const void *h) {
  return fail(env, rc, detail) ? 0 : (jlong)(intptr_t)h;
}

/* Runs an nd_* call that fills (buf, cap, &len), growing the buffer once when it is short. */
#define FILL_BYTES(env, call_with_buf_cap_len)                                          \
  do {                                                                                  \
    uint8_t stack_[4096];                                                               \
    uint8_t *buf_ = stack_;                                                             \
    size_t cap_ = sizeof stack_, len_ = 0;                                              \
    nd_result rc_ = call_with_buf_cap_len;                                              \
    if (rc_ == ND_RESULT_INSUFFICIENT_SIZE) {                                           \
      cap_ = len_;                                                                      \
      buf_ = malloc(cap_);                                                              \
      rc_ = call_with_buf_cap_len;                                                      \
    }                                                                                   \
    result = rc_ == ND_RESULT_OK ? to_java(env, buf_, len_) : NULL;                     \
    if (buf_ != stack_) free(buf_);                                                     \
    fail(env, rc_, err);                                                                \
  } while (0)
#define BUF buf_, cap_, &len_

JNIEXPORT jstring JNICALL Java_dev_notifyd_NdNative_version(JNIEnv *env, jclass c) {
  (void)c;
  return jstr(env, nd_version());
}

JNIEXPORT jstring JNICALL Java_dev_notifyd_NdNative_resultStr(JNIEnv *env, jclass c, jint code) {
  (void)c;
  return jstr(env, nd_result_str((uint32_t)code));
}

JNIEXPORT jboolean JNICALL Java_dev_notifyd_NdNative_resultIsRetryable(JNIEnv *env, jclass c, jint code) {
  (void)env, (void)c;
  return nd_result_is_retryable((uint32_t)code) ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT void JNICALL Java_dev_notifyd_NdNative_validate(JNIEnv *env, jclass c, jbyteArray api, jbyteArray json) {
  (void)c;
  char err[512] = {0};
  bytes a = get(env, api), j = get(env, json);
  nd_result rc = nd_notification_validate(a.p, a.n, j.p, j.n, err, sizeof err);
  put(a), put(j);
  fail(env, rc, err);
}

JNIEXPORT jbyteArray JNICALL Java_dev_notifyd_NdNative_encode(JNIEnv *env, jclass c, jbyteArray api,
                                                             jbyteArray json) {
  (void)c;
  char err[512] = {0};
  jbyteArray result;
  bytes a = get(env, api), j = get(env, json);
  FILL_BYTES(env, nd_notification_encode(a.p, a.n, j.p, j.n, BUF, err, sizeof err));
  put(a), put(j);
  return result;
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_envelopeParse(JNIEnv *env, jclass c, jbyteArray json) {
  (void)c;
  char err[512] = {0};
  nd_envelope *out = NULL;
  bytes j = get(env, json);
  nd_result rc = nd_envelope_parse(j.p, j.n, &out, err, sizeof err);
  put(j);
  return handle(env, rc, err, out);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_envelopeNew(JNIEnv *env, jclass c, jbyteArray api,
                                                             jbyteArray url, jbyteArray profile, jbyteArray body) {
  (void)c;
  char err[512] = {0};
  nd_envelope *out = NULL;
  bytes a = get(env, api), u = get(env, url), p = get(env, profile), b = get(env, body);
  nd_result rc = nd_envelope_new(a.p, a.n, u.p, u.n, p.p, p.n, b.p, b.n, &out, err, sizeof err);
  put(a), put(u), put(p), put(b);
  return handle(env, rc, err, out);
}

JNIEXPORT jbyteArray JNICALL Java_dev_notifyd_NdNative_envelopeEncode(JNIEnv *env, jclass c, jlong h) {
  (void)c;
  const char *err = NULL;
  jbyteArray result;
  FILL_BYTES(env, nd_envelope_encode((const nd_envelope *)(intptr_t)h, BUF));
  return result;
}

JNIEXPORT jbyteArray JNICALL Java_dev_notifyd_NdNative_envelopeIdempotency(JNIEnv *env, jclass c, jlong h) {
  (void)c;
  nd_idem_key k;
  nd_result rc = nd_envelope_idempotency((const nd_envelope *)(intptr_t)h, &k);
  if (fail(env, rc, NULL)) return NULL;
  return to_java(env, (const uint8_t *)&k, sizeof k);
}

JNIEXPORT void JNICALL Java_dev_notifyd_NdNative_envelopeFree(JNIEnv *env, jclass c, jlong h) {
  (void)env, (void)c;
  nd_envelope_free((nd_envelope *)(intptr_t)h);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_idemTableNew(JNIEnv *env, jclass c, jlong cap, jlong ret) {
  (void)c;
  const nd_idem_table *t = NULL;
  nd_result rc = cap < 0 || ret < 0 ? ND_RESULT_INVALID_ARGUMENT : nd_idem_table_new((size_t)cap, (uint64_t)ret, &t);
  return handle(env, rc, NULL, t);
}

/* Copies a Java 32-byte key into an nd_idem_key; throws on a wrong length. */
static int get_key(JNIEnv *env, jbyteArray key, nd_idem_key *k) {
  if (key == NULL || (*env)->GetArrayLength(env, key) != (jsize)sizeof *k) {
    fail(env, ND_RESULT_INVALID_ARGUMENT, "idempotency key must be 32 bytes");
    return 0;
  }
  (*env)->GetByteArrayRegion(env, key, 0, (jsize)sizeof *k, (jbyte *)k);
  return 1;
}

/* reserve/check: an IdemCheck, or NULL with an exception. */
static jobject idem_lookup(JNIEnv *env, jlong h, jbyteArray key, jlong now,
                           nd_result (*lookup)(const nd_idem_table *, const nd_idem_key *, uint64_t,
                                               nd_idem_check *)) {
  nd_idem_key k;
  nd_idem_check r;
  if (!get_key(env, key, &k)) return NULL;
  if (fail(env, lookup((const nd_idem_table *)(intptr_t)h, &k, (uint64_t)now, &r), NULL)) return NULL;
  return new_object(env, "dev/notifyd/IdemCheck", "(IZJJLjava/lang/String;)V", (jint)r.verdict,
                    (jboolean)r.pending, (jlong)r.id_hi, (jlong)r.id_lo, jstr(env, r.id_str));
}

JNIEXPORT jobject JNICALL Java_dev_notifyd_NdNative_idemTableReserve(JNIEnv *env, jclass c, jlong h,
                                                                    jbyteArray key, jlong now) {
  (void)c;
  return idem_lookup(env, h, key, now, nd_idem_table_reserve);
}

JNIEXPORT jobject JNICALL Java_dev_notifyd_NdNative_idemTableCheck(JNIEnv *env, jclass c, jlong h, jbyteArray key,
                                                                  jlong now) {
  (void)c;
  return idem_lookup(env, h, key, now, nd_idem_table_check);
}

/* confirm/release: true on OK, false on ND_RESULT_NOT_RESERVED, an exception otherwise. */
static jboolean idem_settle(JNIEnv *env, jlong h, jbyteArray key, jlong hi, jlong lo,
                            nd_result (*settle)(const nd_idem_table *, const nd_idem_key *, uint64_t, uint64_t)) {
  nd_idem_key k;
  if (!get_key(env, key, &k)) return JNI_FALSE;
  nd_result rc = settle((const nd_idem_table *)(intptr_t)h, &k, (uint64_t)hi, (uint64_t)lo);
  if (rc == ND_RESULT_NOT_RESERVED) return JNI_FALSE;
  return fail(env, rc, NULL) ? JNI_FALSE : JNI_TRUE;
}

JNIEXPORT jboolean JNICALL Java_dev_notifyd_NdNative_idemTableConfirm(JNIEnv *env, jclass c, jlong h,
                                                                     jbyteArray key, jlong hi, jlong lo) {
  (void)c;
  return idem_settle(env, h, key, hi, lo, nd_idem_table_confirm);
}

JNIEXPORT jboolean JNICALL Java_dev_notifyd_NdNative_idemTableRelease(JNIEnv *env, jclass c, jlong h,
                                                                     jbyteArray key, jlong hi, jlong lo) {
  (void)c;
  return idem_settle(env, h, key, hi, lo, nd_idem_table_release);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_idemTableLen(JNIEnv *env, jclass c, jlong h) {
  (void)env, (void)c;
  return (jlong)nd_idem_table_len((const nd_idem_table *)(intptr_t)h);
}

JNIEXPORT void JNICALL Java_dev_notifyd_NdNative_idemTableFree(JNIEnv *env, jclass c, jlong h) {
  (void)env, (void)c;
  nd_idem_table_free((const nd_idem_table *)(intptr_t)h);
}

JNIEXPORT jobject JNICALL Java_dev_notifyd_NdNative_ackClassify(JNIEnv *env, jclass c, jbyteArray api, jint kind,
                                                               jint status, jlong retry_after, jbyteArray body,
                                                               jint signature, jint mode) {
  (void)c;
  bytes a = get(env, api), b = get(env, body);
  nd_outcome o = {(uint32_t)kind, (uint16_t)status, (int64_t)retry_after, b.p, b.n, (uint32_t)signature};
  nd_ack ack;
  nd_result rc = nd_ack_classify(a.p, a.n, &o, (uint32_t)mode, &ack);
  put(a), put(b);
  if (fail(env, rc, NULL)) return NULL;
  return new_object(env, "dev/notifyd/Ack", "(IZLjava/lang/String;Ljava/lang/String;Ljava/lang/String;J)V",
                    (jint)ack.action, (jboolean)ack.is_final, jstr(env, ack.reason),
                    jstr(env, ack.code), jstr(env, ack.message),
                    (jlong)ack.retry_after_ms);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_retryPolicyAlipayDefault(JNIEnv *env, jclass c) {
  (void)c;
  const nd_retry_policy *p = NULL;
  nd_result rc = nd_retry_policy_alipay_default(&p);
  return handle(env, rc, NULL, p);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_retryPolicyExponential(JNIEnv *env, jclass c, jlong initial,
                                                                        jdouble mult, jlong max_delay,
                                                                        jint attempts, jlong deadline,
                                                                        jdouble jitter) {
  (void)c;
  const nd_retry_policy *p = NULL;
  nd_result rc = initial < 0 || max_delay < 0 || attempts < 0 || deadline < 0
                     ? ND_RESULT_INVALID_ARGUMENT
                     : nd_retry_policy_exponential((uint64_t)initial, mult, (uint64_t)max_delay,
                                                   (uint32_t)attempts, (uint64_t)deadline, jitter, &p);
  return handle(env, rc, NULL, p);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_retryPolicyNextDelay(JNIEnv *env, jclass c, jlong h,
                                                                      jint attempts, jlong elapsed, jdouble r) {
  (void)c;
  uint64_t ms = 0;
  if (attempts < 0 || elapsed < 0) return fail(env, ND_RESULT_INVALID_ARGUMENT, NULL), -1;
  nd_result rc = nd_retry_policy_next_delay((const nd_retry_policy *)(intptr_t)h, (uint32_t)attempts,
                                            (uint64_t)elapsed, r, &ms);
  if (rc == ND_RESULT_RETRIES_EXHAUSTED) return -1;
  return fail(env, rc, NULL) ? -1 : (jlong)ms;
}

JNIEXPORT void JNICALL Java_dev_notifyd_NdNative_retryPolicyFree(JNIEnv *env, jclass c, jlong h) {
  (void)env, (void)c;
  nd_retry_policy_free((const nd_retry_policy *)(intptr_t)h);
}

JNIEXPORT jbyteArray JNICALL Java_dev_notifyd_NdNative_requestUri(JNIEnv *env, jclass c, jbyteArray url) {
  (void)c;
  const char *err = NULL;
  jbyteArray result;
  bytes u = get(env, url);
  FILL_BYTES(env, nd_request_uri(u.p, u.n, BUF));
  put(u);
  return result;
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_signingKeyFromPem(JNIEnv *env, jclass c, jbyteArray pem) {
  (void)c;
  const nd_signing_key *k = NULL;
  bytes p = get(env, pem);
  nd_result rc = nd_signing_key_from_pem(p.p, p.n, &k);
  put(p);
  return handle(env, rc, NULL, k);
}

/* byte[5][] {method, uri, clientId, time, body} into nd_sign_parts; release with put_parts. */
static int get_parts(JNIEnv *env, jobjectArray parts, bytes b[5], nd_sign_parts *p) {
  if (parts == NULL || (*env)->GetArrayLength(env, parts) != 5) {
    fail(env, ND_RESULT_INVALID_ARGUMENT, "sign parts must be 5 byte arrays");
    return 0;
  }
  for (int i = 0; i < 5; i++) b[i] = get(env, (jbyteArray)(*env)->GetObjectArrayElement(env, parts, i));
  *p = (nd_sign_parts){b[0].p, b[0].n, b[1].p, b[1].n, b[2].p, b[2].n, b[3].p, b[3].n, b[4].p, b[4].n};
  return 1;
}

static void put_parts(bytes b[5]) {
  for (int i = 0; i < 5; i++) put(b[i]);
}

JNIEXPORT jbyteArray JNICALL Java_dev_notifyd_NdNative_signingKeySign(JNIEnv *env, jclass c, jlong h, jint version,
                                                                     jobjectArray parts) {
  (void)c;
  const char *err = NULL;
  jbyteArray result;
  bytes b[5];
  nd_sign_parts p;
  if (!get_parts(env, parts, b, &p)) return NULL;
  FILL_BYTES(env, nd_signing_key_sign((const nd_signing_key *)(intptr_t)h, (uint32_t)version, &p, BUF));
  put_parts(b);
  return result;
}

JNIEXPORT void JNICALL Java_dev_notifyd_NdNative_signingKeyFree(JNIEnv *env, jclass c, jlong h) {
  (void)env, (void)c;
  nd_signing_key_free((const nd_signing_key *)(intptr_t)h);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_verifyingKeyFromPem(JNIEnv *env, jclass c, jbyteArray pem) {
  (void)c;
  const nd_verifying_key *k = NULL;
  bytes p = get(env, pem);
  nd_result rc = nd_verifying_key_from_pem(p.p, p.n, &k);
  put(p);
  return handle(env, rc, NULL, k);
}

JNIEXPORT jboolean JNICALL Java_dev_notifyd_NdNative_verifyingKeyVerify(JNIEnv *env, jclass c, jlong h,
                                                                       jobjectArray parts, jbyteArray header) {
  (void)c;
  bytes b[5];
  nd_sign_parts p;
  if (!get_parts(env, parts, b, &p)) return JNI_FALSE;
  bytes hd = get(env, header);
  nd_result rc = nd_verifying_key_verify((const nd_verifying_key *)(intptr_t)h, &p, hd.p, hd.n);
  put_parts(b), put(hd);
  if (rc == ND_RESULT_BAD_SIGNATURE) return JNI_FALSE;
  return fail(env, rc, NULL) ? JNI_FALSE : JNI_TRUE;
}

JNIEXPORT void JNICALL Java_dev_notifyd_NdNative_verifyingKeyFree(JNIEnv *env, jclass c, jlong h) {
  (void)env, (void)c;
  nd_verifying_key_free((const nd_verifying_key *)(intptr_t)h);
}

/* nd_client_new_tcp/_unix: a client handle, or 0 with an exception. */
static jlong client_new(JNIEnv *env, jbyteArray addr, jbyteArray token, jint timeout,
                        nd_result (*make)(const uint8_t *, size_t, const uint8_t *, size_t, uint32_t,
                                          const nd_client **)) {
  const nd_client *cl = NULL;
  bytes a = get(env, addr), t = get(env, token);
  nd_result rc = timeout > 0 ? make(a.p, a.n, t.p, t.n, (uint32_t)timeout, &cl) : ND_RESULT_INVALID_ARGUMENT;
  put(a), put(t);
  return handle(env, rc, NULL, cl);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_clientNewTcp(JNIEnv *env, jclass c, jbyteArray addr,
                                                              jbyteArray token, jint timeout) {
  (void)c;
  return client_new(env, addr, token, timeout, nd_client_new_tcp);
}

JNIEXPORT jlong JNICALL Java_dev_notifyd_NdNative_clientNewUnix(JNIEnv *env, jclass c, jbyteArray path,
                                                               jbyteArray token, jint timeout) {
  (void)c;
  return client_new(env, path, token, timeout, nd_client_new_unix);
}

JNIEXPORT jobject JNICALL Java_dev_notifyd_NdNative_clientSubmit(JNIEnv *env, jclass c, jlong h, jbyteArray json,
                                                                jboolean batch) {
  (void)c;
  bytes j = get(env, json);
  nd_submit_result r;
  size_t body_len = 0;
  uint8_t *body = malloc(1 << 16);
  size_t cap = 1 << 16;
  const nd_client *cl = (const nd_client *)(intptr_t)h;
  nd_result rc = batch ? nd_client_submit_batch(cl, j.p, j.n, &r, body, cap, &body_len)
                       : nd_client_submit(cl, j.p, j.n, &r, body, cap, &body_len);
  put(j);
  jobject out = NULL;
  if (!fail(env, rc, NULL)) {
    out = new_object(env, "dev/notifyd/SubmitResult",
                     "(ILjava/lang/String;Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;ZII[B)V",
                     (jint)r.http_status, jstr(env, r.result_status),
                     jstr(env, r.result_code), jstr(env, r.result_message),
                     jstr(env, r.notification_id), (jboolean)r.duplicate, (jint)r.batch_items,
                     (jint)r.batch_accepted, to_java(env, body, body_len < cap ? body_len : cap));
  }
  free(body);
  return out;
}

JNIEXPORT void JNICALL Java_dev_notifyd_NdNative_clientFree(JNIEnv *env, jclass c, jlong h) {
  (void)env, (void)c;
  nd_client_free((const nd_client *)(intptr_t)h);
}
