package dev.notifyd;

/** A blocking client for a running notifyd. Thread-safe: each submit opens its own connection. */
public final class NdClient extends NdHandle {
  private NdClient(long h) {
    super(h, NdNative::clientFree);
  }

  /** {@code addr} is "host:port"; {@code token} may be null. */
  public static NdClient tcp(String addr, String token, int timeoutMs) {
    return new NdClient(NdNative.clientNewTcp(Notifyd.utf8(addr), Notifyd.utf8(token), timeoutMs));
  }

  /** notifyd's {@code [ingest] unix_socket} path; {@code token} may be null. */
  public static NdClient unix(String path, String token, int timeoutMs) {
    return new NdClient(NdNative.clientNewUnix(Notifyd.utf8(path), Notifyd.utf8(token), timeoutMs));
  }

  /** POST /v1/notifications. Every HTTP answer is a result; transport failures throw. */
  public SubmitResult submit(byte[] envelopeJson) {
    return NdNative.clientSubmit(handle(), envelopeJson, false);
  }

  /** POST /v1/notifications/batch with {"notifications":[...]}. */
  public SubmitResult submitBatch(byte[] batchJson) {
    return NdNative.clientSubmit(handle(), batchJson, true);
  }
}
