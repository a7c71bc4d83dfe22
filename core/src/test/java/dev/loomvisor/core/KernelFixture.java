package dev.loomvisor.core;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.WorkerFn;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Reusable set-up for the core tests: owners, their plain threads, bounded waits. */
public final class KernelFixture {

    public static final int UID = 1000;
    public static final WorkerFn IDLE = () -> false;
    public static final Runnable NO_SIGKILL = () -> { };

    private KernelFixture() {
    }

    /** A VMM process of uid 1000 with the given RLIMIT_NPROC in {@code cgroup}. */
    public static Process owner(Kernel k, long nproc, Cgroup cgroup) throws ErrnoException {
        return k.spawn("qemu-system-x86_64", Credentials.user(UID, UID), Rlimits.nproc(nproc), cgroup);
    }

    public static Process owner(Kernel k) throws ErrnoException {
        return owner(k, Rlimits.INFINITY, k.rootCgroup());
    }

    /** A pthread-like thread of the owner, without a body (it just holds its charges until exit). */
    public static Task plainThread(Process p) throws ErrnoException {
        return p.kernel().copyProcess(p.mainTask(),
                new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS).exitSignal(null).name("worker"));
    }

    /** Waits until {@code condition} holds, failing after {@code timeout}; no fixed sleeps. */
    public static void awaitTrue(String what, Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    public static void awaitTrue(String what, BooleanSupplier condition) {
        awaitTrue(what, Duration.ofSeconds(10), condition);
    }

    /**
     * Joins a thread with a bound that only catches a hang: NprocRaceTest's creators, which take 2.5 s on a
     * quiet machine, took 17-26 s with two CPU hogs beside them (32,000 platform threads made and stopped).
     */
    public static void join(Thread t) throws InterruptedException {
        assertTrue(t.join(Duration.ofSeconds(120)), t + " did not end");
    }

    public static long seconds(long s) {
        return TimeUnit.SECONDS.toNanos(s);
    }
}
