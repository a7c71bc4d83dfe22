package dev.loomvisor.vhost.work;

import dev.loomvisor.core.Resched;
import dev.loomvisor.core.Task;

/**
 * cond_resched() for code on virtual threads, which are never preempted: a virtual thread that always has work
 * gives its carrier up once per time slice, and only if another virtual thread waits for one
 * ({@link Resched#needResched()}), as cond_resched() schedules only on TIF_NEED_RESCHED. How it gives the carrier
 * up ({@link Resched#preempt()}) depends on where the waiting threads are.
 *
 * <p>A slice starts again when the task slept in {@link Task#schedule()} (its voluntary switches moved) for a
 * slice or more, as a task that blocked for long comes back with a fresh timeslice: a worker that sleeps between
 * sparse frames would otherwise find its slice long over at every wake and give its carrier up once per frame. A
 * short sleep does not restart it: in a closed loop every thread sleeps every few microseconds, and threads that
 * never give their carrier up keep those woken from outside the pool waiting (below).
 *
 * <p>History: a plain {@link Thread#yield()} at every slice's end once let two busy workers on one carrier hand
 * it back and forth while vCPUs woken from outside the pool never ran (a compare run stalled for minutes), hence
 * the timed park of {@link Resched#preempt()}. When every sleep started a new slice, threads in a closed loop of
 * wake-ups never reached a slice's end, while the few that did park waited in the submission queues behind those
 * loops: the main job's virtual-thread models fell from 3 to 4 Mpps to 0.2 to 0.5 at 64 B, with a p99 of 0.2 to
 * 0.5 s. With yields instead of those parks the p99 came back, but some repeats moved no frame at all.
 */
public final class Carriers {

    /** The slice a busy virtual thread runs before it gives its carrier up. */
    static final long SLICE_NANOS = 100_000;

    /** Per thread: the slice's start, the task's voluntary switches at the last run, and that run's end. */
    private static final ThreadLocal<long[]> SLICE = ThreadLocal.withInitial(() -> new long[] {0, -1, 0});

    private Carriers() {}

    /** need_resched() for a virtual thread: {@link Resched#needResched()}. */
    public static boolean needResched() {
        return Resched.needResched();
    }

    /** True when {@link #needResched()} reads the scheduler's queues (false: it always answers true). */
    public static boolean seesScheduler() {
        return Resched.seesScheduler();
    }

    /**
     * Gives up the carrier if this virtual thread has run a whole slice since it last gave it up or slept, and
     * another virtual thread waits for one ({@link #needResched()}).
     * A pending unpark makes the park return at once; callers call this only after doing work, and re-check
     * for work afterwards, so a wake-up consumed here is never lost.
     *
     * @return true if it gave the carrier up (a preemption)
     */
    public static boolean resched() {
        return resched(System.nanoTime());
    }

    /** {@link #resched()} with the caller's reading of {@link System#nanoTime()} (a poll loop has one already). */
    public static boolean resched(long now) {
        long[] slice = SLICE.get();
        Task task = Task.current();
        long switches = task == null ? 0 : task.voluntarySwitches();
        long lastRun = slice[2];
        slice[2] = now;
        if (switches != slice[1]) {
            slice[1] = switches;
            if (now - lastRun >= SLICE_NANOS) {
                // Slept a slice or more since its last run: this run started a new slice (counted from here, the
                // end of its first round, which is at most one round short).
                slice[0] = now;
                return false;
            }
            // A short sleep starts no new slice: a thread in a closed loop of wake-ups sleeps every few
            // microseconds, and would otherwise never give its carrier up.
        }
        if (now - slice[0] >= SLICE_NANOS) {
            if (!needResched()) {
                // Nobody waits for a carrier: the slice starts again (cond_resched() without TIF_NEED_RESCHED).
                slice[0] = now;
                return false;
            }
            Resched.preempt();
            slice[0] = System.nanoTime();
            return true;
        }
        return false;
    }
}
