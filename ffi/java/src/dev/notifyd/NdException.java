package dev.notifyd;

/** A non-OK {@code nd_result} from libnotifyd: {@link #code()} is its number (never renumbered). */
public final class NdException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int code;

  NdException(int code, String message) {
    super(message + " (nd_result " + code + ")");
    this.code = code;
  }

  public int code() {
    return code;
  }

  /** Transport failures of the ingest client that may be retried unchanged. */
  public boolean isRetryable() {
    return NdNative.resultIsRetryable(code);
  }
}
