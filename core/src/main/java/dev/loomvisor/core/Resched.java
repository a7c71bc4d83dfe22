package dev.loomvisor.core;

import java.lang.reflect.Field;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.locks.LockSupport;

/**
 * need_resched() and a preemption for code on virtual threads, which the JDK's scheduler never preempts.
 *
 * <p>Where a runnable virtual thread waits matters. A thread woken by a virtual thread waits in its carrier's own
 * queue; one woken from outside the pool (a timer's expiry, a platform thread's unpark) waits in the pool's
 * submission queues. A carrier runs its own queue until it is empty before it looks at any other: a closed loop
 * of virtual threads waking one another never empties it, and whatever waits in the submission queues waits for
 * as long as the loop lasts, unless a thread of the loop leaves it ({@link #preempt()}) once per time slice.
 */
public final class Resched {

    /**
     * The JDK's virtual-thread scheduler, read once: the JDK has no public need_resched(). Null without
     * {@code --add-opens java.base/java.lang=ALL-UNNAMED} (scripts/jvm.options gives it): then a thread always
     * needs rescheduling, and gives its carrier up with a timed park, as it did before it could ask.
     */
    private static final ForkJoinPool SCHEDULER = scheduler();

    private Resched() {}

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
     * need_resched() for a virtual thread: true if a virtual thread waits for a carrier, in any carrier's queue
     * (an idle carrier would have taken it, so every busy one is holding it up) or in the submission queues, or
     * if this JVM does not let us see the queues. A reading of a few queue indices, no lock and no allocation:
     * about as much as a clock read here.
     */
    public static boolean needResched() {
        ForkJoinPool p = SCHEDULER;
        return p == null || p.getQueuedSubmissionCount() != 0 || p.getQueuedTaskCount() != 0;
    }

    /**
     * True if a virtual thread woken from outside the pool (a timer's expiry, a platform thread's unpark) waits in
     * the scheduler's submission queues, or if this JVM does not let us see them. Those are the threads a closed
     * loop of wake-ups keeps waiting: a carrier looks at the submission queues only once its own queue is empty.
     */
    public static boolean externalWaiting() {
        ForkJoinPool p = SCHEDULER;
        return p == null || p.getQueuedSubmissionCount() != 0;
    }

    /** True when the scheduler's queues are read (false: {@link #needResched()} always answers true). */
    public static boolean seesScheduler() {
        return SCHEDULER != null;
    }

    /**
     * Whether a thread whose slices are out gives its carrier up, the one rule of {@code Carriers.resched} and the
     * vCPU loop. {@code ranSlice}: it ran a whole slice without sleeping, and holds up any virtual thread that
     * waits ({@link #needResched()}). {@code wallSlice}: a slice of wall time passed in short turns of running and
     * sleeping; its carrier's own queue stays busy meanwhile, so it holds up only threads woken from outside the
     * pool ({@link #externalWaiting()}); those in the carriers' own queues get their turn from its sleeps.
     */
    public static boolean shouldPreempt(boolean ranSlice, boolean wallSlice) {
        return (ranSlice && needResched()) || (wallSlice && externalWaiting());
    }

    /**
     * Gives the carrier up, as a preempted task goes to the back of its run queue: a timed park, so that the thread
     * comes back through the submission queues, behind the threads woken from outside the pool, and its leaving
     * breaks whatever loop of wake-ups kept its carrier's own queue from running dry. A {@link Thread#yield()}
     * would go back into that queue, ahead of them: two busy threads on one carrier once handed it back and
     * forth that way while vCPUs woken from outside never ran (a compare run stalled for minutes). Callers give the
     * carrier up at most once per time slice, and only when {@link #shouldPreempt}.
     */
    public static void preempt() {
        LockSupport.parkNanos(1);
    }
}
