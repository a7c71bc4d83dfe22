package dev.loomvisor.core.worker;

import static dev.loomvisor.core.KernelFixture.NO_SIGKILL;
import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.awaitTrue;
import static dev.loomvisor.core.KernelFixture.owner;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.Cgroup;
import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Mm;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Task;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Issue acceptance: the four accounting x carrier combinations and the pool, and what their tasks report. */
class WorkerFactoryTest {

    private final Kernel k = new Kernel();

    /** What a worker's fn saw on its own thread. */
    private record Seen(Task current, Mm mm, boolean virtual) {
    }

    @ParameterizedTest
    @EnumSource(value = WorkerModel.class, names = {"USER_WORKER", "USER_WORKER_PLATFORM", "KTHREAD", "KTHREAD_VIRTUAL"})
    void eachCombinationGivesTheRightTask(WorkerModel model) throws Exception {
        Cgroup vm = k.rootCgroup().mkdir("vm");
        Process p = owner(k, 50, vm);
        WorkerFactory f = model.factory(k);
        assertEquals(model.modelName(), f.modelName());
        AtomicReference<Seen> seen = new AtomicReference<>();
        CountDownLatch ran = new CountDownLatch(1);
        Worker w = f.create(p.mainTask(), () -> {
            if (seen.get() == null) {
                seen.set(new Seen(Task.current(), Task.current().mm(), Thread.currentThread().isVirtual()));
                ran.countDown();
            }
            return false;
        }, NO_SIGKILL, null);
        Task t = w.task();
        assertEquals("vhost-" + p.mainTask().tid(), t.comm());
        w.start();
        assertTrue(ran.await(10, TimeUnit.SECONDS));
        assertSame(t, seen.get().current());
        assertEquals(model.carrier() == Carrier.VIRTUAL, seen.get().virtual());
        assertSame(p.mm(), seen.get().mm(), "the worker works in the owner's address space");
        if (model.accounting() == Accounting.USER_WORKER) {
            assertEquals(Task.PF_USER_WORKER, t.flags());
            assertSame(p, t.process(), "a thread of the owner");
            assertTrue(p.taskIds().contains(t.tid()));
            assertSame(p.cred(), t.cred());
            assertSame(vm, t.cgroup());
            assertSame(p.mainTask().fs(), t.fs());
            assertNull(t.files());
            assertEquals(2, k.ucounts().count(UID));
            assertEquals(2, vm.pidsCurrent());
        } else {
            assertEquals(Task.PF_KTHREAD | Task.PF_NOFREEZE, t.flags(), "kthreadd's children are not freezable");
            assertSame(k.kthreadd().process(), t.process().parent());
            assertTrue(t.cred().isRoot());
            assertSame(k.rootCgroup(), t.cgroup());
            assertEquals(1, k.ucounts().count(UID));
            assertEquals(1, vm.pidsCurrent());
        }
        w.stop();
        assertFalse(w.wake());
        assertTrue(t.isDead());
        assertEquals(1, k.ucounts().count(UID));
        f.close();
    }

    @Test
    void modelsHaveTheirCliNames() {
        assertEquals(List.of("user-worker", "user-worker-platform", "kthread", "kthread-virtual", "kthread-pool"),
                WorkerModel.names());
        assertSame(WorkerModel.KTHREAD_VIRTUAL, WorkerModel.byName("kthread-virtual"));
        assertSame(WorkerModel.USER_WORKER, WorkerModel.DEFAULT);
        assertThrows(IllegalArgumentException.class, () -> WorkerModel.byName("nope"));
        assertEquals("user-worker", WorkerFactories.userWorker().modelName());
        assertEquals("kthread", WorkerFactories.kthread().modelName());
    }

