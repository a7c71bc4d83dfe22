package dev.loomvisor.core.worker;

import static dev.loomvisor.core.KernelFixture.IDLE;
import static dev.loomvisor.core.KernelFixture.NO_SIGKILL;
import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.awaitTrue;
import static dev.loomvisor.core.KernelFixture.join;
import static dev.loomvisor.core.KernelFixture.owner;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Signal;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Reference section 3: the vhost_task loop, its wake-ups, and stop against SIGKILL. */
class VhostTaskTest {

    private final Kernel k = new Kernel();

    /** Busy-waits for a random short while: the pauses that open the lost-wake windows. */
    private static void pause(SplittableRandom rnd) {
        int r = rnd.nextInt(1024);
        if (r < 8) {
            Thread.yield();
        } else if (r < 64) {
            long until = System.nanoTime() + rnd.nextInt(5_000);
            while (System.nanoTime() < until) {
                Thread.onSpinWait();
            }
        }
    }

    /** A producer posting one item per wake, a worker taking one item per fn run. */
    private void wakeWorkCycles(Carrier carrier, int cycles) throws Exception {
        Process p = owner(k);
        AtomicLong posted = new AtomicLong();
        CountDownLatch allDone = new CountDownLatch(1);
        // Only the worker thread touches these: fn never runs concurrently with itself.
        long[] consumed = {0};
        long[] idleRuns = {0};
        AtomicLong caughtUp = new AtomicLong(); // consumed, published for the producer's catch-up points
        AtomicInteger inFn = new AtomicInteger();
        AtomicInteger overlap = new AtomicInteger();
        SplittableRandom workerRnd = new SplittableRandom(1);
        VhostTask w = VhostTask.create(p.mainTask(), () -> {
            if (inFn.incrementAndGet() != 1) {
                overlap.incrementAndGet();
            }
            try {
                if (posted.get() == consumed[0]) {
                    idleRuns[0]++;
                    return false;
                }
                pause(workerRnd);
                caughtUp.lazySet(++consumed[0]);
                if (consumed[0] == cycles) {
                    allDone.countDown();
                }
                return true;
            } finally {
                inFn.decrementAndGet();
            }
        }, NO_SIGKILL, null, carrier);
        w.start();
        SplittableRandom rnd = new SplittableRandom(2);
        for (int i = 0; i < cycles; i++) {
            posted.incrementAndGet();
            assertTrue(w.wake());
            pause(rnd);
            if ((i & 15) == 15) {
                // A catch-up point: the worker drains and heads for sleep, so the next wake meets the
                // about-to-sleep window or a parked worker rather than a busy one.
                long target = i + 1;
                awaitTrue("worker catching up at " + target, () -> caughtUp.get() >= target);
            }
        }
        assertTrue(allDone.await(60, TimeUnit.SECONDS), "worker hung at " + consumed[0] + " of " + cycles);
        w.stop();
        assertEquals(cycles, consumed[0]);
        // The worker went to sleep between bursts, so the wakes met the about-to-sleep windows.
        assertTrue(idleRuns[0] > 100, "worker went idle only " + idleRuns[0] + " times");
        assertEquals(0, overlap.get(), "fn ran concurrently with itself");
        assertFalse(w.wake(), "a stopped worker takes no wake");
        assertFalse(w.isKilled());
        p.exit();
        assertEquals(0, k.ucounts().count(UID));
    }

    @Test
    void aMillionWakeWorkCyclesOnAVirtualThreadLoseNoWake() throws Exception {
        wakeWorkCycles(Carrier.VIRTUAL, 1_000_000);
    }

    @Test
    void wakeWorkCyclesOnAPlatformThreadLoseNoWake() throws Exception {
        wakeWorkCycles(Carrier.PLATFORM, 200_000);
    }

