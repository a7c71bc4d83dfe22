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
import dev.loomvisor.core.testing.RandomDelays;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.core.testing.TaskDump;
import dev.loomvisor.core.worker.Accounting;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Lost wake-ups in the worker loop (issue 8): producers publish work and wake the worker while random
 * delays widen the windows the kernel once got wrong (the worker between "about to sleep", the STOP test,
 * fn and schedule; a waker between its flag test and wake_up_process; stop between its flag and its wake;
 * SIGKILL against all of it). Every model's worker must consume every published unit after the last wake,
 * stop must return, and a SIGKILL must end the worker through handleSigkill exactly once unless a stop
 * came first. All waits are bounded; the seed replays the delay choices.
 */
class WorkerWakeStressTest {

    private static final Duration BOUND = Duration.ofSeconds(10);

    @AfterEach
    void removeDelays() {
        Delays.install(null);
    }

    /** How a round ends. */
    private enum Ending { DRAIN, STOP_RACING, SIGKILL, SIGKILL_RACING_STOP }

    @Test
    void everyWakeIsSeenAndStopAndKillAlwaysEnd() throws Exception {
        int rounds = Soak.size(400, 4000);
        long seed = Soak.seed();
        RandomDelays delays = new RandomDelays(seed, 20, 20_000);
        Delays.install(delays);
        SplittableRandom rnd = new SplittableRandom(seed);
        Kernel kernel = new Kernel();
        long units = 0;
        int[] endings = new int[Ending.values().length];
        int kills = 0;
        long start = System.nanoTime();
        for (WorkerModel m : WorkerModel.values()) {
            try (WorkerFactory f = m.factory(kernel, 2)) {
                for (int r = 0; r < rounds; r++) {
                    Ending e = pickEnding(m, rnd);
                    endings[e.ordinal()]++;
                    String where = "seed=" + seed + " model=" + m.modelName() + " round=" + r + " ending=" + e;
                    long[] res;
                    try {
                        res = round(kernel, f, m, e, rnd.split(), where);
                    } catch (Exception ex) {
                        throw new AssertionError(where + ": " + ex, ex); // a TimeoutException is a hang
                    }
                    units += res[0];
                    kills += (int) res[1];
                }
            }
        }
        long elapsedMs = (System.nanoTime() - start) / 1_000_000;
        KernelFixture.awaitTrue("seed=" + seed + " no task thread left", BOUND,
                () -> kernel.liveThreads(Carrier.VIRTUAL) == 0 && kernel.liveThreads(Carrier.PLATFORM) == 0);
        assertEquals(2, kernel.nrThreads(), "seed=" + seed + " only init and kthreadd remain");
        Soak.report("wakeups.worker-loop", "rounds=" + rounds * WorkerModel.values().length + " seed=" + seed
                + " elapsed-ms=" + elapsedMs + " units=" + units + " drain=" + endings[0] + " stop-racing="
                + endings[1] + " sigkill=" + endings[2] + " sigkill-vs-stop=" + endings[3]
                + " handle-sigkill-calls=" + kills + " lost-wakeups=0 delays=" + delays.injectedTotal()
                + " (" + delays.summary() + ")");
    }

    private static Ending pickEnding(WorkerModel m, SplittableRandom rnd) {
        boolean userWorker = m.accounting() == Accounting.USER_WORKER;
        int n = rnd.nextInt(userWorker ? 4 : 2);
        return Ending.values()[n];
    }

