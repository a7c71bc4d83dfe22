package dev.loomvisor.vhost.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Notifier;
import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The native calls on the data path allocate nothing per event once warm: the call side (eventfd write
 * from a worker) and the kick side (the epoll thread's wait, drain and emulated signal).
 */
class HotPathAllocationTest {

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    @Test
    void eventfdSignalAndDrainAllocateNothing() throws Exception {
        try (EventFd e = EventFd.create()) {
            long allocated = Long.MAX_VALUE;
            for (int round = 0; round < 15 && allocated >= 4096; round++) {
                long before = THREADS.getCurrentThreadAllocatedBytes();
                long sum = 0;
                for (int i = 0; i < 100_000; i++) {
                    e.signal();
                    sum += e.drain();
                }
                allocated = THREADS.getCurrentThreadAllocatedBytes() - before;
                assertEquals(100_000, sum);
            }
            assertTrue(allocated < 4096, allocated + " bytes allocated for 100000 signal+drain");
        }
    }

    @Test
    void theEpollThreadAllocatesNothingPerKick() throws Exception {
        try (EpollLoop loop = new EpollLoop("alloc-epoll")) {
            EventFd kick = EventFd.create();
            AtomicLong seen = new AtomicLong();
            Notifier n = new Notifier();
            n.setListener(x -> seen.incrementAndGet());
            loop.register(kick, n);
            // Steady state: rounds of kicks until one allocates (almost) nothing, as the JIT compiles the
            // loop; interpreted downcalls box. A path that allocates per kick never gets there.
            long expected = 0;
            long allocated = Long.MAX_VALUE;
            for (int round = 0; round < 15 && allocated >= 4096; round++) {
                long base = THREADS.getThreadAllocatedBytes(loop.threadId());
                for (int i = 0; i < 20_000; i++) {
                    kick.signal();
                    expected++;
                    long deadline = System.nanoTime() + 10_000_000_000L;
                    while (seen.get() < expected) {
                        Thread.onSpinWait();
                        assertTrue(System.nanoTime() < deadline, "kick " + expected + " not seen");
                    }
                }
                allocated = THREADS.getThreadAllocatedBytes(loop.threadId()) - base;
            }
            assertTrue(allocated < 4096, allocated + " bytes allocated by the epoll thread for 20000 kicks");
        }
    }
}
