package dev.notifyd;

/** A valid notification with its url and profile. Immutable; safe to share between threads. */
public final class NdEnvelope extends NdHandle {
  private NdEnvelope(long h) {
    super(h, NdNative::envelopeFree);
  }

  /** Parses {"api","url","profile"?,"body"} JSON exactly as notifyd's ingest does. */
  public static NdEnvelope parse(byte[] json) {
    return new NdEnvelope(NdNative.envelopeParse(json));
  }

  /** Builds an envelope from its parts; {@code profile} null means "default". */
  public static NdEnvelope of(String api, String url, String profile, byte[] body) {
    return new NdEnvelope(
        NdNative.envelopeNew(Notifyd.utf8(api), Notifyd.utf8(url), Notifyd.utf8(profile), body));
  }

  /** The canonical notification bytes. */
  public byte[] encode() {
    return NdNative.envelopeEncode(handle());
  }

  /** 32 bytes: the idempotency key (16, little-endian) then the key-field fingerprint (16). */
  public byte[] idempotency() {
    return NdNative.envelopeIdempotency(handle());
  }
}
