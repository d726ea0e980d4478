package dev.notifyd;

/**
 * An idempotency-table answer: {@code verdict} is one of the constants below; {@code idHi/idLo}
 * identify the holder (pass them to confirm/release), {@code id} is its 26-character form.
 */
public record IdemCheck(int verdict, boolean pending, long idHi, long idLo, String id) {
  public static final int UNKNOWN = 0;
  public static final int NEW = 1;
  public static final int DUPLICATE = 2;
  public static final int INCONSISTENT = 3;
}