    @Test
    void aPoolOfTwoKthreadsServesManyDevicesWithoutRunningAWorkerTwiceAtOnce() throws Exception {
        Process p = owner(k, 5, k.rootCgroup());
        int devices = 40;
        int kicks = 2_000;
        try (KthreadPool pool = WorkerFactories.kthreadPool(k, 2)) {
            assertEquals(2, pool.tasks().size());
            for (Task t : pool.tasks()) {
                assertTrue(t.hasFlag(Task.PF_KTHREAD));
                assertFalse(t.thread().isVirtual());
            }
            AtomicLong[] posted = new AtomicLong[devices];
            long[] done = new long[devices];
            AtomicInteger[] inFn = new AtomicInteger[devices];
            AtomicInteger overlap = new AtomicInteger();
            CountDownLatch finished = new CountDownLatch(devices);
            List<Worker> workers = new ArrayList<>();
            for (int d = 0; d < devices; d++) {
                int dev = d;
                posted[d] = new AtomicLong();
                inFn[d] = new AtomicInteger();
                Worker w = pool.create(p.mainTask(), () -> {
                    if (inFn[dev].incrementAndGet() != 1) {
                        overlap.incrementAndGet();
                    }
                    try {
                        if (posted[dev].get() == done[dev]) {
                            return false;
                        }
                        if (++done[dev] == kicks) {
                            finished.countDown();
                        }
                        return true;
                    } finally {
                        inFn[dev].decrementAndGet();
                    }
                }, NO_SIGKILL, null);
                assertTrue(pool.tasks().contains(w.task()));
                w.start();
                workers.add(w);
            }
            assertEquals(1, k.ucounts().count(UID), "pool workers are no tasks of the owner");
            List<Thread> producers = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int first = t;
                producers.add(Thread.ofVirtual().start(() -> {
                    for (int i = 0; i < kicks; i++) {
                        for (int d = first; d < devices; d += 4) {
                            posted[d].incrementAndGet();
                            workers.get(d).wake();
                        }
                    }
                }));
            }
            for (Thread t : producers) {
                assertTrue(t.join(java.time.Duration.ofSeconds(20)));
            }
            assertTrue(finished.await(20, TimeUnit.SECONDS), "pool lost a wake");
            assertEquals(0, overlap.get(), "a worker's fn ran on two pool threads at once");
            for (Worker w : workers) {
                w.stop();
                assertFalse(w.wake());
                assertFalse(w.isKilled());
            }
        }
        awaitTrue("pool threads gone", () -> k.liveThreads(Carrier.PLATFORM) == 0);
    }

    @Test
    void aPoolStopWaitsForTheRunningFnAndAClosedPoolTakesNothing() throws Exception {
        Process p = owner(k);
        KthreadPool pool = new KthreadPool(k, 1, 2);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger runs = new AtomicInteger();
        Worker w = pool.create(p.mainTask(), () -> {
            runs.incrementAndGet();
            inside.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return false;
        }, NO_SIGKILL, null);
        w.start();
        assertTrue(inside.await(10, TimeUnit.SECONDS));
        Thread stopper = Thread.ofVirtual().start(w::stop);
        assertFalse(stopper.join(java.time.Duration.ofMillis(50)), "stop returned while fn was running");
        release.countDown();
        assertTrue(stopper.join(java.time.Duration.ofSeconds(10)));
        assertEquals(1, runs.get());
        // Capacity: 2 workers per thread; the stopped one gave its slot back.
        pool.create(p.mainTask(), () -> false, NO_SIGKILL, null);
        pool.create(p.mainTask(), () -> false, NO_SIGKILL, null);
        assertEquals(Errno.ENOMEM, assertThrows(ErrnoException.class,
                () -> pool.create(p.mainTask(), () -> false, NO_SIGKILL, null)).errno());
        pool.close();
        assertEquals(Errno.ENODEV, assertThrows(ErrnoException.class,
                () -> pool.create(p.mainTask(), () -> false, NO_SIGKILL, null)).errno());
        assertTrue(pool.tasks().get(0).isDead());
    }

    @Test
    void kthreadWorkersEscapeTheOwnersRlimitAndUserWorkersDoNot() throws Exception {
        Process p = owner(k, 2, k.rootCgroup());
        WorkerFactory user = WorkerFactories.of(Accounting.USER_WORKER, Carrier.VIRTUAL);
        WorkerFactory kth = WorkerFactories.of(Accounting.KTHREAD, Carrier.VIRTUAL);
        Worker one = user.create(p.mainTask(), () -> false, NO_SIGKILL, null);
        assertEquals(Errno.EAGAIN, assertThrows(ErrnoException.class,
                () -> user.create(p.mainTask(), () -> false, NO_SIGKILL, null)).errno());
        List<Worker> ks = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            ks.add(kth.create(p.mainTask(), () -> false, NO_SIGKILL, null));
        }
        ks.forEach(Worker::stop);
        one.stop();
        assertEquals(Rlimits.nproc(2), p.rlimits());
        assertEquals(1, k.ucounts().count(UID));
    }
}
