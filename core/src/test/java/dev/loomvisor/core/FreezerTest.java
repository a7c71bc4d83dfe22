package dev.loomvisor.core;

import static dev.loomvisor.core.KernelFixture.awaitTrue;
import static dev.loomvisor.core.KernelFixture.owner;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.VhostTask;
import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFactories;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Suspend's freezer: user workers freeze like any thread; kthreads (PF_NOFREEZE) are left alone. */
class FreezerTest {

    private final Kernel k = new Kernel();

    @Test
    void aUserWorkerFreezesRunsNothingWhileFrozenAndResumesOnThaw() throws Exception {
        Process p = owner(k);
        AtomicLong posted = new AtomicLong();
        AtomicLong seen = new AtomicLong();
        AtomicLong runsWhileFrozen = new AtomicLong();
        VhostTask w = VhostTask.create(p.mainTask(), () -> {
            if (Task.current().signals().isFrozen()) {
                runsWhileFrozen.incrementAndGet();
            }
            long v = posted.get();
            if (v == seen.get()) {
                return false;
            }
            seen.set(v);
            return true;
        }, () -> { }, null);
        w.start();
        Worker kthread = WorkerFactories.kthread().create(p.mainTask(), () -> false, () -> { }, null);
        kthread.start();

        k.freezer().freezeProcesses(Duration.ofSeconds(30));
        assertTrue(w.task().signals().isFrozen(), "the user worker is in the refrigerator");
        assertFalse(kthread.task().signals().isFrozen(), "a kthread is PF_NOFREEZE");
        posted.incrementAndGet();
        assertTrue(w.wake(), "a frozen worker still takes wakes; it runs them after the thaw");
        assertTrue(w.task().signals().isFrozen());
        assertEquals(0, seen.get());

        k.freezer().thawProcesses();
        awaitTrue("work after the thaw", () -> seen.get() == 1);
        assertFalse(w.task().signals().isFrozen());
        assertEquals(0, runsWhileFrozen.get());
        kthread.stop();
        w.stop();
        p.exit();
    }

    @Test
    void sigkillReachesAFrozenWorker() throws Exception {
        Process p = owner(k);
        CountDownLatch handled = new CountDownLatch(1);
        VhostTask w = VhostTask.create(p.mainTask(), () -> false, handled::countDown, null);
        w.start();
        k.freezer().freezeProcesses(Duration.ofSeconds(30));
        p.kill(Signal.SIGKILL);
        assertTrue(handled.await(10, TimeUnit.SECONDS));
        k.freezer().thawProcesses();
        p.exit();
    }

    @Test
    void aTaskThatNeverHandlesSignalsFailsTheFreezeWithEbusyAndEverythingIsThawed() throws Exception {
        Process p = owner(k);
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch done = new CountDownLatch(1);
        Task busy = k.copyProcess(p.mainTask(), new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS)
                .exitSignal(null).name("busy").fn(arg -> {
                    running.countDown();
                    try {
                        done.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return 0;
                }, null));
        busy.start();
        VhostTask w = VhostTask.create(p.mainTask(), () -> false, () -> { }, null);
        w.start();
        assertTrue(running.await(10, TimeUnit.SECONDS));
        var e = assertThrows(ErrnoException.class, () -> k.freezer().freezeProcesses(Duration.ofMillis(50)));
        assertEquals(Errno.EBUSY, e.errno());
        assertFalse(k.freezer().isFreezing());
        awaitTrue("worker thawed", () -> !w.task().signals().isFrozen());
        done.countDown();
        busy.awaitExit();
        w.stop();
        p.exit();
    }
}
