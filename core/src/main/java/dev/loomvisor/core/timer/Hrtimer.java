package dev.loomvisor.core.timer;

import dev.loomvisor.core.Notifier;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * {@code struct hrtimer}: one deadline of one waiter on a {@link HrtimerBase}. On expiry it signals its
 * {@link Notifier} (the same eventfd an interrupt signals, so a vCPU waits for "the next send time or an
 * interrupt" in one blocking read) or unparks its thread.
 *
 * <p>The whole request is one word: the expiry relative to the base's epoch, shifted left, with bit 0 set
 * while armed (0 = inactive). Arming writes the word; the clock thread fires a timer only by a CAS from the
 * word it queued to 0, so a timer re-armed meanwhile is never fired for its old expiry and an expiry fires
 * at most once. Arming allocates nothing. One thread arms a given timer at a time (its owner, as a vCPU
 * owns its hrtimers).
 */
public final class Hrtimer implements AutoCloseable {

    static final long INACTIVE = 0;
    private static final VarHandle STATE;
    private static final VarHandle QUEUED;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            STATE = l.findVarHandle(Hrtimer.class, "state", long.class);
            QUEUED = l.findVarHandle(Hrtimer.class, "queued", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final HrtimerBase base;
    private final Notifier notifier;
    private final Thread thread;
    @SuppressWarnings("unused") // through STATE
    private volatile long state;
    /** 1 while the timer sits in the base's inbox (at most once). */
    @SuppressWarnings("unused") // through QUEUED
    private volatile int queued;
    private volatile boolean closed;
    private volatile long expiries;

    // State of the base's queue, confined to the holder of its lock.
    int queueIndex = -1;
    long queuedExpires;
    long queuedWord;
    boolean released;

    Hrtimer(HrtimerBase base, Notifier notifier, Thread thread) {
        this.base = base;
        this.notifier = notifier;
        this.thread = thread;
    }

    /**
     * hrtimer_start with HRTIMER_MODE_ABS: fires at {@code expiresNanos} ({@link System#nanoTime()} time)
     * or later, never earlier; re-arming an armed timer replaces its expiry. A time already past fires at
     * once.
     */
    public void start(long expiresNanos) {
        if (closed) {
            throw new IllegalStateException("hrtimer closed");
        }
        STATE.setVolatile(this, base.encode(expiresNanos));
        base.enqueue(this, expiresNanos);
    }

    /** hrtimer_try_to_cancel: true if the timer was armed (it will not fire for that expiry). */
    public boolean cancel() {
        long s = (long) STATE.getAndSet(this, INACTIVE);
        if (s != INACTIVE) {
            base.enqueue(this, Long.MAX_VALUE);
            return true;
        }
        return false;
    }

    /** hrtimer_active: armed and not yet fired. */
    public boolean isActive() {
        return (long) STATE.getVolatile(this) != INACTIVE;
    }

    /** The base this timer is armed on. */
    public HrtimerBase base() {
        return base;
    }

    /** Times this timer fired. */
    public long expiries() {
        return expiries;
    }

    /** Cancels the timer and gives its place on the base back; it cannot be armed again. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        STATE.setVolatile(this, INACTIVE);
        base.enqueue(this, Long.MIN_VALUE); // wakes the clock thread, which gives the place back
    }

    boolean isClosed() {
        return closed;
    }

    long word() {
        return (long) STATE.getVolatile(this);
    }

    /** Sets the inbox flag; false if the timer is in the inbox already. */
    boolean markQueued() {
        return QUEUED.compareAndSet(this, 0, 1);
    }

    /** Clears the inbox flag before the clock thread reads the word, so a later arm enqueues again. */
    void clearQueued() {
        QUEUED.setVolatile(this, 0);
    }

    /** Under the base's queue lock: fires if the request it queued is still the current one. */
    boolean expire() {
        if (!STATE.compareAndSet(this, queuedWord, INACTIVE)) {
            return false;
        }
        expiries++; // one writer at a time: the holder of the base's queue lock
        if (notifier != null) {
            notifier.signal();
        } else {
            LockSupport.unpark(thread);
        }
        return true;
    }
}
