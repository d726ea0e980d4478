package dev.notifyd;

import java.nio.charset.StandardCharsets;

/** Stateless functions of libnotifyd: version, validation, canonical encoding, classification. */
public final class Notifyd {
  private Notifyd() {}

  static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  /** The library version, e.g. "0.1.0". */
  public static String version() {
    return NdNative.version();
  }

  /** The description of an nd_result number. */
  public static String resultString(int code) {
    return NdNative.resultStr(code);
  }

  /** Throws {@link NdException} whose message names the field and the rule when invalid. */
  public static void validate(String api, byte[] json) {
    NdNative.validate(utf8(api), json);
  }

  /** Validates and returns the canonical bytes notifyd sends to the receiver. */
  public static byte[] encode(String api, byte[] json) {
    return NdNative.encode(utf8(api), json);
  }

  /** Classifies an HTTP answer of a receiver (see {@link Ack} for the constants). */
  public static Ack classify(
      String api, int httpStatus, long retryAfterMs, byte[] body, int signatureCheck, int signatureMode) {
    return NdNative.ackClassify(
        utf8(api), Ack.OUTCOME_HTTP, httpStatus, retryAfterMs, body, signatureCheck, signatureMode);
  }

  /** Classifies an attempt that got no HTTP answer ({@link Ack#OUTCOME_TIMEOUT} or _TRANSPORT). */
  public static Ack classifyFailure(String api, int outcome) {
    return NdNative.ackClassify(
        utf8(api), outcome, 0, -1, null, Ack.SIGNATURE_NOT_CHECKED, Ack.MODE_OFF);
  }

  /** The Request-URI (path and query) of an absolute URL, as signed. */
  public static String requestUri(String url) {
    return new String(NdNative.requestUri(utf8(url)), StandardCharsets.UTF_8);
  }
}
