package dev.loomvisor.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class NotifierTest {

    @Test
    void countAccumulatesAndAReadResetsIt() {
        var n = new Notifier();
        assertEquals(0, n.poll());
        n.signal();
        n.signal(3);
        assertTrue(n.isSignalled());
        assertEquals(4, n.poll());
        assertFalse(n.isSignalled());
        assertEquals(0, n.poll());
        assertThrows(IllegalArgumentException.class, () -> n.signal(0));
    }

    @Test
    void aSignalBeforeTheWaitIsNotLost() throws Exception {
        var n = new Notifier();
        n.signal();
        assertEquals(1, n.await(1, TimeUnit.SECONDS));
        assertEquals(0, n.await(1, TimeUnit.MILLISECONDS), "nothing left after the read");
    }

    @Test
    void listenerIsCalledOnEverySignal() {
        var n = new Notifier();
        var calls = new AtomicInteger();
        n.setListener(x -> calls.incrementAndGet());
        n.signal();
        n.signal();
        assertEquals(2, calls.get());
        n.setListener(null);
        n.signal();
        assertEquals(2, calls.get());
    }

    /** Producer and a parked virtual-thread consumer: every signal is counted, none lost, no hang. */
    @Test
    void noSignalIsLostBetweenAProducerAndAWaiter() throws Exception {
        for (int rep = 0; rep < 20; rep++) {
            var n = new Notifier();
            int signals = 20_000;
            var received = new AtomicLong();
            var done = new CountDownLatch(1);
            Thread consumer = Thread.ofVirtual().start(() -> {
                try {
                    while (received.get() < signals) {
                        received.addAndGet(n.await(10, TimeUnit.SECONDS));
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    done.countDown();
                }
            });
            for (int i = 0; i < signals; i++) {
                n.signal();
                if ((i & 255) == 0) {
                    Thread.onSpinWait();
                }
            }
            assertTrue(done.await(30, TimeUnit.SECONDS), "consumer hung at " + received.get());
            consumer.join();
            assertEquals(signals, received.get());
        }
    }
}
