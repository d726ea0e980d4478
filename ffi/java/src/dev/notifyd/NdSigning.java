package dev.notifyd;

import java.nio.charset.StandardCharsets;

/** RSA256 request signing and response verification (PROTOCOL.md §1). */
public final class NdSigning {
  private NdSigning() {}

  static byte[][] parts(String method, String uri, String clientId, String time, byte[] body) {
    return new byte[][] {
      Notifyd.utf8(method), Notifyd.utf8(uri), Notifyd.utf8(clientId), Notifyd.utf8(time), body
    };
  }

  /** The merchant's PKCS#8 private key. Immutable; thread-safe. */
  public static final class SigningKey extends NdHandle {
    public SigningKey(byte[] pem) {
      super(NdNative.signingKeyFromPem(pem), NdNative::signingKeyFree);
    }

    /** The Signature header value for this request. */
    public String sign(int keyVersion, String method, String uri, String clientId, String time, byte[] body) {
      byte[] h = NdNative.signingKeySign(handle(), keyVersion, parts(method, uri, clientId, time, body));
      return new String(h, StandardCharsets.UTF_8);
    }
  }

  /** The counterparty's X.509 public key. Immutable; thread-safe. */
  public static final class VerifyingKey extends NdHandle {
    public VerifyingKey(byte[] pem) {
      super(NdNative.verifyingKeyFromPem(pem), NdNative::verifyingKeyFree);
    }

    /** True when it verifies, false when it does not; throws when the header is unreadable. */
    public boolean verify(String method, String uri, String clientId, String time, byte[] body, String header) {
      return NdNative.verifyingKeyVerify(
          handle(), parts(method, uri, clientId, time, body), Notifyd.utf8(header));
    }
  }
}
