package dev.loomvisor.vhost.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.inject.Delays;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.VhostDevice;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.net.TxHandler;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vhost.work.VhostWork;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vhost.work.WorkerSlot;
import dev.loomvisor.vmm.net.FrameLimits;
import java.time.Duration;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Faults the churn and wake-up checks found, one test each, named after the fault. */
class ChurnRegressionTest {

    /**
     * The TX handler gathered frames into a 64 KiB direct ByteBuffer, freed only when a GC ran its cleaner:
     * 10,000 device cycles held about 260 MB of native memory (NMT "Other") after every device was released.
     * The buffer is now taken on the first frame that needs a gather (HandlerTest), so an open device that never
     * gathered holds none, and closing it frees nothing twice.
     */
    @Test
    void txGatherBufferHeldUntilGcAfterRelease() throws Exception {
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        Task owner = vmm.mainTask();
        long before = TxHandler.liveScratchBytes();
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel)) {
            VhostNet n = VhostNet.open(owner, f);
            n.device().setOwner(owner);
            assertEquals(before, TxHandler.liveScratchBytes(), "an open device that never gathered holds none");
            n.close();
            assertEquals(before, TxHandler.liveScratchBytes(), "release frees nothing it did not take");
            n.close();
            assertEquals(before, TxHandler.liveScratchBytes(), "a second release frees nothing twice");
        }
    }

    @AfterEach
    void removeDelays() {
        Delays.install(null);
    }

    /**
     * A work queued on a worker after the release's flush and not run before its stop stayed in the dead
     * worker's list with QUEUED set: the ring's handler work could then never be queued again, so after
     * RESET_OWNER and SET_OWNER the ring was deaf (every kick "accepted", nothing ever ran). Found by
     * WorkQueueStressTest (RESET_RACING). Here the late work is placed deterministically at the point where
     * the stop has set STOP but not yet woken the worker.
     */
    @Test
    void handlerWorkLeftQueuedOnDestroyedWorkerDeafenedRingAfterReset() throws Exception {
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        Task owner = vmm.mainTask();
        AtomicInteger runs = new AtomicInteger();
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel)) {
            VhostDevice dev = BareDevices.of(f, w -> runs.incrementAndGet());
            dev.setOwner(owner);
            VhostVirtqueue vq = dev.vq(0);
            VhostWorker worker = dev.workers().get(0);
            Thread control = Thread.currentThread();
            AtomicBoolean armed = new AtomicBoolean(true);
            Delays.install(p -> {
                if (p == Delays.Point.STOP_AFTER_FLAG && Thread.currentThread() == control && armed.getAndSet(false)) {
                    worker.queue(vq.handleKickWork()); // a kick that landed after the flush, before the detach
                }
            });
            dev.resetOwner(owner);
            Delays.install(null);
            assertFalse(armed.get(), "the late work was placed");
            assertEquals(0, runs.get(), "the stopped worker did not run it");
            assertEquals(1, worker.cancelledWork(), "the destroyed worker reports it cancelled");
            assertFalse(vq.handleKickWork().isQueued(), "and its QUEUED bit is clear again");

            dev.setOwner(owner);
            assertTrue(vq.queueHandler());
            assertTrue(Owners.await(Duration.ofSeconds(10), () -> runs.get() == 1), "the ring runs again");
            dev.close();
        }
        vmm.exit();
    }

    /**
     * WorkerSlot's grace period flipped the phase once: a reader that read the phase, stalled, and entered
     * after one writer's wait was counted in a counter the next writer did not wait for, so that writer's
     * set(null) returned while the reader, holding the worker it had read, was still about to queue on it
     * (which the device then destroys: the work would be lost). Deterministic: the reader is held first
     * before it enters, then inside, between its pointer read and its push.
     */
    @Test
    void slotGracePeriodMissedReaderOfStalePhase() throws Exception {
        WorkerSlot slot = new WorkerSlot();
        VhostWorker first = new VhostWorker(1);
        VhostWorker second = new VhostWorker(2);
        slot.set(first);
        CountDownLatch atEnter = new CountDownLatch(1);
        CountDownLatch enter = new CountDownLatch(1);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch writerReturned = new CountDownLatch(1);
        AtomicBoolean readerDone = new AtomicBoolean();
        VhostWork work = new VhostWork(w -> { });
        Thread reader = Thread.ofPlatform().unstarted(() -> slot.queueWork(work));
        Delays.install(p -> {
            if (Thread.currentThread() != reader) {
                return;
            }
            try {
                if (p == Delays.Point.SLOT_BEFORE_ENTER) {
                    atEnter.countDown();
                    enter.await();
                } else if (p == Delays.Point.QUEUE_AFTER_TEST_AND_SET) {
                    inside.countDown();
                    // A correct writer waits for us; give up after a bound so that it can finish.
                    writerReturned.await(500, TimeUnit.MILLISECONDS);
                    // Still inside: set before the section's exit, so a writer that waited for the exit sees
                    // it (set after queueWork returned, a reader preempted between the two looked missed).
                    readerDone.set(true);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        reader.start();
        assertTrue(atEnter.await(10, TimeUnit.SECONDS));
        slot.set(second); // the reader is not counted yet: this grace period ends at once
        enter.countDown();
        assertTrue(inside.await(10, TimeUnit.SECONDS), "the reader read a worker and is about to queue");
        CompletableFuture<Boolean> detach = CompletableFuture.supplyAsync(() -> {
            slot.set(null);
            boolean waited = readerDone.get();
            writerReturned.countDown();
            return waited;
        });
        assertTrue(detach.get(10, TimeUnit.SECONDS), "set(null) returned while a reader was still inside");
        reader.join(10_000);
        assertTrue(second.hasPendingWork(), "the reader queued on the worker it read");
    }

    /**
     * WorkerSlot's grace-period wait spun and then {@link Thread#yield()}ed. On a virtual thread a yield
     * puts the thread back into the fork-join submission queue its carrier is draining, and the carrier
     * takes it again at once without looking at other queues. When both rings' workers of a device were
     * SIGKILLed together, each killed worker's thread detached its ring and waited for a producer that was
     * unmounted inside its read-side section; the two waiters held both carriers, the producer (and the
     * timer task that was to wake it) never ran again, and the workers never died
     * (WorkQueueStressTest, seed -3921826550955838875, round 35: "the workers took the kill path" after
     * 10 s; the dump showed both in synchronizeRcu, the producers TIMED_WAITING for a 20 us park). Here one
     * writer per carrier waits for a reader held inside its section: each writer must give its carrier up
     * (be seen parked), and a virtual thread started meanwhile must run. Deterministic: a yielding or
     * spinning writer is never seen parked. The readers are platform threads so that the check ends even
     * when a writer does hold its carrier.
     */
    @Test
    void slotGracePeriodYieldHeldTheCarrierFromTheReaderItWaitedFor() throws Exception {
        int carriers = Integer.getInteger("jdk.virtualThreadScheduler.parallelism",
                Runtime.getRuntime().availableProcessors());
        WorkerSlot[] slots = new WorkerSlot[carriers];
        VhostWorker[] workers = new VhostWorker[carriers];
        Thread[] readers = new Thread[carriers];
        AtomicIntegerArray accepted = new AtomicIntegerArray(carriers);
        CountDownLatch inside = new CountDownLatch(carriers);
        CountDownLatch leave = new CountDownLatch(1);
        Set<Thread> held = ConcurrentHashMap.newKeySet();
        for (int i = 0; i < carriers; i++) {
            slots[i] = new WorkerSlot();
            workers[i] = new VhostWorker(i);
            slots[i].set(workers[i]);
            WorkerSlot slot = slots[i];
            VhostWork work = new VhostWork(w -> { });
            int ri = i;
            readers[i] = Thread.ofPlatform().unstarted(() -> accepted.set(ri, slot.queueWork(work) ? 1 : 2));
            held.add(readers[i]);
        }
        Delays.install(p -> {
            if (p == Delays.Point.SLOT_AFTER_ENTER && held.contains(Thread.currentThread())) {
                inside.countDown();
                try {
                    leave.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        Thread[] writers = new Thread[carriers];
        try {
            for (Thread r : readers) {
                r.start();
            }
            assertTrue(inside.await(10, TimeUnit.SECONDS), "every reader is inside its section");
            for (int i = 0; i < carriers; i++) {
                WorkerSlot slot = slots[i];
                writers[i] = Thread.ofVirtual().start(() -> slot.set(null));
            }
            boolean[] seenParked = new boolean[carriers];
            boolean allParked = Owners.await(Duration.ofSeconds(10), () -> {
                boolean all = true;
                for (int i = 0; i < carriers; i++) {
                    Thread.State s = writers[i].getState();
                    seenParked[i] |= s == Thread.State.TIMED_WAITING || s == Thread.State.WAITING;
                    all &= seenParked[i];
                }
                return all;
            });
            assertTrue(allParked, "each of " + carriers + " writers waiting for a reader gave its carrier up: "
                    + Arrays.toString(seenParked));
            CountDownLatch ran = new CountDownLatch(1);
            Thread.ofVirtual().start(ran::countDown);
            assertTrue(ran.await(10, TimeUnit.SECONDS),
                    "a virtual thread runs while every carrier has a waiting writer");
            for (Thread w : writers) {
                assertTrue(w.isAlive(), "no writer returned while its reader was inside");
            }
        } finally {
            leave.countDown();
        }
        for (int i = 0; i < carriers; i++) {
            assertTrue(writers[i].join(Duration.ofSeconds(10)), "writer " + i + " returned once its reader left");
            assertTrue(readers[i].join(Duration.ofSeconds(10)));
            // It entered before the detach's wait but read the pointer after its store: refused, nothing left.
            assertEquals(2, accepted.get(i), "reader " + i + " read the detached pointer");
            assertFalse(workers[i].hasPendingWork(), "reader " + i + " left nothing on the detached worker");
        }
    }
}
