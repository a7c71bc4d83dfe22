package dev.loomvisor.core;

import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.awaitTrue;
import static dev.loomvisor.core.KernelFixture.join;
import static dev.loomvisor.core.KernelFixture.owner;
import static dev.loomvisor.core.KernelFixture.plainThread;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.VhostTask;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The exit, exec and coredump paths of a thread group and how each treats PF_USER_WORKER: every path kills the
 * user workers; exit_group waits for them; de_thread and the coredump do not.
 */
class GroupExitTest {

    private final Kernel k = new Kernel();

    /** A vCPU-like thread: runs until its group is killed (get_signal then takes it down). */
    private static Task vcpu(Process p, String name) throws ErrnoException {
        CountDownLatch running = new CountDownLatch(1);
        Task t = p.kernel().copyProcess(p.mainTask(), new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS)
                .exitSignal(null).name(name).fn(arg -> {
                    Task me = Task.current();
                    running.countDown();
                    for (;;) {
                        me.setCurrentStateInterruptible();
                        if (me.signalPending()) {
                            me.setRunning();
                            me.signals().getSignal();
                            continue;
                        }
                        me.schedule();
                    }
                }, null));
        t.start();
        try {
            assertTrue(running.await(10, TimeUnit.SECONDS));
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        return t;
    }

    /** A user worker whose SIGKILL path blocks until {@code release} opens (a worker flushing its rings). */
    private static VhostTask slowWorker(Process p, CountDownLatch inHandler, CountDownLatch release,
            AtomicBoolean released) throws ErrnoException {
        VhostTask w = VhostTask.create(p.mainTask(), () -> false, () -> {
            inHandler.countDown();
            try {
                released.set(release.await(30, TimeUnit.SECONDS));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, null);
        w.start();
        return w;
    }

    @Test
    void exitGroupKillsUserWorkersAndWaitsForThem() throws Exception {
        Process p = owner(k);
        Task cpu = vcpu(p, "vcpu0");
        CountDownLatch inHandler = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        VhostTask w = slowWorker(p, inHandler, release, new AtomicBoolean());
        AtomicBoolean workerDeadWhenExitReturned = new AtomicBoolean();
        CountDownLatch exited = new CountDownLatch(1);
        Thread exiter = Thread.ofVirtual().start(() -> {
            p.exit();
            workerDeadWhenExitReturned.set(w.task().isDead());
            exited.countDown();
        });
        assertTrue(inHandler.await(10, TimeUnit.SECONDS), "the worker took its SIGKILL path");
        assertEquals(1, exited.getCount(), "exit_group returned while a user worker was still running");
        release.countDown();
        join(exiter);
        assertTrue(workerDeadWhenExitReturned.get());
        assertTrue(cpu.isDead());
        assertTrue(w.isKilled());
        assertTrue(p.isDead());
        assertEquals(0, k.ucounts().count(UID));
    }

    @Test
    void execKillsEveryOtherThreadButWaitsOnlyForTheNonWorkers() throws Exception {
        Process p = owner(k);
        Task cpu = vcpu(p, "vcpu0");
        Task idle = plainThread(p);
        CountDownLatch inHandler = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean released = new AtomicBoolean();
        VhostTask w = slowWorker(p, inHandler, release, released);
        VhostTask unstarted = VhostTask.create(p.mainTask(), () -> false, () -> { }, "vhost-unstarted");

        p.execve("qemu-after-exec");

        assertTrue(cpu.isDead(), "de_thread waited for the vCPU");
        assertEquals(Signal.SIGKILL.number(), cpu.exitCode());
        assertTrue(idle.isDead());
        assertTrue(unstarted.task().isDead(), "a worker that never ran is released, not left behind");
        assertFalse(w.task().isDead(), "de_thread does not wait for the vhost_worker");
        assertEquals("qemu-after-exec", p.comm());
        assertFalse(p.mainTask().fatalSignalPending(), "the exec'ing task survives");
        release.countDown();
        assertTrue(inHandler.await(10, TimeUnit.SECONDS));
        awaitTrue("worker left by its own path", () -> w.task().isDead());
        assertTrue(released.get());
        assertTrue(w.isKilled());
        assertEquals(List.of(p.pid()), p.taskIds());
        assertFalse(p.isDead(), "the process lives on with the new image");
        assertEquals(1, k.ucounts().count(UID));
        p.exit();
        assertEquals(0, k.ucounts().count(UID));
    }

    @Test
    void aCoredumpKillsUserWorkersWithoutWaitingForThemAndLeavesThemOutOfTheCore() throws Exception {
        Process p = owner(k);
        Task cpu0 = vcpu(p, "vcpu0");
        Task cpu1 = vcpu(p, "vcpu1");
        CountDownLatch dumped = new CountDownLatch(1);
        AtomicBoolean workerSawTheDump = new AtomicBoolean();
        AtomicBoolean cpusGoneAtDump = new AtomicBoolean();
        // The worker's SIGKILL path waits for the dump: were the dump waiting for the worker, this would only
        // end after the bound, without having seen it.
        VhostTask w = VhostTask.create(p.mainTask(), () -> false, () -> {
            try {
                workerSawTheDump.set(dumped.await(10, TimeUnit.SECONDS));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, null);
        w.start();
        AtomicReference<CoreDump> piped = new AtomicReference<>();
        CoreDump dump = p.coredump(Signal.SIGSEGV, d -> {
            cpusGoneAtDump.set(cpu0.isDead() && cpu1.isDead());
            piped.set(d);
            dumped.countDown();
        });
        assertTrue(workerSawTheDump.get(), "the dump was written while the user worker was still leaving");
        assertTrue(cpusGoneAtDump.get(), "the dump waited for every other thread");
        assertEquals(List.of(p.pid(), cpu0.tid(), cpu1.tid()), dump.threads(), "no user worker in the core");
        assertEquals(Signal.SIGSEGV, dump.signal());
        assertEquals(dump, piped.get());
        assertTrue(w.isKilled());
        assertTrue(w.task().isDead(), "the group's exit after the dump waited for the worker");
        assertTrue(p.isDead());
        assertEquals(0, k.ucounts().count(UID));
        assertEquals(Errno.EAGAIN, assertThrows(ErrnoException.class, () -> p.coredump(Signal.SIGSEGV, d -> { }))
                .errno(), "a group already exiting dumps no core");
    }
}
