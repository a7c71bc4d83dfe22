package dev.loomvisor.vhost.work;

import dev.loomvisor.core.Resched;
import dev.loomvisor.core.Task;

/**
 * cond_resched() for code on virtual threads, which are never preempted: a virtual thread that always has work
 * gives its carrier up once per time slice, and only if another virtual thread waits for one
 * ({@link Resched#needResched()}), as cond_resched() schedules only on TIF_NEED_RESCHED. It gives the carrier up
 * with a timed park ({@link Resched#preempt()}), which comes back behind the threads woken from outside the pool.
 *
 * <p>Two slices, as a task's timeslice and its fairness differ. The run slice is time on the carrier: it starts
 * again whenever the task slept in {@link Task#schedule()} (its voluntary switches moved); a thread that runs it
 * out gives the carrier up if any virtual thread waits. The wall slice starts again only after a sleep of a slice
 * or more: threads in a closed loop of wake-ups sleep every few microseconds and never run a whole run slice,
 * and while they wake one another their carrier's own queue never runs dry; a thread whose wall slice is out
 * therefore gives its carrier up if a thread woken from outside the pool waits ({@link Resched#externalWaiting()}),
 * which only a carrier with an empty queue would take. Threads that wait in the carriers' own queues get their
 * turn from those sleeps (the queues are FIFO), so they alone cost no preemption. A worker that sleeps between
 * sparse frames starts both slices afresh at every wake.
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

    /** Per thread, in {@link #SLICE}: the run slice's start, the wall slice's start, voluntary switches, last run's end. */
    private static final int RUN_START = 0;
    private static final int WALL_START = 1;
    private static final int SWITCHES = 2;
    private static final int RUN_END = 3;
    private static final ThreadLocal<long[]> SLICE = ThreadLocal.withInitial(() -> new long[] {0, 0, -1, 0});

    private Carriers() {}

    /**
     * Gives up the carrier if this virtual thread has run a whole slice since it last gave it up or slept and a
     * virtual thread waits for one, or if a slice of wall time has passed since it last gave the carrier up or
     * slept long and a thread woken from outside the pool waits.
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
        long lastRun = slice[RUN_END];
        slice[RUN_END] = now;
        if (switches != slice[SWITCHES]) {
            // Slept since the last run: a new run slice (counted from here, the end of its first round, which is
            // at most one round short); a new wall slice only after a sleep of a slice or more.
            slice[SWITCHES] = switches;
            slice[RUN_START] = now;
            if (now - lastRun >= SLICE_NANOS) {
                slice[WALL_START] = now;
            }
            return false;
        }
        boolean ranSlice = now - slice[RUN_START] >= SLICE_NANOS;
        boolean wallSlice = now - slice[WALL_START] >= SLICE_NANOS;
        if (!ranSlice && !wallSlice) {
            return false;
        }
        if (Resched.shouldPreempt(ranSlice, wallSlice)) {
            Resched.preempt();
            now = System.nanoTime();
            slice[RUN_START] = now;
            slice[WALL_START] = now;
            return true;
        }
        // Nobody it holds up: the slices start again (cond_resched() without TIF_NEED_RESCHED).
        if (ranSlice) {
            slice[RUN_START] = now;
        }
        if (wallSlice) {
            slice[WALL_START] = now;
        }
        return false;
    }
}
