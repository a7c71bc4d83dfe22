package dev.loomvisor.vhost.work;

import java.util.concurrent.locks.LockSupport;

/**
 * cond_resched() for code on virtual threads, which are never preempted.
 *
 * <p>{@link Thread#yield()} is not enough: a yielding virtual thread goes back into its carrier's local
 * queue when that queue is not empty, so two busy workers on one carrier hand it back and forth forever
 * while threads woken from elsewhere (vCPUs, waiting in the pool's external queue) never run; a compare
 * run was seen to stall for minutes that way. A timed park unmounts the thread and has it resubmitted
 * from outside, behind everything already waiting. It is taken at most once per time slice, as a host
 * scheduler would preempt a busy thread at most once per slice.
 *
 * <p>A yield on most slices (a park only every 8th) was tried for busy-polling rings, where the timed park's
 * timer wake-ups cost a visible share of a polling worker's time; it was taken back: a yielding virtual
 * thread can go back into its carrier's local queue ahead of threads woken from outside, and fairness to
 * those comes first.
 */
public final class Carriers {

    /** The slice a busy virtual thread runs before it gives its carrier up. */
    static final long SLICE_NANOS = 100_000;

    private static final ThreadLocal<long[]> SLICE_START = ThreadLocal.withInitial(() -> new long[1]);

    private Carriers() {}

    /**
     * Gives up the carrier if this virtual thread has run a whole slice since it last did. A pending
     * unpark makes the park return at once; callers call this only after doing work, and re-check for work
     * afterwards, so a wake-up consumed here is never lost.
     */
    public static void resched() {
        long[] start = SLICE_START.get();
        long now = System.nanoTime();
        if (now - start[0] >= SLICE_NANOS) {
            LockSupport.parkNanos(1);
            start[0] = System.nanoTime();
        }
    }
}
