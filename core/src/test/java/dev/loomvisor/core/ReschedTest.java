package dev.loomvisor.core;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.testing.CarrierHogs;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.RepeatedTest;

/**
 * {@link Resched#needResched()} sees a virtual thread that waits for a carrier: with every carrier held by a
 * spinning virtual thread, the next one started waits, and a spinner asking sees it.
 */
class ReschedTest {

    @RepeatedTest(5)
    void aVirtualThreadWaitingForACarrierIsSeen() throws Exception {
        assertTrue(Resched.seesScheduler(), "scripts/jvm.options opens java.lang, so the scheduler's queues are read");
        AtomicBoolean seen = new AtomicBoolean();
        CountDownLatch running = new CountDownLatch(1);
        try (CarrierHogs hogs = new CarrierHogs()) {
            // One spinner asks; the others, and the one that waits, keep every carrier busy and one thread queued.
            hogs.start(() -> {
                running.countDown();
                if (Resched.needResched()) {
                    seen.set(true);
                }
            });
            assertTrue(running.await(30, TimeUnit.SECONDS), "the asking spinner ran");
            hogs.addUntil(seen::get, "needResched() never saw the thread waiting for a carrier");
        }
    }
}
