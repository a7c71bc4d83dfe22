package dev.loomvisor.vhost.work;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.RepeatedTest;

/**
 * {@link Carriers#needResched()} sees a virtual thread that waits for a carrier: with every carrier held by a
 * spinning virtual thread, the next one started waits in the scheduler's queues, and a spinner asking sees it.
 */
class CarriersTest {

    /** More spinning virtual threads than any scheduler here has carriers. */
    private static final int MAX_SPINNERS = 256;

    @RepeatedTest(5)
    void aVirtualThreadWaitingForACarrierIsSeen() throws Exception {
        assertTrue(Carriers.seesScheduler(), "scripts/jvm.options opens java.lang, so the scheduler's queues are read");
        AtomicBoolean release = new AtomicBoolean();
        AtomicBoolean seen = new AtomicBoolean();
        CountDownLatch running = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        try {
            // One spinner asks; the others, and the waiter, keep every carrier busy and one thread queued.
            threads.add(Thread.ofVirtual().start(() -> {
                running.countDown();
                while (!release.get()) {
                    if (Carriers.needResched()) {
                        seen.set(true);
                    }
                    Thread.onSpinWait();
                }
            }));
            assertTrue(running.await(30, TimeUnit.SECONDS), "the asking spinner ran");
            // One more spinner every millisecond, however many carriers the scheduler has, until one waits.
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!seen.get()) {
                assertTrue(System.nanoTime() - end < 0, "needResched() never saw the thread waiting for a carrier");
                if (threads.size() < MAX_SPINNERS) {
                    threads.add(Thread.ofVirtual().start(() -> {
                        while (!release.get()) {
                            Thread.onSpinWait();
                        }
                    }));
                }
                Thread.sleep(1);
            }
        } finally {
            release.set(true);
            for (Thread t : threads) {
                t.join();
            }
        }
    }
}