    /** One worker's life; returns {units consumed, handleSigkill calls}. */
    private static long[] round(Kernel kernel, WorkerFactory f, WorkerModel m, Ending ending, SplittableRandom rnd,
                                String where) throws Exception {
        Process vmm = KernelFixture.owner(kernel);
        AtomicLong pending = new AtomicLong();
        AtomicLong consumed = new AtomicLong();
        AtomicInteger sigkills = new AtomicInteger();
        // fn as vhost's: take everything pending, report whether there was any.
        Worker w = f.create(vmm.mainTask(), () -> {
            long n = pending.getAndSet(0);
            consumed.addAndGet(n);
            return n != 0;
        }, sigkills::incrementAndGet, null);
        w.start();
        int producers = 1 + rnd.nextInt(3);
        int perProducer = 20 + rnd.nextInt(200);
        CountDownLatch go = new CountDownLatch(1);
        CompletableFuture<?>[] ps = new CompletableFuture<?>[producers];
        for (int p = 0; p < producers; p++) {
            long pauseEvery = 1 + rnd.nextInt(16);
            ps[p] = CompletableFuture.runAsync(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                for (int i = 0; i < perProducer; i++) {
                    pending.incrementAndGet();
                    w.wake();
                    if (i % pauseEvery == 0) {
                        Thread.yield();
                    }
                }
            }, r -> Thread.ofVirtual().start(r));
        }
        go.countDown();
        long produced = (long) producers * perProducer;
        switch (ending) {
            case DRAIN -> {
                CompletableFuture.allOf(ps).get(BOUND.toSeconds(), TimeUnit.SECONDS);
                // The last wake came after the last unit: if the worker slept through it, this times out.
                KernelFixture.awaitTrue(where + ": lost wake-up, consumed " + consumed.get() + " of " + produced,
                        BOUND, () -> consumed.get() == produced);
                stopBounded(w, where);
            }
            case STOP_RACING -> {
                CompletableFuture<Void> stop = CompletableFuture.runAsync(() -> w.stop());
                stop.get(BOUND.toSeconds(), TimeUnit.SECONDS);
                CompletableFuture.allOf(ps).get(BOUND.toSeconds(), TimeUnit.SECONDS);
                assertFalse(w.wake(), where + ": a wake after stop goes nowhere");
                assertTrue(consumed.get() <= produced, where);
            }
            case SIGKILL -> {
                vmm.kill(Signal.SIGKILL);
                if (!awaitBounded(() -> sigkills.get() == 1)) {
                    throw new AssertionError(where + ": SIGKILL ended the worker, handleSigkill not called after "
                            + BOUND + ": " + TaskDump.describe(w.task()));
                }
                CompletableFuture.allOf(ps).get(BOUND.toSeconds(), TimeUnit.SECONDS);
                assertTrue(w.isKilled(), where);
                assertFalse(w.wake(), where + ": a killed worker takes no wake");
                stopBounded(w, where);
                assertEquals(1, sigkills.get(), where + ": handleSigkill once");
            }
            case SIGKILL_RACING_STOP -> {
                CompletableFuture<Void> stop = CompletableFuture.runAsync(() -> w.stop());
                vmm.kill(Signal.SIGKILL);
                stop.get(BOUND.toSeconds(), TimeUnit.SECONDS);
                CompletableFuture.allOf(ps).get(BOUND.toSeconds(), TimeUnit.SECONDS);
                VhostTask t = (VhostTask) w;
                // Serialised: exactly one of "stopped first" and "killed first (handleSigkill ran once)".
                assertTrue(t.isStopped() != t.isKilled(), where + ": stopped=" + t.isStopped() + " killed="
                        + t.isKilled());
                assertEquals(t.isKilled() ? 1 : 0, sigkills.get(), where + ": handleSigkill calls");
            }
        }
        if (m != WorkerModel.KTHREAD_POOL) {
            assertTrue(w.task().isDead(),
                    () -> where + ": the worker's task was released: " + TaskDump.describe(w.task()));
        }
        CompletableFuture.runAsync(vmm::exit).get(BOUND.toSeconds(), TimeUnit.SECONDS);
        assertTrue(vmm.isDead(), where + ": the owner exited");
        return new long[] {consumed.get(), sigkills.get()};
    }

    /** Waits up to {@link #BOUND} for {@code condition}; false if it never held. */
    private static boolean awaitBounded(BooleanSupplier condition) {
        long deadline = System.nanoTime() + BOUND.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            Thread.onSpinWait();
            Thread.yield();
        }
        return true;
    }

    private static void stopBounded(Worker w, String where) throws Exception {
        CompletableFuture.runAsync(w::stop).get(BOUND.toSeconds(), TimeUnit.SECONDS);
    }
}
