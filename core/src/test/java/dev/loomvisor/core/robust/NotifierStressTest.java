package dev.loomvisor.core.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.inject.Delays;
import dev.loomvisor.core.testing.RandomDelays;
import dev.loomvisor.core.testing.Soak;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The eventfd emulation under signal/read races (issue 8), with delays between raising the count and
 * telling waiters and the listener: a reader blocked in the untimed {@link Notifier#await()} must wake for
 * every count (a lost wake-up shows as a reader that never returns, caught by the bounded join), the counts
 * read add up to the signals sent, and the listener hears every signal exactly once.
 */
class NotifierStressTest {

    private static final Duration BOUND = Duration.ofSeconds(10);

    @AfterEach
    void removeDelays() {
        Delays.install(null);
    }

    @Test
    void everySignalIsReadOnceAndHeardOnce() throws Exception {
        int rounds = Soak.size(1000, 10_000);
        long seed = Soak.seed();
        RandomDelays delays = new RandomDelays(seed, 25, 20_000);
        Delays.install(delays);
        SplittableRandom rnd = new SplittableRandom(seed);
        long signals = 0;
        long start = System.nanoTime();
        for (int r = 0; r < rounds; r++) {
            String where = "seed=" + seed + " round=" + r;
            Notifier n = new Notifier();
            AtomicLong heard = new AtomicLong();
            n.setListener(x -> heard.incrementAndGet());
            int producers = 1 + rnd.nextInt(3);
            int each = 1 + rnd.nextInt(100);
            long total = (long) producers * each;
            AtomicLong read = new AtomicLong();
            CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
                try {
                    while (read.get() < total) {
                        read.addAndGet(n.await()); // untimed: a lost wake-up leaves it here
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, t -> Thread.ofVirtual().start(t));
            CompletableFuture<?>[] ps = new CompletableFuture<?>[producers];
            for (int p = 0; p < producers; p++) {
                ps[p] = CompletableFuture.runAsync(() -> {
                    for (int i = 0; i < each; i++) {
                        n.signal();
                    }
                }, t -> Thread.ofVirtual().start(t));
            }
            try {
                CompletableFuture.allOf(ps).get(BOUND.toSeconds(), TimeUnit.SECONDS);
                reader.get(BOUND.toSeconds(), TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new AssertionError(where + ": reader stuck with count " + n.isSignalled() + ", read "
                        + read.get() + " of " + total, e);
            }
            assertEquals(total, read.get() + n.poll(), where + ": counts read = signals sent");
            assertEquals(total, heard.get(), where + ": the listener heard every signal once");
            signals += total;
        }
        Soak.report("wakeups.notifier", "rounds=" + rounds + " seed=" + seed + " signals=" + signals
                + " elapsed-ms=" + (System.nanoTime() - start) / 1_000_000 + " lost=0 delays="
                + delays.injectedTotal());
    }
}
