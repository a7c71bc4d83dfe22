package dev.loomvisor.vhost.work;

import dev.loomvisor.core.Task;
import java.lang.reflect.Field;
import java.util.concurrent.ForkJoinPool;
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
 * <p>A slice is time on the carrier: it starts again whenever the task slept in {@link Task#schedule()} (its
 * voluntary switches moved), as a task's timeslice does after it blocks. Otherwise a worker that sleeps between
 * sparse frames would find its slice long over at every wake and pay a timed park (a timer task, a wake of
 * the pool's delay scheduler and a resubmission) per frame.
 *
 * <p>As cond_resched() does, a slice's end gives the carrier up only if {@link #needResched()}: a virtual thread
 * waits for one. A worker alone on its carriers (a busy poll fed from another process, a flood with nothing
 * else runnable) would otherwise pay a timed park per slice for nothing: a timer task, a wake of the pool's
 * delay scheduler and a resubmission, about 110 heap bytes each in JDK 25.
 *
 * <p>A yield on most slices (a park only every 8th) was tried for busy-polling rings, where the timed park's
 * timer wake-ups cost a visible share of a polling worker's time; it was taken back: a yielding virtual
 * thread can go back into its carrier's local queue ahead of threads woken from outside, and fairness to
 * those comes first.
 */
public final class Carriers {

    /** The slice a busy virtual thread runs before it gives its carrier up. */
    static final long SLICE_NANOS = 100_000;

    /** Per thread: the slice's start and the task's voluntary switches when it started. */
    private static final ThreadLocal<long[]> SLICE = ThreadLocal.withInitial(() -> new long[] {0, -1});

    /**
     * The JDK's virtual-thread scheduler, read once: the JDK has no public need_resched(), and this pool's queues
     * are where a runnable virtual thread waits for a carrier (a carrier's own queue when a virtual thread woke
     * it, the submission queues when a platform thread or a timer did). Null without
     * {@code --add-opens java.base/java.lang=ALL-UNNAMED} (scripts/jvm.options gives it): then every question is
     * answered "yes", which is what a virtual thread did before it could ask.
     */
    private static final ForkJoinPool SCHEDULER = scheduler();

    private Carriers() {}

    private static ForkJoinPool scheduler() {
        try {
            Field f = Class.forName("java.lang.VirtualThread").getDeclaredField("DEFAULT_SCHEDULER");
            f.setAccessible(true);
            return f.get(null) instanceof ForkJoinPool p ? p : null;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null; // not opened to this module, or a JDK without the field: answer as if someone waits
        }
    }

    /**
     * need_resched() for virtual threads: true if a virtual thread waits in the scheduler's queues for a carrier
     * (any carrier's: an idle carrier would have taken it, so every busy one is holding it up), or if this JVM
     * does not let us see the queues. A reading of a few queue indices, no lock and no allocation: about as much
     * as a clock read here.
     */
    public static boolean needResched() {
        ForkJoinPool p = SCHEDULER;
        return p == null || p.getQueuedSubmissionCount() != 0 || p.getQueuedTaskCount() != 0;
    }

    /** True when {@link #needResched()} reads the scheduler's queues (false: it always answers true). */
    public static boolean seesScheduler() {
        return SCHEDULER != null;
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
        if (switches != slice[1]) {
            // Slept since the slice began: this run started a new one (counted from here, the end of its first
            // round, which is at most one round short).
            slice[0] = now;
            slice[1] = switches;
            return false;
        }
        if (now - slice[0] >= SLICE_NANOS) {
            if (!needResched()) {
                // Nobody waits for a carrier: the slice starts again (cond_resched() without TIF_NEED_RESCHED).
                slice[0] = now;
                return false;
            }
            LockSupport.parkNanos(1);
            slice[0] = System.nanoTime();
            return true;
        }
        return false;
    }
}