    @Test
    void stopRacingSigkillEndsInExactlyOneOfThem() throws Exception {
        int stops = 0;
        int kills = 0;
        for (int rep = 0; rep < 10_000; rep++) {
            Process p = owner(k);
            AtomicInteger handled = new AtomicInteger();
            VhostTask w = VhostTask.create(p.mainTask(), IDLE, handled::incrementAndGet, null);
            w.start();
            CountDownLatch go = new CountDownLatch(1);
            Thread stopper = Thread.ofVirtual().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                w.stop();
            });
            go.countDown();
            p.kill(Signal.SIGKILL);
            join(stopper);
            w.task().awaitExit();
            int h = handled.get();
            boolean stopped = w.isStopped();
            assertTrue(h <= 1, "handleSigkill ran " + h + " times in rep " + rep);
            assertEquals(1, h + (stopped ? 1 : 0), "rep " + rep + ": handleSigkill=" + h + " stopped=" + stopped);
            assertEquals(h == 1, w.isKilled());
            if (stopped) {
                stops++;
            } else {
                kills++;
            }
            p.exit();
        }
        assertEquals(10_000, stops + kills);
        assertEquals(0, k.ucounts().count(UID));
        assertEquals(2, k.nrThreads());
        assertEquals(0, k.liveThreads(Carrier.VIRTUAL));
    }

    @Test
    void stopFirstWinsOverALaterSigkill() throws Exception {
        Process p = owner(k);
        AtomicInteger handled = new AtomicInteger();
        VhostTask w = VhostTask.create(p.mainTask(), IDLE, handled::incrementAndGet, null);
        w.start();
        w.stop();
        p.kill(Signal.SIGKILL);
        assertEquals(0, handled.get());
        assertTrue(w.isStopped());
        assertFalse(w.isKilled());
    }

    @Test
    void sigkillEndsTheLoopThroughHandleSigkillAndALaterStopOnlyWaits() throws Exception {
        Process p = owner(k);
        CountDownLatch handled = new CountDownLatch(1);
        VhostTask w = VhostTask.create(p.mainTask(), IDLE, handled::countDown, null);
        w.start();
        p.kill(Signal.SIGKILL);
        assertTrue(handled.await(10, TimeUnit.SECONDS));
        awaitTrue("worker released", () -> w.task().isDead());
        assertTrue(w.isKilled());
        assertFalse(w.wake());
        w.stop();
        assertFalse(w.isStopped(), "stop after the kill sets no STOP");
        assertEquals(java.util.List.of(p.pid()), p.taskIds());
        assertEquals(1, k.ucounts().count(UID), "the killed worker's charge came back");
    }

    @Test
    void aWorkerStoppedBeforeItStartedLeavesCleanly() throws Exception {
        Process p = owner(k);
        AtomicInteger runs = new AtomicInteger();
        VhostTask w = VhostTask.create(p.mainTask(), () -> {
            runs.incrementAndGet();
            return false;
        }, NO_SIGKILL, null);
        w.stop();
        assertTrue(w.task().isDead());
        assertEquals(0, runs.get(), "STOP is checked before fn");
        assertEquals(1, k.ucounts().count(UID));
    }

    @Test
    void aWakeBeforeTheFirstSleepIsNotLost() throws Exception {
        Process p = owner(k);
        AtomicLong posted = new AtomicLong();
        AtomicLong seen = new AtomicLong();
        CountDownLatch got = new CountDownLatch(1);
        VhostTask w = VhostTask.create(p.mainTask(), () -> {
            long v = posted.get();
            if (v == seen.get()) {
                return false;
            }
            seen.set(v);
            got.countDown();
            return true;
        }, NO_SIGKILL, null);
        posted.incrementAndGet();
        assertTrue(w.wake(), "waking a created, unstarted worker is fine");
        w.start();
        assertTrue(got.await(10, TimeUnit.SECONDS));
        w.stop();
    }

    @Test
    void sigstopHoldsTheWorkerUntilSigcontAndSigkillStillEndsIt() throws Exception {
        Process p = owner(k);
        AtomicLong posted = new AtomicLong();
        AtomicLong seen = new AtomicLong();
        CountDownLatch handled = new CountDownLatch(1);
        VhostTask w = VhostTask.create(p.mainTask(), () -> {
            long v = posted.get();
            if (v == seen.get()) {
                return false;
            }
            seen.set(v);
            return true;
        }, handled::countDown, null);
        w.start();
        p.kill(Signal.SIGSTOP);
        assertTrue(w.task().isStopped());
        p.kill(Signal.SIGCONT);
        assertFalse(w.task().isStopped());
        posted.incrementAndGet();
        w.wake();
        awaitTrue("work after SIGCONT", () -> seen.get() == 1);
        p.kill(Signal.SIGSTOP);
        p.kill(Signal.SIGKILL);
        assertTrue(handled.await(10, TimeUnit.SECONDS), "SIGKILL ends a stopped worker");
        w.stop();
    }

}
