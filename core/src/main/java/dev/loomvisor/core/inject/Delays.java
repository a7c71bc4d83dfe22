package dev.loomvisor.core.inject;

/**
 * Delay injection for the lost-wake-up stress checks: named points in the worker loop and the work queue,
 * where the kernel once lost a wake-up or a flush (queue vs. the worker's check-empty-then-sleep, stop vs.
 * wake, flush vs. queue, SIGKILL vs. work), at which a test can make the calling thread wait a random while.
 *
 * <p>Production pays nothing: {@link #ENABLED} is a {@code static final} read once from
 * {@code -Dloomvisor.delays=true} (the test JVMs' argLine sets it), so without it the JIT folds every
 * {@link #at} call to nothing. With it but no hook installed a call is one volatile read.
 */
public final class Delays {

    /** System property that compiles the points in. */
    public static final String PROPERTY = "loomvisor.delays";

    /** Constant for the JIT: false outside test JVMs. */
    public static final boolean ENABLED = Boolean.getBoolean(PROPERTY);

    /** The points, each named after the window it widens. */
    public enum Point {
        /** WorkList.queue: QUEUED set, node not yet pushed (the consumer may take the list meanwhile). */
        QUEUE_AFTER_TEST_AND_SET,
        /** VhostWorker.queue: node pushed on an empty list, the wake-up not yet sent. */
        QUEUE_BEFORE_WAKE,
        /** WorkList.runAll: list taken, QUEUED of its works not yet cleared. */
        RUN_AFTER_TAKE,
        /** Worker loop: marked "about to sleep", STOP not yet tested. */
        LOOP_AFTER_MARK,
        /** Worker loop: STOP tested clear, fn not yet run. */
        LOOP_BEFORE_FN,
        /** Worker loop: fn found nothing, schedule() not yet entered. */
        LOOP_BEFORE_SCHEDULE,
        /** Worker wake: the stopped/killed flags read clear, wake_up_process not yet called. */
        WAKE_AFTER_FLAG_CHECK,
        /** Worker stop: STOP set, the worker not yet woken. */
        STOP_AFTER_FLAG,
        /** Flush: completion queued, its waiter not yet waiting (worker mutex still held). */
        FLUSH_AFTER_QUEUE,
        /** Worker slot: phase read, read-side section not yet entered (its counter not yet raised). */
        SLOT_BEFORE_ENTER,
        /** Worker slot: read-side section entered, worker pointer not yet read. */
        SLOT_AFTER_ENTER,
        /** Kill path: worker marked killed, rings not yet detached. */
        KILL_BEFORE_DETACH,
        /** release_task: the task marked dead (the once-guard), its charges not yet returned. */
        RELEASE_AFTER_MARK_DEAD,
        /** Notifier.signal: count raised, waiters and listener not yet told. */
        SIGNAL_AFTER_COUNT,
        /** HrtimerBase clock thread: its next look planned and the queue lock released, the plan not yet published. */
        CLOCK_AFTER_PLAN
    }

    /** What a test runs at each point (on the thread that reached it). Must not throw. */
    @FunctionalInterface
    public interface Hook {
        void at(Point point);
    }

    private static volatile Hook hook;

    private Delays() {
    }

    /** A delay point: a no-op unless the points are compiled in and a hook is installed. */
    public static void at(Point point) {
        if (ENABLED) {
            Hook h = hook;
            if (h != null) {
                h.at(point);
            }
        }
    }

    /**
     * Installs {@code h} (null removes it). Throws unless the JVM runs with {@code -Dloomvisor.delays=true}:
     * a stress check without its delays would pass for the wrong reason.
     */
    public static void install(Hook h) {
        if (!ENABLED) {
            throw new IllegalStateException("delay points are compiled out: run with -D" + PROPERTY + "=true");
        }
        hook = h;
    }
}
