package dev.loomvisor.core.timer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.inject.Delays;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.api.Test;

class HrtimerTest {

    private static final long MS = 1_000_000L;

    /** Waits (bounded) until the clock thread is in {@code state}; false if it never got there. */
    private static boolean awaitState(HrtimerBase base, Thread.State state) throws InterruptedException {
        long end = System.nanoTime() + 10_000 * MS;
        while (System.nanoTime() - end < 0) {
            if (base.clockThread().getState() == state) {
                return true;
            }
            Thread.sleep(1);
        }
        return false;
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"0, 0", "50000, 0", "0, 2", "50000, 2"})
    void everyArmedDeadlineFiresOnceAndNeverBeforeItsTime(long slackNanos, int runners) throws Exception {
        int n = 500;
        try (var base = new HrtimerBase("hrtimer-test", HrtimerBase.DEFAULT_CAPACITY, slackNanos)) {
            // Threads that fire due timers as running vCPUs do (runQueues), racing the clock thread for each.
            var done = new java.util.concurrent.atomic.AtomicBoolean();
            List<Thread> running = new ArrayList<>();
            for (int k = 0; k < runners; k++) {
                running.add(Thread.ofVirtual().start(() -> {
                    while (!done.get()) {
                        base.runQueues();
                        Thread.yield();
                    }
                }));
            }
            long[] deadline = new long[n];
            AtomicLongArray firedAt = new AtomicLongArray(n);
            AtomicInteger[] fires = new AtomicInteger[n];
            CountDownLatch all = new CountDownLatch(n);
            List<Hrtimer> timers = new ArrayList<>();
            SplittableRandom r = new SplittableRandom(7);
            for (int i = 0; i < n; i++) {
                int id = i;
                fires[i] = new AtomicInteger();
                Notifier notifier = new Notifier();
                notifier.setListener(x -> {
                    firedAt.compareAndSet(id, 0, System.nanoTime());
                    fires[id].incrementAndGet();
                    all.countDown();
                });
                timers.add(base.timer(notifier));
            }
            long start = System.nanoTime();
            for (int i = 0; i < n; i++) {
                deadline[i] = start + r.nextLong(0, 50 * MS);
                timers.get(i).start(deadline[i]);
            }
            assertTrue(all.await(30, TimeUnit.SECONDS), "not every timer fired");
            done.set(true);
            for (Thread t : running) {
                assertTrue(t.join(java.time.Duration.ofSeconds(10)), "a runQueues thread hung");
            }
            assertTrue(awaitState(base, Thread.State.WAITING), "the clock thread did not go idle");
            for (int i = 0; i < n; i++) {
                assertEquals(1, fires[i].get(), "timer " + i + " fires");
                assertTrue(firedAt.get(i) - deadline[i] >= 0, "timer " + i + " fired early");
                assertFalse(timers.get(i).isActive());
                assertEquals(1, timers.get(i).expiries());
            }
            assertEquals(0, base.armed());
        }
    }

    @Test
    void runQueuesFiresDueTimersFromTheCallingThreadOnceAndNeverEarly() throws Exception {
        try (var base = new HrtimerBase("hrtimer-test", 16, 0, 0, false)) {
            var firedBy = new java.util.concurrent.atomic.AtomicReference<Thread>();
            AtomicLongArray firedAt = new AtomicLongArray(1);
            Notifier notifier = new Notifier();
            notifier.setListener(x -> {
                firedBy.set(Thread.currentThread());
                firedAt.set(0, System.nanoTime());
            });
            Hrtimer t = base.timer(notifier);
            long deadline = System.nanoTime() + 20 * MS;
            t.start(deadline);
            int fired = 0;
            for (long end = System.nanoTime() + 10_000 * MS; fired == 0 && System.nanoTime() - end < 0; ) {
                fired = base.runQueues();
                if (fired == 0) {
                    assertEquals(0, t.expiries(), "fired before its time");
                    Thread.sleep(1);
                }
            }
            assertEquals(1, fired);
            assertTrue(firedAt.get(0) - deadline >= 0, "fired early");
            assertEquals(Thread.currentThread(), firedBy.get(), "fired by the thread that ran the queue");
            assertEquals(0, base.runQueues(), "fires once");
            assertEquals(1, t.expiries());
            assertEquals(1, base.runQueuesPasses());
            assertEquals(0, base.armed());
            // A time already past fires at the next run of the queue, straight from the inbox.
            t.start(System.nanoTime() - MS);
            assertEquals(1, base.runQueues());
            assertEquals(2, t.expiries());
        }
    }

    @Test
    void theLastRunningThreadToHaltMakesTheClockKeepTheSlackAgain() throws Exception {
        // A backstop of an hour: a timer planned past it can only fire on time if idleEnter wakes the clock.
        long hour = 3_600_000 * MS;
        int runnerFired = 0;
        for (int rep = 0; rep < 10; rep++) {
            try (var base = new HrtimerBase("hrtimer-test", 16, 0, hour, true)) {
                var fired = new java.util.concurrent.CountDownLatch(1);
                AtomicLongArray at = new AtomicLongArray(2);
                Notifier n1 = new Notifier();
                Notifier n2 = new Notifier();
                n1.setListener(x -> at.compareAndSet(0, 0, System.nanoTime()));
                n2.setListener(x -> {
                    at.compareAndSet(1, 0, System.nanoTime());
                    fired.countDown();
                });
                Hrtimer t1 = base.timer(n1);
                Hrtimer t2 = base.timer(n2);
                base.idleExit();
                long start = System.nanoTime();
                t1.start(start + 5 * MS);
                long d2 = start + 50 * MS;
                t2.start(d2);
                // Running: fire t1 from here when it is due, so that the clock finds nothing at its wake-up and
                // plans an hour past t2.
                for (long end = start + 10_000 * MS; t1.expiries() == 0 && System.nanoTime() - end < 0; ) {
                    runnerFired += base.runQueues();
                    Thread.onSpinWait();
                }
                Thread.sleep(5);
                assertEquals(1, base.running());
                base.idleEnter();
                assertEquals(0, base.running());
                assertTrue(fired.await(10, TimeUnit.SECONDS), "t2 did not fire after the last thread halted");
                assertTrue(at.get(1) - d2 >= 0, "t2 fired early");
                assertEquals(1, t2.expiries());
            }
        }
        assertTrue(runnerFired > 0, "the running thread never fired t1: the scenario was not exercised");
    }

    /**
     * A timer armed while the clock thread plans its next look, and drained from the inbox by a running thread's
     * runQueues before the clock thread looks there again: the clock thread's plan was made without it, and it
     * must not sleep on that plan past the timer. The window is held open at the clock thread's CLOCK_AFTER_PLAN
     * point, where another thread arms the timer and drains it. Without the re-check the clock thread sleeps on
     * (until a timer ten minutes away, or for good) and the timer does not fire within the test's wait.
     */
    @Test
    void aTimerDrainedByARunningThreadWhileTheClockPlannedStillFires() throws Exception {
        for (int rep = 0; rep < 5; rep++) {
            var ref = new java.util.concurrent.atomic.AtomicReference<HrtimerBase>();
            var once = new java.util.concurrent.atomic.AtomicBoolean();
            var fired = new CountDownLatch(1);
            Notifier near = new Notifier();
            near.setListener(x -> fired.countDown());
            var nearTimer = new java.util.concurrent.atomic.AtomicReference<Hrtimer>();
            Delays.install(point -> {
                HrtimerBase b = ref.get();
                if (point == Delays.Point.CLOCK_AFTER_PLAN && b != null && nearTimer.get() != null
                        && Thread.currentThread() == b.clockThread() && once.compareAndSet(false, true)) {
                    Thread other = Thread.ofPlatform().start(() -> {
                        nearTimer.get().start(System.nanoTime() + 20 * MS);
                        b.runQueues(); // nothing due yet: it only drains the inbox
                    });
                    try {
                        other.join();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            });
            try (var base = new HrtimerBase("hrtimer-test", 16, 0, HrtimerBase.DEFAULT_BACKSTOP_NANOS, true)) {
                Hrtimer far = base.timer(new Notifier());
                nearTimer.set(base.timer(near));
                ref.set(base);
                far.start(System.nanoTime() + 600_000 * MS); // wakes the clock thread to plan for it
                assertTrue(fired.await(10, TimeUnit.SECONDS), "the drained timer did not fire: the clock thread slept"
                        + " on a plan made without it");
                assertTrue(once.get(), "the window was never opened: the scenario was not exercised");
                assertEquals(0, far.expiries());
            } finally {
                Delays.install(null);
            }
        }
    }

    @Test
    void slackFiresTimersThatLieWithinItInOnePassAndNeverEarly() throws Exception {
        int n = 100;
        // Slack far beyond the spread of the expiries: every timer lies within the first's slack.
        try (var base = new HrtimerBase("hrtimer-test", HrtimerBase.DEFAULT_CAPACITY, 5_000 * MS)) {
            long[] deadline = new long[n];
            AtomicLongArray firedAt = new AtomicLongArray(n);
            CountDownLatch all = new CountDownLatch(n);
            List<Hrtimer> timers = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int id = i;
                Notifier notifier = new Notifier();
                notifier.setListener(x -> {
                    firedAt.compareAndSet(id, 0, System.nanoTime());
                    all.countDown();
                });
                timers.add(base.timer(notifier));
            }
            long start = System.nanoTime() + 200 * MS;
            for (int i = 0; i < n; i++) {
                deadline[i] = start + i * MS;
                timers.get(i).start(deadline[i]);
            }
            assertTrue(all.await(30, TimeUnit.SECONDS), "not every timer fired");
            for (int i = 0; i < n; i++) {
                assertTrue(firedAt.get(i) - deadline[i] >= 0, "timer " + i + " fired early");
            }
            // One pass for the group the clock saw when it planned, at most one more for timers armed after that.
            assertTrue(base.expiryPasses() <= 2, "fired in " + base.expiryPasses() + " passes, not coalesced");
        }
    }

    @Test
    void aTimerWithNoNeighbourInItsSlackIsNotHeldToTheEndOfIt() throws Exception {
        try (var base = new HrtimerBase("hrtimer-test", HrtimerBase.DEFAULT_CAPACITY, 60_000 * MS)) {
            CountDownLatch fired = new CountDownLatch(1);
            Notifier notifier = new Notifier();
            notifier.setListener(x -> fired.countDown());
            Hrtimer t = base.timer(notifier);
            t.start(System.nanoTime() + 10 * MS);
            // Held to the end of its slack it would fire after 60 s; alone, it fires at its expiry.
            assertTrue(fired.await(30, TimeUnit.SECONDS), "a lone timer waited for its slack");
            // The pass is counted once its timers have fired: wait (bounded) for the count to follow.
            long end = System.nanoTime() + 10_000 * MS;
            while (base.expiryPasses() == 0 && System.nanoTime() - end < 0) {
                Thread.sleep(1);
            }
            assertEquals(1, base.expiryPasses());
        }
    }

    @Test
    void tenThousandArmedDeadlinesAllFire() throws Exception {
        int n = 10_000;
        try (var base = new HrtimerBase("hrtimer-test")) {
            CountDownLatch all = new CountDownLatch(n);
            Thread[] threads = new Thread[n];
            for (int i = 0; i < n; i++) {
                // One virtual thread per sender, each waiting on its own notifier for its own deadline.
                Notifier notifier = new Notifier();
                Hrtimer t = base.timer(notifier);
                long deadline = System.nanoTime() + (i % 100) * MS;
                threads[i] = Thread.ofVirtual().start(() -> {
                    t.start(deadline);
                    try {
                        notifier.await();
                        if (System.nanoTime() - deadline >= 0) {
                            all.countDown();
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                });
            }
            assertTrue(all.await(60, TimeUnit.SECONDS), all.getCount() + " of " + n + " senders not woken in time");
            for (Thread t : threads) {
                t.join();
            }
        }
    }

    @Test
    void aCancelledTimerDoesNotFire() throws Exception {
        try (var base = new HrtimerBase("hrtimer-test")) {
            Notifier cancelledN = new Notifier();
            Notifier sentinelN = new Notifier();
            Hrtimer cancelled = base.timer(cancelledN);
            Hrtimer sentinel = base.timer(sentinelN);
            long now = System.nanoTime();
            cancelled.start(now + 20 * MS);
            assertTrue(cancelled.cancel());
            assertFalse(cancelled.cancel(), "a second cancel finds it inactive");
            sentinel.start(now + 60 * MS); // fires after the cancelled one would have
            assertTrue(sentinelN.await(30, TimeUnit.SECONDS) > 0);
            assertEquals(0, cancelledN.poll());
            assertEquals(0, cancelled.expiries());
        }
    }

    @Test
    void reArmingReplacesTheExpiry() throws Exception {
        try (var base = new HrtimerBase("hrtimer-test")) {
            Notifier n = new Notifier();
            Hrtimer t = base.timer(n);
            t.start(System.nanoTime() + TimeUnit.HOURS.toNanos(1));
            long soon = System.nanoTime() + 5 * MS;
            t.start(soon);
            assertEquals(1, n.await(30, TimeUnit.SECONDS));
            assertTrue(System.nanoTime() - soon >= 0);
            assertTrue(awaitState(base, Thread.State.WAITING), "the hour-long expiry was left queued");
            assertEquals(1, t.expiries());
        }
    }

    @Test
    void aThreadTimerUnparksItsThread() throws Exception {
        try (var base = new HrtimerBase("hrtimer-test")) {
            Hrtimer t = base.timer(Thread.currentThread());
            long deadline = System.nanoTime() + 5 * MS;
            t.start(deadline);
            long end = System.nanoTime() + 30_000 * MS;
            while (t.isActive() && System.nanoTime() - end < 0) {
                java.util.concurrent.locks.LockSupport.parkNanos(this, end - System.nanoTime());
            }
            assertFalse(t.isActive());
            assertTrue(System.nanoTime() - deadline >= 0);
        }
    }

    @Test
    void anIdleBaseBlocksWithoutATimeout() throws Exception {
        try (var base = new HrtimerBase("hrtimer-test")) {
            assertTrue(awaitState(base, Thread.State.WAITING), "a new base's clock is " + base.clockThread().getState());
            if (System.getProperty("os.name", "").startsWith("Linux")) {
                assertTrue(base.timerSlackSet(), "prctl(PR_SET_TIMERSLACK) on the clock thread");
            }
            Notifier n = new Notifier();
            Hrtimer far = base.timer(n);
            far.start(System.nanoTime() + TimeUnit.HOURS.toNanos(1));
            // The check can tell: with a timer armed the clock sleeps with a timeout...
            assertTrue(awaitState(base, Thread.State.TIMED_WAITING), "armed: " + base.clockThread().getState());
            far.close();
            Hrtimer near = base.timer(n);
            near.start(System.nanoTime() + MS); // wakes the clock, which then drains the closed one
            assertEquals(1, n.await(30, TimeUnit.SECONDS));
            // ...and without one it blocks until an arm wakes it.
            assertTrue(awaitState(base, Thread.State.WAITING), "idle again: " + base.clockThread().getState());
            for (int i = 0; i < 20; i++) {
                Thread.sleep(5);
                assertEquals(Thread.State.WAITING, base.clockThread().getState());
            }
            assertEquals(1, base.timers());
        }
    }

    @Test
    void armingAllocatesNothing() throws Exception {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (var base = new HrtimerBase("hrtimer-test")) {
            Hrtimer t = base.timer(new Notifier());
            long far = System.nanoTime() + TimeUnit.HOURS.toNanos(1);
            for (int i = 0; i < 200_000; i++) {
                t.start(far + i);
                t.cancel();
            }
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 1_000_000; i++) {
                t.start(far - i);
                t.cancel();
            }
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            assertTrue(allocated < 1024, "1,000,000 arms and cancels allocated " + allocated + " bytes");
        }
    }

    @Test
    void aFullBaseRefusesAnotherTimerAndAClosedTimerFreesItsPlace() throws Exception {
        try (var base = new HrtimerBase("hrtimer-test", 2)) {
            Hrtimer a = base.timer(new Notifier());
            base.timer(new Notifier());
            assertThrowsIllegalState(() -> base.timer(new Notifier()));
            a.close();
            // The closed timer's place comes back once the clock thread has drained it.
            long end = System.nanoTime() + 10_000 * MS;
            while (base.timers() != 1 && System.nanoTime() - end < 0) {
                Thread.sleep(1);
            }
            Notifier n = new Notifier();
            base.timer(n).start(System.nanoTime());
            assertEquals(1, n.await(30, TimeUnit.SECONDS));
        }
    }

    private static void assertThrowsIllegalState(Runnable r) {
        try {
            r.run();
        } catch (IllegalStateException expected) {
            return;
        }
        throw new AssertionError("expected IllegalStateException");
    }
}
