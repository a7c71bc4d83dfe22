package dev.loomvisor.core;

import dev.loomvisor.core.worker.VhostTask;
import static dev.loomvisor.core.KernelFixture.IDLE;
import static dev.loomvisor.core.KernelFixture.NO_SIGKILL;
import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.awaitTrue;
import static dev.loomvisor.core.KernelFixture.owner;
import static dev.loomvisor.core.KernelFixture.plainThread;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Issue acceptance "Signals and exit": SIGKILL reaches user workers; exit stops and reaps every task. */
class ProcessExitTest {

    private final Kernel k = new Kernel();

    @Test
    void ownerExitWithAHundredLiveWorkersLeavesNoThreadAndNoCharge() throws Exception {
        Cgroup vm = k.rootCgroup().mkdir("vm");
        vm.setPidsMax(200);
        Process p = owner(k, 200, vm);
        AtomicInteger handled = new AtomicInteger();
        List<VhostTask> workers = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            Carrier c = i % 2 == 0 ? Carrier.VIRTUAL : Carrier.PLATFORM;
            VhostTask w = VhostTask.create(p.mainTask(), IDLE, handled::incrementAndGet, null, c);
            w.start();
            workers.add(w);
        }
        awaitTrue("all workers running", () -> k.liveThreads(Carrier.VIRTUAL) == 50
                && k.liveThreads(Carrier.PLATFORM) == 50);
        assertEquals(101, p.tasks().size());
        assertEquals(101, k.ucounts().count(UID));
        assertEquals(101, vm.pidsCurrent());

        p.exit();

        assertEquals(100, handled.get(), "each worker took the SIGKILL path");
        for (VhostTask w : workers) {
            assertTrue(w.isKilled());
            assertTrue(w.task().isDead());
            assertFalse(w.task().thread().isAlive(), w.task() + " left its Java thread behind");
            assertFalse(w.wake());
        }
        assertEquals(0, k.liveThreads(Carrier.VIRTUAL));
        assertEquals(0, k.liveThreads(Carrier.PLATFORM));
        assertEquals(0, k.ucounts().count(UID));
        assertEquals(0, vm.pidsCurrent());
        assertEquals(2, k.nrThreads());
        assertTrue(p.isDead());
        assertNull(k.process(p.pid()));
        assertEquals(List.of(1, 2), k.processes().stream().map(Process::pid).toList());
        assertEquals(0, p.mm().users());
        workers.forEach(VhostTask::stop); // the device's late release only waits
    }

    @Test
    void exitReapsTasksThatNeverStartedAndClosesTheFiles() throws Exception {
        Process p = owner(k);
        VhostTask unstarted = VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null);
        Task plain = plainThread(p);
        AtomicBoolean closed = new AtomicBoolean();
        int fd = p.files().install(() -> closed.set(true));
        assertEquals(0, fd);
        p.exit();
        assertTrue(unstarted.task().isDead());
        assertTrue(plain.isDead());
        assertTrue(closed.get(), "the last user of the file table closed the file");
        assertFalse(unstarted.task().start(), "a reaped task never runs");
        assertEquals(0, k.ucounts().count(UID));
        unstarted.stop();
    }

    @Test
    void sigkillReachesUserWorkersButTheProcessStaysUntilExit() throws Exception {
        Process p = owner(k);
        AtomicInteger handled = new AtomicInteger();
        List<VhostTask> workers = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            VhostTask w = VhostTask.create(p.mainTask(), IDLE, handled::incrementAndGet, null);
            w.start();
            workers.add(w);
        }
        p.kill(Signal.SIGKILL);
        awaitTrue("workers released", () -> workers.stream().allMatch(w -> w.task().isDead()));
        assertEquals(10, handled.get());
        assertEquals(List.of(p.pid()), p.taskIds());
        assertEquals(1, k.ucounts().count(UID));
        assertEquals(Errno.ERESTARTNOINTR, org.junit.jupiter.api.Assertions.assertThrows(ErrnoException.class,
                () -> VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null)).errno(),
                "a killed owner makes no more workers");
        p.exit();
        assertEquals(0, k.ucounts().count(UID));
    }

    @Test
    void aStartRacingTheOwnersExitLeavesNoThreadBehind() throws Exception {
        for (int rep = 0; rep < 2_000; rep++) {
            Process p = owner(k);
            AtomicInteger handled = new AtomicInteger();
            VhostTask w = VhostTask.create(p.mainTask(), IDLE, handled::incrementAndGet, null);
            java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
            Thread starter = Thread.ofVirtual().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                w.start();
            });
            go.countDown();
            p.exit();
            KernelFixture.join(starter);
            // Either the exit reaped it unstarted, or it ran, met the SIGKILL and was waited for.
            assertTrue(w.task().isDead(), "rep " + rep);
            assertFalse(w.task().thread().isAlive(), "rep " + rep + ": thread left behind");
            assertTrue(handled.get() <= 1);
        }
        assertEquals(0, k.liveThreads(Carrier.VIRTUAL));
        assertEquals(0, k.ucounts().count(UID));
        assertEquals(2, k.nrThreads());
    }

    @Test
    void exitIsIdempotentAndAThreadCloneIntoAnExitingGroupFails() throws Exception {
        Process p = owner(k);
        Task t = plainThread(p);
        p.exit();
        p.exit();
        assertTrue(t.isDead());
        assertEquals(0, k.ucounts().count(UID));
    }
}
