package dev.loomvisor.core;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Per-user task counts (kernel/ucount.c, UCOUNT_RLIMIT_NPROC): every task adds one to its real user's count
 * when it is born and takes it back when it is released (reference section 1, step 5).
 *
 * <p>The charge is an atomic increment followed by the limit test on the value it produced, as
 * inc_rlimit_ucounts + is_rlimit_overlimit do: each racer sees its own post-increment value, so racers can
 * never together exceed the limit (a failed racer briefly inflates the count and takes its charge back).
 */
public final class UCounts {

    private final ConcurrentHashMap<Integer, AtomicLong> counts = new ConcurrentHashMap<>();

    private AtomicLong counter(int uid) {
        return counts.computeIfAbsent(uid, u -> new AtomicLong());
    }

    /** Adds one to the user's count and returns the new value (inc_rlimit_ucounts). */
    long increment(int uid) {
        return counter(uid).incrementAndGet();
    }

    /** Takes one from the user's count (dec_rlimit_ucounts). */
    void decrement(int uid) {
        long v = counter(uid).decrementAndGet();
        if (v < 0) {
            throw new IllegalStateException("ucounts of uid " + uid + " went negative");
        }
    }

    /** The number of tasks the user owns now. */
    public long count(int uid) {
        AtomicLong c = counts.get(uid);
        return c == null ? 0 : c.get();
    }
}
