package dev.loomvisor.core;

import dev.loomvisor.core.worker.VhostTask;
import static dev.loomvisor.core.KernelFixture.IDLE;
import static dev.loomvisor.core.KernelFixture.NO_SIGKILL;
import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.join;
import static dev.loomvisor.core.KernelFixture.owner;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Issue acceptance: racing creators never take the user past RLIMIT_NPROC, not even by one. */
class NprocRaceTest {

    @Test
    void sixtyFourThreadsTimesAThousandCreatesNeverExceedRlimitNproc() throws Exception {
        Kernel k = new Kernel();
        Cgroup vm = k.rootCgroup().mkdir("vm");
        Process p = owner(k, 100, vm);
        long start = k.ucounts().count(UID);
        AtomicInteger live = new AtomicInteger((int) start);
        AtomicInteger maxLive = new AtomicInteger();
        AtomicInteger created = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        ConcurrentLinkedQueue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 64; t++) {
            int id = t;
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    go.await();
                    List<VhostTask> mine = new ArrayList<>();
                    for (int i = 0; i < 1_000; i++) {
                        try {
                            VhostTask w = VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null,
                                    (i & 1) == 0 ? Carrier.VIRTUAL : Carrier.PLATFORM);
                            created.incrementAndGet();
                            int now = live.incrementAndGet();
                            maxLive.accumulateAndGet(now, Math::max);
                            // The kernel's own count can never have been over the limit at a success.
                            long charged = k.ucounts().count(UID);
                            if (charged > 100 + 64) {
                                unexpected.add(new AssertionError("ucounts " + charged));
                            }
                            if ((i + id) % 3 == 0) {
                                w.start();
                            }
                            mine.add(w);
                        } catch (ErrnoException e) {
                            if (e.errno() != Errno.EAGAIN) {
                                unexpected.add(e);
                            }
                            refused.incrementAndGet();
                        }
                        // Hold a few, then give them all back: keeps the pool of live tasks churning.
                        if (mine.size() >= 3 || i == 999) {
                            for (VhostTask w : mine) {
                                live.decrementAndGet();
                                w.stop();
                            }
                            mine.clear();
                        }
                    }
                } catch (Throwable e) {
                    unexpected.add(e);
                }
            }));
        }
        go.countDown();
        for (Thread t : threads) {
            join(t);
        }
        assertTrue(unexpected.isEmpty(), () -> "unexpected: " + unexpected.peek());
        assertTrue(maxLive.get() <= 100, "live tasks reached " + maxLive.get());
        assertEquals(64_000, created.get() + refused.get());
        assertTrue(refused.get() > 0, "the limit was never met: the race did not run against it");
        assertEquals(start, k.ucounts().count(UID), "count back to its start");
        assertEquals(1, vm.pidsCurrent());
        assertEquals(List.of(p.pid()), p.taskIds());
        assertEquals(0, k.liveThreads(Carrier.VIRTUAL));
        assertEquals(0, k.liveThreads(Carrier.PLATFORM));
        p.exit();
        assertEquals(0, k.ucounts().count(UID));
    }

    @Test
    void racingCreatorsNeverPushACgroupPastPidsMaxOfItsParent() throws Exception {
        Kernel k = new Kernel();
        Cgroup machine = k.rootCgroup().mkdir("machine");
        machine.setPidsMax(20);
        Cgroup vm = machine.mkdir("vm");
        Process p = owner(k, Rlimits.INFINITY, vm);
        AtomicInteger maxSeen = new AtomicInteger();
        AtomicInteger live = new AtomicInteger(1); // the owner's main task
        AtomicInteger refused = new AtomicInteger();
        ConcurrentLinkedQueue<Throwable> unexpected = new ConcurrentLinkedQueue<>();
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 16; t++) {
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    go.await();
                    List<VhostTask> mine = new ArrayList<>();
                    for (int i = 0; i < 500; i++) {
                        try {
                            mine.add(VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null));
                            // Counted from the success to before the stop: a subset of the charged tasks.
                            // (pids.current itself also holds racers about to revert, and a walk of the
                            // task list is not atomic, like readdir of /proc/<pid>/task.)
                            maxSeen.accumulateAndGet(live.incrementAndGet(), Math::max);
                        } catch (ErrnoException e) {
                            if (e.errno() != Errno.EAGAIN) {
                                unexpected.add(e);
                            }
                            refused.incrementAndGet();
                        }
                        if (mine.size() >= 2 || i == 499) {
                            for (VhostTask w : mine) {
                                live.decrementAndGet();
                                w.stop();
                            }
                            mine.clear();
                        }
                    }
                } catch (Throwable e) {
                    unexpected.add(e);
                }
            }));
        }
        go.countDown();
        for (Thread t : threads) {
            join(t);
        }
        assertTrue(unexpected.isEmpty(), () -> "unexpected: " + unexpected.peek());
        assertTrue(maxSeen.get() <= 20, "the group held " + maxSeen.get() + " tasks under pids.max 20");
        assertTrue(refused.get() > 0, "the limit was never met: the race did not run against it");
        assertEquals(refused.get(), vm.pidsEventsMax(), "every refusal counted in pids.events");
        assertEquals(1, vm.pidsCurrent());
        assertEquals(1, machine.pidsCurrent());
        p.exit();
        assertEquals(0, machine.pidsCurrent());
    }
}
