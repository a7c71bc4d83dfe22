package dev.loomvisor.core.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.KernelFixture;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Signal;
import dev.loomvisor.core.worker.VhostTask;
import dev.loomvisor.core.inject.Delays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Faults the churn checks found in core, one test each, named after the fault. */
class ReleaseRegressionTest {

    @AfterEach
    void removeDelays() {
        Delays.install(null);
    }

    /**
     * Task.isDead() read the life-cycle word, which release_task turns DEAD before it returns the task's
     * charges: a caller that waited for a dead worker and then read the task list or the ucount could see
     * it still there (ProcessExitTest's SIGKILL case failed that way under load). The release is held
     * between the two steps here.
     */
    @Test
    void taskReportedDeadBeforeItsChargesWereReturned() throws Exception {
        Kernel k = new Kernel();
        Process p = KernelFixture.owner(k);
        CountDownLatch releasing = new CountDownLatch(1);
        CountDownLatch proceed = new CountDownLatch(1);
        VhostTask w = VhostTask.create(p.mainTask(), KernelFixture.IDLE, KernelFixture.NO_SIGKILL, null);
        Delays.install(point -> {
            if (point == Delays.Point.RELEASE_AFTER_MARK_DEAD && Thread.currentThread() == w.task().thread()) {
                releasing.countDown();
                try {
                    proceed.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        w.start();
        p.kill(Signal.SIGKILL);
        assertTrue(releasing.await(10, TimeUnit.SECONDS), "the worker is being released");
        assertFalse(w.task().isDead(), "not dead while its charges are still held");
        assertEquals(2, k.ucounts().count(KernelFixture.UID), "owner and worker still counted");
        proceed.countDown();
        KernelFixture.awaitTrue("released", () -> w.task().isDead());
        assertEquals(List.of(p.pid()), p.taskIds(), "dead means gone from the thread group");
        assertEquals(1, k.ucounts().count(KernelFixture.UID), "and its ucount returned");
        w.stop();
        p.exit();
        assertTrue(p.isDead());
        assertEquals(0, k.ucounts().count(KernelFixture.UID));
    }
}
