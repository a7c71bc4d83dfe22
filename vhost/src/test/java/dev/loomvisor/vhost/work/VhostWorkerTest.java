package dev.loomvisor.vhost.work;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.testing.TestWorker;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;

/** Worker-level rules: flush, the kill path, the ring slot's grace period. */
class VhostWorkerTest {

    private final List<TestWorker> threads = new ArrayList<>();

    private VhostWorker worker(int id) {
        VhostWorker w = new VhostWorker(id);
        TestWorker t = new TestWorker(w::run, () -> { }, "vhost-test-" + id, true);
        w.bind(t);
        t.start();
        threads.add(t);
        return w;
    }

    @AfterEach
    void stopAll() {
        threads.forEach(TestWorker::stop);
    }

    @Test
    void flushWaitsForEarlierWork() throws Exception {
        VhostWorker w = worker(0);
        WorkerSlot slot = new WorkerSlot();
        slot.set(w);
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger done = new AtomicInteger();
        slot.queueWork(new VhostWork(x -> {
            entered.countDown();
            await(release);
            done.incrementAndGet();
        }));
        assertTrue(entered.await(5, TimeUnit.SECONDS));
        CompletableFuture<Integer> flushed = CompletableFuture.supplyAsync(() -> {
            w.flush();
            return done.get();
        });
        assertFalse(waitDone(flushed, 100), "flush must wait while earlier work runs");
        release.countDown();
        assertEquals(1, flushed.get(5, TimeUnit.SECONDS), "flush returned after the earlier work");
    }

    @Test
    void flushOfAnIdleWorkerReturnsAtOnce() {
        VhostWorker w = new VhostWorker(7); // not even a thread: nothing attached, nothing can be pending
        w.flush();
        assertEquals(0, w.attachmentCount());
    }

    @Test
    void flushOfAKilledWorkerReturnsAtOnce() throws Exception {
        VhostWorker w = new VhostWorker(8); // no thread to run a completion: only the shortcut can return
        WorkerSlot slot = new WorkerSlot();
        slot.set(w);
        w.markKilled();
        CompletableFuture<Void> f = CompletableFuture.runAsync(w::flush);
        f.get(5, TimeUnit.SECONDS);
    }

    @Test
    void killDetachesRunsLeftoverWorkAndLaterQueueingFails() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        List<String> ran = Collections.synchronizedList(new ArrayList<>());
        VhostWorker w = new VhostWorker(1);
        WorkerSlot slot = new WorkerSlot();
        TestWorker[] t = new TestWorker[1];
        t[0] = new TestWorker(w::run, () -> {
            w.mutex().lock();
            try {
                if (slot.get() == w) {
                    slot.set(null);
                }
                w.killedRunLeftover();
            } finally {
                w.mutex().unlock();
            }
        }, "vhost-kill", true);
        w.bind(t[0]);
        t[0].start();
        slot.set(w);
        CountDownLatch entered = new CountDownLatch(1);
        slot.queueWork(new VhostWork(x -> {
            entered.countDown();
            await(release);
            ran.add("first");
        }));
        assertTrue(entered.await(5, TimeUnit.SECONDS));
        slot.queueWork(new VhostWork(x -> ran.add("leftover")));
        CompletableFuture<Void> flush = CompletableFuture.runAsync(w::flush);
        t[0].sigkill();
        release.countDown();
        assertTrue(t[0].awaitExit(), "worker exits");
        flush.get(5, TimeUnit.SECONDS); // the pending completion ran as leftover work
        assertEquals(List.of("first", "leftover"), ran);
        assertTrue(w.isKilled());
        assertNull(slot.get());
        assertFalse(slot.queueWork(new VhostWork(x -> ran.add("late"))), "queueing on a detached ring fails");
        assertEquals(0, w.attachmentCount());
    }

    /** Producers hammer a slot while it is swapped between workers: no work is ever stranded. */
    @RepeatedTest(3)
    void swappingWorkersUnderLoadStrandsNothing() throws Exception {
        VhostWorker a = worker(1);
        VhostWorker b = worker(2);
        WorkerSlot slot = new WorkerSlot();
        slot.set(a);
        int n = 4;
        AtomicInteger[] runs = new AtomicInteger[n];
        VhostWork[] works = new VhostWork[n];
        for (int i = 0; i < n; i++) {
            AtomicInteger r = runs[i] = new AtomicInteger();
            works[i] = new VhostWork(x -> r.incrementAndGet());
        }
        CountDownLatch stop = new CountDownLatch(1);
        List<Thread> producers = new ArrayList<>();
        for (int p = 0; p < 2; p++) {
            producers.add(Thread.ofPlatform().start(() -> {
                int i = 0;
                while (stop.getCount() > 0) {
                    slot.queueWork(works[i++ % n]);
                }
            }));
        }
        for (int s = 0; s < 200; s++) {
            VhostWorker next = (s & 1) == 0 ? b : a;
            VhostWorker old = slot.set(next);
            old.flush();
        }
        stop.countDown();
        for (Thread t : producers) {
            t.join(5000);
        }
        slot.set(null);
        a.flush();
        b.flush();
        // Both flushes return at once when nothing is attached; wait for the lists to drain instead.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while ((a.hasPendingWork() || b.hasPendingWork() || anyQueued(works)) && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertFalse(anyQueued(works), "a work left with QUEUED set would never run again");
        assertSame(null, slot.get());
    }

    private static boolean anyQueued(VhostWork[] works) {
        for (VhostWork w : works) {
            if (w.isQueued()) {
                return true;
            }
        }
        return false;
    }

    private static boolean waitDone(CompletableFuture<?> f, long millis) {
        try {
            f.get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (Exception e) {
            return false;
        }
    }

    private static void await(CountDownLatch l) {
        try {
            l.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
