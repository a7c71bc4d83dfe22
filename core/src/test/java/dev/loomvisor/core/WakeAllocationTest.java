package dev.loomvisor.core;

import static dev.loomvisor.core.KernelFixture.NO_SIGKILL;
import static dev.loomvisor.core.KernelFixture.owner;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerModel;
import java.lang.management.ManagementFactory;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The hot path: waking a worker that is already awake (running its fn) allocates nothing, whatever the model.
 * (Unparking a parked virtual thread makes the JDK's scheduler allocate its task wrapper; that is below us.)
 */
class WakeAllocationTest {

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private static long allocatedBytes() {
        return THREADS.getCurrentThreadAllocatedBytes();
    }

    @ParameterizedTest
    @EnumSource(WorkerModel.class)
    void wakingABusyWorkerAllocatesNothing(WorkerModel model) throws Exception {
        Kernel k = new Kernel();
        Process p = owner(k);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        try (var f = model.factory(k, 1)) {
            Worker w = f.create(p.mainTask(), () -> {
                inside.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return false;
            }, NO_SIGKILL, null);
            w.start();
            assertTrue(inside.await(10, TimeUnit.SECONDS));
            for (int i = 0; i < 200_000; i++) { // warm up: let the JIT compile wake()
                w.wake();
            }
            long before = allocatedBytes();
            for (int i = 0; i < 1_000_000; i++) {
                w.wake();
            }
            long allocated = allocatedBytes() - before;
            release.countDown();
            w.stop();
            // The measurement itself may cost a few bytes; a wake that allocated would show megabytes.
            assertTrue(allocated < 1024, model + ": 1,000,000 wakes allocated " + allocated + " bytes");
        }
        p.exit();
        assertEquals(2, k.nrThreads());
    }

    @Test
    void signallingANotifierAllocatesNothing() {
        Notifier n = new Notifier();
        for (int i = 0; i < 200_000; i++) {
            n.signal();
        }
        long before = allocatedBytes();
        for (int i = 0; i < 1_000_000; i++) {
            n.signal();
        }
        long allocated = allocatedBytes() - before;
        assertTrue(allocated < 1024, "1,000,000 signals allocated " + allocated + " bytes");
    }
}
