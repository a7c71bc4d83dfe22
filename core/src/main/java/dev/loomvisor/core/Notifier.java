package dev.loomvisor.core;

import dev.loomvisor.core.inject.Delays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An eventfd in counter mode: the notification primitive behind virtqueue kicks and interrupts.
 *
 * <p>{@link #signal()} adds to a 64-bit counter; a read ({@link #poll()}, {@link #await()}) returns the
 * whole count and resets it to zero, as read(2) on an eventfd without EFD_SEMAPHORE does. Because the
 * count is sticky, a signal that comes before the wait is never lost. A listener (the wait-queue entry that
 * vhost_poll registers on the kick eventfd) is called on every signal, from the signalling thread.
 *
 * <p>Waiters park on a {@link ReentrantLock} condition, never in {@code synchronized}, so virtual threads
 * unmount while they wait. The signal path takes the lock only when someone waits.
 */
public final class Notifier {

    /** Called from the signalling thread after the count was raised; must not block. */
    @FunctionalInterface
    public interface Listener {
        void onSignal(Notifier notifier);
    }

    /** eventfd refuses a count that would reach 2^64 - 1; we keep to the signed range. */
    private static final long MAX_COUNT = Long.MAX_VALUE - 1;

    private final AtomicLong count = new AtomicLong();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition signalled = lock.newCondition();
    private volatile int waiters;
    private volatile Listener listener;

    /** Adds one to the counter and wakes waiters and the listener. */
    public void signal() {
        signal(1);
    }

    /** Adds {@code n} (at least 1) to the counter and wakes waiters and the listener. */
    public void signal(long n) {
        if (n <= 0) {
            throw new IllegalArgumentException("eventfd write of " + n + ": must be at least 1");
        }
        // A plain CAS loop rather than getAndUpdate with a capturing lambda: the kick path allocates nothing.
        long c;
        do {
            c = count.get();
        } while (!count.compareAndSet(c, c > MAX_COUNT - n ? MAX_COUNT : c + n));
        Delays.at(Delays.Point.SIGNAL_AFTER_COUNT);
        // The volatile read of waiters follows the counter update (a full barrier on x86 and in the JMM
        // for the CAS), so a waiter that registered before re-checking the count is always seen.
        if (waiters > 0) {
            lock.lock();
            try {
                signalled.signalAll();
            } finally {
                lock.unlock();
            }
        }
        Listener l = listener;
        if (l != null) {
            l.onSignal(this);
        }
    }

    /** Non-blocking read: the count so far (0 if none), reset to zero. */
    public long poll() {
        return count.getAndSet(0);
    }

    /** True if a read would return non-zero now; does not consume. */
    public boolean isSignalled() {
        return count.get() != 0;
    }

    /** Blocking read: waits until the count is non-zero, then returns it and resets it to zero. */
    public long await() throws InterruptedException {
        long c = count.getAndSet(0);
        if (c != 0) {
            return c;
        }
        lock.lock();
        try {
            waiters++;
            try {
                while ((c = count.getAndSet(0)) == 0) {
                    signalled.await();
                }
                return c;
            } finally {
                waiters--;
            }
        } finally {
            lock.unlock();
        }
    }

    /** Blocking read with a bound: the count, or 0 if nothing was signalled within the timeout. */
    public long await(long timeout, TimeUnit unit) throws InterruptedException {
        long c = count.getAndSet(0);
        if (c != 0) {
            return c;
        }
        long nanos = unit.toNanos(timeout);
        lock.lock();
        try {
            waiters++;
            try {
                while ((c = count.getAndSet(0)) == 0) {
                    if (nanos <= 0) {
                        return 0;
                    }
                    nanos = signalled.awaitNanos(nanos);
                }
                return c;
            } finally {
                waiters--;
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Installs (or with null removes) the listener and returns the previous one. As vhost_poll_start does,
     * the caller should check {@link #isSignalled()} afterwards: a signal that came before the listener
     * was installed did not call it.
     */
    public Listener setListener(Listener l) {
        Listener previous = listener;
        listener = l;
        return previous;
    }
}
