package dev.loomvisor.core.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.core.timer.Hrtimer;
import dev.loomvisor.core.timer.HrtimerBase;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Paced senders racing the clock thread: each arms its timer, sometimes re-arms it earlier or later or
 * cancels and re-arms it before it fires, then waits on its notifier until its last expiry has passed. An
 * arm the clock thread lost would leave a sender waiting forever (caught by the bounded wait); a stale
 * expiry may wake a sender early only as a spurious wake-up, which the sender re-checks, as a vCPU does.
 */
class HrtimerStressTest {

    @Test
    void noArmIsLostUnderRearmAndCancelRaces() throws Exception {
        int senders = 64;
        int rounds = Soak.size(300, 3_000);
        long seed = Soak.seed();
        var failures = new ConcurrentLinkedQueue<String>();
        try (var base = new HrtimerBase("hrtimer-stress", 1024)) {
            List<Thread> threads = new ArrayList<>();
            for (int s = 0; s < senders; s++) {
                SplittableRandom rnd = new SplittableRandom(seed + s);
                int id = s;
                threads.add(Thread.ofVirtual().start(() -> {
                    Notifier n = new Notifier();
                    Hrtimer t = base.timer(n);
                    try {
                        for (int r = 0; r < rounds; r++) {
                            long deadline = System.nanoTime() + rnd.nextLong(0, 200_000);
                            t.start(deadline);
                            switch (rnd.nextInt(4)) {
                                case 0 -> {
                                    deadline = System.nanoTime() + rnd.nextLong(0, 200_000);
                                    t.start(deadline);
                                }
                                case 1 -> {
                                    t.cancel();
                                    deadline = System.nanoTime() + rnd.nextLong(0, 200_000);
                                    t.start(deadline);
                                }
                                default -> { }
                            }
                            while (System.nanoTime() - deadline < 0 || t.isActive()) {
                                if (n.await(10, TimeUnit.SECONDS) == 0) {
                                    failures.add("sender " + id + " round " + r + ": never woken (seed " + seed + ")");
                                    return;
                                }
                            }
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    } finally {
                        t.close();
                    }
                }));
            }
            for (Thread th : threads) {
                assertTrue(th.join(java.time.Duration.ofSeconds(120)), "a sender hangs (seed " + seed + ")");
            }
            assertEquals(List.of(), List.copyOf(failures));
        }
    }
}
