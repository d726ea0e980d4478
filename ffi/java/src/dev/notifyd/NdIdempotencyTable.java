package dev.notifyd;

/** The shared idempotency table. Thread-safe: any number of threads may call it at once. */
public final class NdIdempotencyTable extends NdHandle {
  public NdIdempotencyTable(long capacity, long retentionMs) {
    super(NdNative.idemTableNew(capacity, retentionMs), NdNative::idemTableFree);
  }

  /** Atomically reserves {@code key} (from {@link NdEnvelope#idempotency()}) when it is new. */
  public IdemCheck reserve(byte[] key, long nowMs) {
    return NdNative.idemTableReserve(handle(), key, nowMs);
  }

  /** Read-only lookup; {@link IdemCheck#UNKNOWN} when unknown or expired. */
  public IdemCheck check(byte[] key, long nowMs) {
    return NdNative.idemTableCheck(handle(), key, nowMs);
  }

  /** Settles a reservation; false when the key no longer holds that id. */
  public boolean confirm(byte[] key, IdemCheck reserved) {
    return NdNative.idemTableConfirm(handle(), key, reserved.idHi(), reserved.idLo());
  }

  /** Drops a pending reservation; false when there was none. */
  public boolean release(byte[] key, IdemCheck reserved) {
    return NdNative.idemTableRelease(handle(), key, reserved.idHi(), reserved.idLo());
  }

  public long size() {
    return NdNative.idemTableLen(handle());
  }
}
