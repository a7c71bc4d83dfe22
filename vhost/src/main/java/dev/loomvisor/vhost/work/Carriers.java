package dev.loomvisor.vhost.work;

import java.util.concurrent.locks.LockSupport;

/**
 * cond_resched() for code on virtual threads, which are never preempted.
 *
 * <p>Once per time slice a busy virtual thread gives its carrier up. Mostly with {@link Thread#yield()}: when
 * the carrier's local queue is empty, the JDK resubmits a yielding virtual thread to the pool's external
 * queue, behind every thread woken from elsewhere (vCPUs, sessions), and when nothing else waits it is
 * running again at once, with no system call. A timed park did the same with a timer task, a futex wake of
 * the pool's delay scheduler and a park of the carrier every slice: profiled under testpmd, those wake-ups
 * were the largest cost of a busy-polling ring after the ring itself.
 *
 * <p>Yield alone is not enough: a yielding virtual thread goes back into its carrier's local queue when that
 * queue is not empty, so two busy workers on one carrier hand it back and forth while the external queue is
 * never looked at (a compare run was seen to stall for minutes that way). So every
 * {@link #PARK_EVERY_SLICES}th slice still takes the timed park, which unmounts the thread and has it
 * resubmitted from outside whatever the local queue holds: a thread woken from elsewhere waits at most that
 * many slices for a carrier.
 */
public final class Carriers {

    /** The slice a busy virtual thread runs before it gives its carrier up. */
    static final long SLICE_NANOS = 100_000;

    /** Every this many slices the carrier is given up with a timed park instead of a yield. */
    static final int PARK_EVERY_SLICES = 8;

    /** Per thread: the start of the current slice, and slices taken so far. */
    private static final ThreadLocal<long[]> SLICE = ThreadLocal.withInitial(() -> new long[2]);

    private Carriers() {}

    /**
     * Gives up the carrier if this virtual thread has run a whole slice since it last did. A pending
     * unpark makes the park return at once; callers call this only after doing work, and re-check for work
     * afterwards, so a wake-up consumed here is never lost.
     */
    public static void resched() {
        long[] slice = SLICE.get();
        long now = System.nanoTime();
        if (now - slice[0] >= SLICE_NANOS) {
            if (++slice[1] % PARK_EVERY_SLICES == 0) {
                LockSupport.parkNanos(1);
            } else {
                Thread.yield();
            }
            slice[0] = System.nanoTime();
        }
    }
}
