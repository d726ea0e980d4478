package dev.notifyd;

/**
 * The JNI entry points, one per C function (ffi/java/native/nd_jni.c). Strings cross as UTF-8
 * byte arrays; handles as longs; failures as {@link NdException}.
 */
final class NdNative {
  static {
    System.loadLibrary("notifyd_jni");
  }

  private NdNative() {}

  static native String version();

  static native String resultStr(int code);

  static native boolean resultIsRetryable(int code);

  static native void validate(byte[] api, byte[] json);

  static native byte[] encode(byte[] api, byte[] json);

  static native long envelopeParse(byte[] json);

  static native long envelopeNew(byte[] api, byte[] url, byte[] profile, byte[] body);

  static native byte[] envelopeEncode(long envelope);

  static native byte[] envelopeIdempotency(long envelope);

  static native void envelopeFree(long envelope);

  static native long idemTableNew(long capacity, long retentionMs);

  static native IdemCheck idemTableReserve(long table, byte[] key, long nowMs);

  static native IdemCheck idemTableCheck(long table, byte[] key, long nowMs);

  static native boolean idemTableConfirm(long table, byte[] key, long idHi, long idLo);

  static native boolean idemTableRelease(long table, byte[] key, long idHi, long idLo);

  static native long idemTableLen(long table);

  static native void idemTableFree(long table);

  static native Ack ackClassify(
      byte[] api, int kind, int httpStatus, long retryAfterMs, byte[] body, int signature, int mode);

  static native long retryPolicyAlipayDefault();

  static native long retryPolicyExponential(
      long initialMs, double multiplier, long maxDelayMs, int maxAttempts, long deadlineMs, double jitter);

  static native long retryPolicyNextDelay(long policy, int attemptsMade, long elapsedMs, double rand01);

  static native void retryPolicyFree(long policy);

  static native byte[] requestUri(byte[] url);

  static native long signingKeyFromPem(byte[] pem);

  static native byte[] signingKeySign(long key, int keyVersion, byte[][] parts);

  static native void signingKeyFree(long key);

  static native long verifyingKeyFromPem(byte[] pem);

  static native boolean verifyingKeyVerify(long key, byte[][] parts, byte[] header);

  static native void verifyingKeyFree(long key);

  static native long clientNewTcp(byte[] addr, byte[] token, int timeoutMs);

  static native long clientNewUnix(byte[] path, byte[] token, int timeoutMs);

  static native SubmitResult clientSubmit(long client, byte[] json, boolean batch);

  static native void clientFree(long client);
}
