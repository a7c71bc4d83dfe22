package dev.loomvisor.vhost.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Signal;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.inject.Delays;
import dev.loomvisor.core.testing.RandomDelays;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.core.worker.Accounting;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.VhostDevice;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vhost.work.VhostWork;
import dev.loomvisor.vhost.work.VhostWorker;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Lost wake-ups and lost work in the vhost work queue (issue 8): producers queue one-shot works on a
 * device's rings (through the rings' worker slots, as kicks do) and the rings' own handler works, while
 * flushers flush and the round ends by a drain, a release, a RESET_OWNER or the owner's SIGKILL racing
 * them, with random delays at the queue, flush, slot, kill-path and worker-loop points. Every work a slot
 * accepted must run exactly once or be counted cancelled by the worker that dropped it; a work the slot
 * refused (no worker: detached or killed) never runs; every flush returns, and a flush not racing a kill
 * returns only after the works accepted before it ran; a ring whose device was reset and owned again
 * still runs its handler.
 */
class WorkQueueStressTest {

    private static final Duration BOUND = Duration.ofSeconds(10);

    @AfterEach
    void removeDelays() {
        Delays.install(null);
    }

    private enum Ending { DRAIN, RELEASE_RACING, RESET_RACING, SIGKILL }

    /** One accepted-or-refused work, and how often it ran. */
    private static final class Item {
        final AtomicInteger runs = new AtomicInteger();
        final VhostWork work = new VhostWork(w -> runs.incrementAndGet());
        volatile int accepted = -1; // 1 accepted, 0 refused, -1 not yet queued
    }

    @Test
    void everyAcceptedWorkRunsOnceOrIsCancelledAndEveryFlushReturns() throws Exception {
        int rounds = Soak.size(80, 800);
        long seed = Soak.seed();
        RandomDelays delays = new RandomDelays(seed, 15, 20_000);
        Delays.install(delays);
        SplittableRandom rnd = new SplittableRandom(seed);
        Kernel kernel = new Kernel();
        long[] totals = new long[5]; // accepted, refused, cancelled, flushes, handler runs after reset
        int[] endings = new int[Ending.values().length];
        long start = System.nanoTime();
        for (WorkerModel m : WorkerModel.values()) {
            try (WorkerFactory f = m.factory(kernel, 2)) {
                for (int r = 0; r < rounds; r++) {
                    Ending e = Ending.values()[rnd.nextInt(m.accounting() == Accounting.USER_WORKER ? 4 : 3)];
                    endings[e.ordinal()]++;
                    String where = "seed=" + seed + " model=" + m.modelName() + " round=" + r + " ending=" + e;
                    try {
                        round(kernel, f, m, e, rnd.split(), where, totals);
                    } catch (Exception ex) {
                        throw new AssertionError(where + ": " + ex, ex); // a TimeoutException is a hang
                    }
                }
            }
        }
        long elapsedMs = (System.nanoTime() - start) / 1_000_000;
        assertTrue(Owners.await(BOUND, () -> kernel.liveThreads(Carrier.VIRTUAL) == 0
                && kernel.liveThreads(Carrier.PLATFORM) == 0), "seed=" + seed + " task threads left");
        assertEquals(2, kernel.nrThreads(), "seed=" + seed + " only init and kthreadd remain");
        Soak.report("wakeups.work-queue", "rounds=" + rounds * WorkerModel.values().length + " seed=" + seed
                + " elapsed-ms=" + elapsedMs + " accepted=" + totals[0] + " refused=" + totals[1]
                + " cancelled=" + totals[2] + " flushes=" + totals[3] + " drain=" + endings[0] + " release="
                + endings[1] + " reset=" + endings[2] + " sigkill=" + endings[3] + " lost=0 run-twice=0"
                + " delays=" + delays.injectedTotal() + " (" + delays.summary() + ")");
    }

    private static void round(Kernel kernel, WorkerFactory f, WorkerModel m, Ending ending, SplittableRandom rnd,
                              String where, long[] totals) throws Exception {
        Process vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.nproc(Rlimits.INFINITY),
                kernel.rootCgroup());
        Task owner = vmm.mainTask();
        AtomicIntegerArray handlerRuns = new AtomicIntegerArray(2);
        VhostDevice dev = BareDevices.of(f, w -> handlerRuns.incrementAndGet(0), w -> handlerRuns.incrementAndGet(1));
        dev.setOwner(owner);
        if (m.accounting() == Accounting.USER_WORKER && rnd.nextBoolean()) {
            dev.attachVringWorker(owner, 1, dev.newWorker(owner)); // one worker per ring
        }
        List<VhostWorker> workers = dev.workers();

