package dev.notifyd;

/**
 * What a receiver's answer means: {@code action} is DONE, PERM_FAIL, RETRY or BACKOFF_HARD;
 * {@code reason} names why a retry follows ("" otherwise); {@code code}/{@code message} are the
 * receiver's resultCode/resultMessage; {@code retryAfterMs} is -1 unless throttled with Retry-After.
 */
public record Ack(int action, boolean isFinal, String reason, String code, String message, long retryAfterMs) {
  public static final int DONE = 0;
  public static final int PERM_FAIL = 1;
  public static final int RETRY = 2;
  public static final int BACKOFF_HARD = 3;

  public static final int OUTCOME_HTTP = 0;
  public static final int OUTCOME_TIMEOUT = 1;
  public static final int OUTCOME_TRANSPORT = 2;

  public static final int SIGNATURE_VERIFIED = 0;
  public static final int SIGNATURE_MISSING = 1;
  public static final int SIGNATURE_INVALID = 2;
  public static final int SIGNATURE_NOT_CHECKED = 3;

  public static final int MODE_REQUIRED = 0;
  public static final int MODE_OPTIONAL = 1;
  public static final int MODE_OFF = 2;
}
