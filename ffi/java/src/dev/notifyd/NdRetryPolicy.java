package dev.notifyd;

/** A validated retry policy. Immutable; safe to share between threads. */
public final class NdRetryPolicy extends NdHandle {
  private NdRetryPolicy(long h) {
    super(h, NdNative::retryPolicyFree);
  }

  /** Alipay's schedule: +0, 2 min, 10 min, 10 min, 1 h, 2 h, 6 h, 15 h, ±10 % jitter. */
  public static NdRetryPolicy alipayDefault() {
    return new NdRetryPolicy(NdNative.retryPolicyAlipayDefault());
  }

  /** Exponential backoff; {@code deadlineMs} 0 means none. */
  public static NdRetryPolicy exponential(
      long initialMs, double multiplier, long maxDelayMs, int maxAttempts, long deadlineMs, double jitter) {
    return new NdRetryPolicy(
        NdNative.retryPolicyExponential(initialMs, multiplier, maxDelayMs, maxAttempts, deadlineMs, jitter));
  }

  /** Milliseconds before the next attempt, or -1 when no attempt follows. */
  public long nextDelayMs(int attemptsMade, long elapsedMs, double rand01) {
    return NdNative.retryPolicyNextDelay(handle(), attemptsMade, elapsedMs, rand01);
  }
}
