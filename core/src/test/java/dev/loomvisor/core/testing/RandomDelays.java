package dev.loomvisor.core.testing;

import dev.loomvisor.core.inject.Delays;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A {@link Delays.Hook} that, at a given share of the points it is called at, holds the thread a random
 * while: a short spin, a yield, or a park of up to {@code maxParkNanos}. Each thread draws from its own
 * generator, split from the check's seed in the order threads first reach a point, so the choices follow
 * the seed (the interleaving still depends on the machine). Counts what it injected per point.
 */
public final class RandomDelays implements Delays.Hook {

    private final SplittableRandom root;
    private final int percent;
    private final long maxParkNanos;
    private final ThreadLocal<SplittableRandom> perThread;
    private final AtomicLongArray injected = new AtomicLongArray(Delays.Point.values().length);
    private final AtomicInteger threads = new AtomicInteger();
    private final ReentrantLock splitLock = new ReentrantLock();

    /**
     * @param percent share of calls that are delayed, 0..100
     * @param maxParkNanos the longest park
     */
    public RandomDelays(long seed, int percent, long maxParkNanos) {
        if (percent < 0 || percent > 100 || maxParkNanos < 1) {
            throw new IllegalArgumentException(percent + "% up to " + maxParkNanos + " ns");
        }
        this.root = new SplittableRandom(seed);
        this.percent = percent;
        this.maxParkNanos = maxParkNanos;
        this.perThread = ThreadLocal.withInitial(this::split);
    }

    private SplittableRandom split() {
        splitLock.lock();
        try {
            threads.incrementAndGet();
            return root.split(); // SplittableRandom is not thread-safe
        } finally {
            splitLock.unlock();
        }
    }

    @Override
    public void at(Delays.Point point) {
        SplittableRandom r = perThread.get();
        if (r.nextInt(100) >= percent) {
            return;
        }
        injected.incrementAndGet(point.ordinal());
        switch (r.nextInt(3)) {
            case 0 -> {
                for (int i = r.nextInt(200); i > 0; i--) {
                    Thread.onSpinWait();
                }
            }
            case 1 -> Thread.yield();
            default -> LockSupport.parkNanos(1 + r.nextLong(maxParkNanos));
        }
    }

    /** Delays injected at {@code point} so far. */
    public long injected(Delays.Point point) {
        return injected.get(point.ordinal());
    }

    /** Delays injected in all, e.g. for a report line. */
    public long injectedTotal() {
        long n = 0;
        for (int i = 0; i < injected.length(); i++) {
            n += injected.get(i);
        }
        return n;
    }

    /** "POINT=count ..." of the points that were hit. */
    public String summary() {
        StringBuilder sb = new StringBuilder();
        for (Delays.Point p : Delays.Point.values()) {
            long n = injected(p);
            if (n > 0) {
                sb.append(sb.isEmpty() ? "" : " ").append(p.name().toLowerCase(java.util.Locale.ROOT)).append('=').append(n);
            }
        }
        return sb.toString();
    }
}