        int producers = 1 + rnd.nextInt(3);
        int each = 20 + rnd.nextInt(150);
        Item[][] items = new Item[producers][each];
        AtomicIntegerArray done = new AtomicIntegerArray(producers); // items whose queueing returned
        CountDownLatch go = new CountDownLatch(1);
        List<CompletableFuture<?>> ps = new ArrayList<>();
        Queue<Thread> testThreads = new ConcurrentLinkedQueue<>(); // for a failure's dump
        for (int p = 0; p < producers; p++) {
            int pi = p;
            long ringBits = rnd.nextLong();
            ps.add(CompletableFuture.runAsync(() -> {
                testThreads.add(Thread.currentThread());
                awaitQuietly(go);
                for (int i = 0; i < each; i++) {
                    Item it = new Item();
                    items[pi][i] = it;
                    VhostVirtqueue vq = dev.vq((int) (ringBits >>> (i % 64)) & 1);
                    it.accepted = vq.slot().queueWork(it.work) ? 1 : 0;
                    if (i % 8 == 0) {
                        vq.queueHandler(); // the ring's own, reused work: the QUEUED bit's path
                    }
                    done.set(pi, i + 1);
                }
            }, Thread.ofVirtual()::start));
        }
        // A flusher: each flush must return; unless a kill races it, after it every work accepted before it ran.
        AtomicBoolean flushing = new AtomicBoolean(true);
        AtomicLong flushes = new AtomicLong();
        boolean checkFlush = ending != Ending.SIGKILL;
        SplittableRandom flushPause = rnd.split();
        CompletableFuture<Void> flusher = CompletableFuture.runAsync(() -> {
            testThreads.add(Thread.currentThread());
            awaitQuietly(go);
            while (flushing.get() && !dev.isReleased()) {
                LockSupport.parkNanos(1 + flushPause.nextLong(20_000)); // let producers and workers run
                int[] before = new int[producers];
                for (int p = 0; p < producers; p++) {
                    before[p] = done.get(p);
                }
                dev.flush();
                flushes.incrementAndGet();
                // Only while the device kept its owner: a release or reset in between may cancel work.
                if (checkFlush && !dev.isReleased() && dev.hasOwner()) {
                    for (int p = 0; p < producers; p++) {
                        for (int i = 0; i < before[p]; i++) {
                            Item it = items[p][i];
                            if (it.accepted == 1 && it.runs.get() != 1 && !dev.isReleased() && dev.hasOwner()) {
                                throw new AssertionError(where + ": flush returned before accepted work "
                                        + p + "/" + i + " ran (runs=" + it.runs.get() + ")");
                            }
                        }
                    }
                }
            }
        }, Thread.ofVirtual()::start);
        go.countDown();

        switch (ending) {
            case DRAIN -> {
                allBounded(ps);
                dev.flush();
            }
            case RELEASE_RACING -> {
                CompletableFuture.runAsync(dev::close).get(BOUND.toSeconds(), TimeUnit.SECONDS);
                allBounded(ps);
            }
            case RESET_RACING -> {
                CompletableFuture.runAsync(() -> {
                    try {
                        dev.resetOwner(owner);
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                }).get(BOUND.toSeconds(), TimeUnit.SECONDS);
                allBounded(ps);
            }
            case SIGKILL -> {
                vmm.kill(Signal.SIGKILL);
                if (!Owners.await(BOUND, () -> workers.stream().allMatch(w -> w.thread().task().isDead()))) {
                    throw new AssertionError(where + ": the workers took the kill path, not dead after " + BOUND
                            + ":" + WorkerDump.of(workers, List.of(dev), testThreads));
                }
                allBounded(ps);
            }
        }
        flushing.set(false);
        try {
            flusher.get(BOUND.toSeconds(), TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError(where + ": a flush did not return in " + BOUND + ":"
                    + WorkerDump.of(workers, List.of(dev), testThreads), e);
        }
        totals[3] += flushes.get();

        // Accounting of every item: accepted ones ran exactly once or sit cancelled on a stopped worker.
        long cancelledNow = 0;
        for (VhostWorker w : workers) {
            cancelledNow += w.cancelledWork();
        }
        long acceptedNotRun = 0;
        for (Item[] row : items) {
            for (Item it : row) {
                int runs = it.runs.get();
                assertTrue(runs <= 1, where + ": a work ran " + runs + " times");
                if (it.accepted == 0) {
                    assertEquals(0, runs, where + ": a refused work ran");
                    totals[1]++;
                } else {
                    assertEquals(1, it.accepted, where);
                    totals[0]++;
                    if (runs == 0) {
                        acceptedNotRun++;
                        assertFalse(it.work.isQueued() && !workersStopped(workers, dev, m),
                                where + ": accepted work neither ran nor was cancelled");
                    }
                }
            }
        }
        if (ending == Ending.DRAIN || ending == Ending.SIGKILL) {
            assertEquals(0, acceptedNotRun, where + ": accepted work that never ran");
        }
        if (ending == Ending.RESET_RACING) {
            // Owned again, the rings must run their handlers: a handler work left QUEUED on the destroyed
            // worker would make its ring deaf for good.
            dev.setOwner(owner);
            for (int q = 0; q < 2; q++) {
                int before = handlerRuns.get(q);
                int qi = q;
                assertTrue(dev.vq(q).queueHandler(), where + ": ring " + q + " has a worker again");
                assertTrue(Owners.await(BOUND, () -> handlerRuns.get(qi) > before),
                        where + ": ring " + q + " handler runs after RESET_OWNER + SET_OWNER");
            }
        }
        dev.close();
        long cancelled = 0;
        for (VhostWorker w : workers) {
            cancelled += w.cancelledWork();
            assertFalse(w.hasPendingWork(), where + ": " + w + " left work in its list");
        }
        assertTrue(cancelled >= acceptedNotRun, where + ": " + acceptedNotRun + " accepted works did not run, "
                + cancelled + " were cancelled (" + cancelledNow + " before the final release)");
        totals[2] += acceptedNotRun;
        CompletableFuture.runAsync(vmm::exit).get(BOUND.toSeconds(), TimeUnit.SECONDS);
    }

    private static boolean workersStopped(List<VhostWorker> workers, VhostDevice dev, WorkerModel m) {
        return dev.isReleased() || !dev.hasOwner();
    }

    private static void allBounded(List<CompletableFuture<?>> fs) throws Exception {
        try {
            CompletableFuture.allOf(fs.toArray(new CompletableFuture<?>[0])).get(BOUND.toSeconds(), TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError("producers stuck", e);
        }
    }

    private static void awaitQuietly(CountDownLatch l) {
        try {
            l.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
