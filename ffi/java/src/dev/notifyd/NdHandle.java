package dev.notifyd;

import java.lang.ref.Cleaner;
import java.util.function.LongConsumer;

/**
 * An owned libnotifyd handle. {@link #close()} releases it; a {@link Cleaner} releases it too if
 * the object is dropped unclosed (a leak net, not the plan). Closing while another thread still
 * uses the handle is a bug in the caller.
 */
abstract class NdHandle implements AutoCloseable {
  private static final Cleaner CLEANER = Cleaner.create();

  /** Holds the raw pointer; must not refer back to the handle object. */
  private static final class State implements Runnable {
    private volatile long handle;
    private final LongConsumer free;

    State(long handle, LongConsumer free) {
      this.handle = handle;
      this.free = free;
    }

    @Override
    public synchronized void run() {
      long h = handle;
      handle = 0;
      if (h != 0) {
        free.accept(h);
      }
    }
  }

  private final State state;
  private final Cleaner.Cleanable cleanable;

  NdHandle(long handle, LongConsumer free) {
    this.state = new State(handle, free);
    this.cleanable = CLEANER.register(this, state);
  }

  final long handle() {
    long h = state.handle;
    if (h == 0) {
      throw new IllegalStateException(getClass().getSimpleName() + " is closed");
    }
    return h;
  }

  @Override
  public final void close() {
    cleanable.clean();
  }
}
