package dev.loomvisor.vhost.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vmm.net.FrameLimits;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import dev.loomvisor.vhost.backend.L2Switch.Port;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;

class L2SwitchTest {

    private final UnsafeBuffer frame = new UnsafeBuffer(new byte[FrameLimits.MAX_FRAME]);

    private int frame(long dst, long src, long seq, int length) {
        Frames.writeMac(frame, Frames.DST_OFFSET, dst);
        Frames.writeMac(frame, Frames.SRC_OFFSET, src);
        frame.putShort(Frames.ETHERTYPE_OFFSET, (short) Frames.ETHERTYPE_EXPERIMENTAL, ByteOrder.BIG_ENDIAN);
        GeneratorBackend.fill(frame, length, seq);
        return length;
    }

    private static List<Long> drain(Port p) {
        List<Long> seqs = new ArrayList<>();
        p.receive((b, o, l) -> seqs.add(b.getLong(o + GeneratorBackend.SEQUENCE_OFFSET, ByteOrder.LITTLE_ENDIAN)) || true,
                Integer.MAX_VALUE);
        return seqs;
    }

    @Test
    void floodsUnknownThenLearnsAndForwardsUnicast() {
        L2Switch sw = new L2Switch(1 << 16, 64);
        Port a = sw.addPort("a");
        Port b = sw.addPort("b");
        Port c = sw.addPort("c");
        long macA = Frames.localMac(1);
        long macB = Frames.localMac(2);
        assertTrue(a.transmit(frame, 0, frame(macB, macA, 1, 64)));
        assertEquals(List.of(1L), drain(b), "unknown destination flooded");
        assertEquals(List.of(1L), drain(c));
        assertEquals(0, sw.lookup(macA), "source learned");
        assertTrue(b.transmit(frame, 0, frame(macA, macB, 2, 64)));
        assertEquals(List.of(2L), drain(a), "learned destination: unicast");
        assertEquals(List.of(), drain(c), "not flooded");
        assertTrue(a.transmit(frame, 0, frame(macB, macA, 3, 64)));
        assertEquals(List.of(3L), drain(b));
        assertEquals(List.of(), drain(c));
        assertEquals(1, a.counters().get(PortCounter.TX_FLOODED));
    }

    @Test
    void aFullQueueDropsAndCountsAgainstTheSender() {
        L2Switch sw = new L2Switch(4096, 64);
        Port a = sw.addPort("a");
        Port b = sw.addPort("b");
        long macA = Frames.localMac(1);
        long macB = Frames.localMac(2);
        b.transmit(frame, 0, frame(macA, macB, 0, 64)); // learn B
        drain(a);
        int accepted = 0;
        int sent = 200;
        for (int i = 0; i < sent; i++) {
            if (a.transmit(frame, 0, frame(macB, macA, i, 100))) {
                accepted++;
            }
        }
        assertTrue(accepted > 0 && accepted < sent, "some fit, some dropped: " + accepted);
        assertEquals(sent - accepted, a.counters().get(PortCounter.TX_DROP_QUEUE_FULL));
        List<Long> got = drain(b);
        assertEquals(accepted, got.size());
        for (int i = 0; i < got.size(); i++) {
            assertEquals(i, got.get(i), "FIFO, the first ones kept");
        }
        assertEquals(accepted, b.counters().get(PortCounter.RX_FRAMES));
    }

    @Test
    void aReceiverThatLeavesAFrameGetsItAgainNextTime() {
        L2Switch sw = new L2Switch(1 << 16, 64);
        Port a = sw.addPort("a");
        Port b = sw.addPort("b");
        for (int i = 0; i < 5; i++) {
            a.transmit(frame, 0, frame(Frames.localMac(2), Frames.localMac(1), i, 64));
        }
        AtomicInteger budget = new AtomicInteger(2);
        List<Long> seqs = new ArrayList<>();
        int n = b.receive((buf, o, l) -> {
            if (budget.getAndDecrement() <= 0) {
                return false;
            }
            seqs.add(buf.getLong(o + GeneratorBackend.SEQUENCE_OFFSET, ByteOrder.LITTLE_ENDIAN));
            return true;
        }, 10);
        assertEquals(2, n);
        assertTrue(b.rxPending());
        seqs.addAll(drain(b));
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L), seqs);
        assertFalse(b.rxPending());
    }

    /** Regression: one Agrona read stops at the buffer's end; receive must go on past the wrap. */
    @Test
    void receiveReadsAcrossTheQueueWrap() {
        L2Switch sw = new L2Switch(4096, 64);
        Port a = sw.addPort("a");
        Port b = sw.addPort("b");
        long next = 0;
        long expected = 0;
        for (int round = 0; round < 50; round++) {
            for (int i = 0; i < 7; i++) {
                assertTrue(a.transmit(frame, 0, frame(Frames.localMac(2), Frames.localMac(1), next++, 200)));
            }
            List<Long> got = drain(b);
            assertEquals(7, got.size(), "round " + round + ": every queued frame in one receive");
            for (long s : got) {
                assertEquals(expected++, s);
            }
        }
    }

    @Test
    void runtsAndSamePortAreDroppedByReason() {
        L2Switch sw = new L2Switch(1 << 16, 64);
        Port a = sw.addPort("a");
        sw.addPort("b");
        assertFalse(a.transmit(frame, 0, 10));
        assertEquals(1, a.counters().get(PortCounter.TX_DROP_RUNT));
        a.transmit(frame, 0, frame(Frames.localMac(9), Frames.localMac(1), 0, 64));
        assertFalse(a.transmit(frame, 0, frame(Frames.localMac(1), Frames.localMac(1), 0, 64)));
        assertEquals(1, a.counters().get(PortCounter.TX_DROP_SAME_PORT));
    }

    @Test
    void anArrivingFrameWakesTheRxListener() {
        L2Switch sw = new L2Switch(1 << 16, 64);
        Port a = sw.addPort("a");
        Port b = sw.addPort("b");
        AtomicInteger wakes = new AtomicInteger();
        b.setRxListener(wakes::incrementAndGet);
        assertEquals(0, wakes.get(), "nothing pending: no call on install");
        a.transmit(frame, 0, frame(Frames.localMac(2), Frames.localMac(1), 0, 64));
        a.transmit(frame, 0, frame(Frames.localMac(2), Frames.localMac(1), 1, 64));
        assertEquals(0, wakes.get(), "wake-ups wait for the end of the sender's batch");
        a.flushTransmit();
        assertEquals(1, wakes.get(), "one wake-up per batch");
        a.flushTransmit();
        assertEquals(1, wakes.get());
        b.setRxListener(null);
        b.setRxListener(wakes::incrementAndGet);
        assertEquals(2, wakes.get(), "installed on a readable port: called at once");
    }

    private static List<Long> drain(L2Switch.PortQueue q) {
        List<Long> seqs = new ArrayList<>();
        q.receive((b, o, l) -> seqs.add(b.getLong(o + GeneratorBackend.SEQUENCE_OFFSET, ByteOrder.LITTLE_ENDIAN)) || true,
                Integer.MAX_VALUE);
        return seqs;
    }

    @Test
    void aMultiqueuePortSteersSenderQueueKToQueueKModN() {
        L2Switch sw = new L2Switch(1 << 16, 64);
        Port a = sw.addPort("a", 4);
        Port b = sw.addPort("b", 2);
        Port c = sw.addPort("c");
        long macA = Frames.localMac(1);
        long macB = Frames.localMac(2);
        long macC = Frames.localMac(3);
        sw.learn(macA, a);
        sw.learn(macB, b);
        sw.learn(macC, c);
        AtomicInteger[] wakes = {new AtomicInteger(), new AtomicInteger()};
        b.queue(0).setRxListener(wakes[0]::incrementAndGet);
        b.queue(1).setRxListener(wakes[1]::incrementAndGet);
        for (int k = 0; k < 4; k++) {
            assertTrue(a.queue(k).transmit(frame, 0, frame(macB, macA, k, 64)));
            a.queue(k).flushTransmit();
        }
        assertEquals(List.of(0L, 2L), drain(b.queue(0)), "queues 0 and 2 of a land in queue 0 of b");
        assertEquals(List.of(1L, 3L), drain(b.queue(1)));
        assertEquals(2, wakes[0].get(), "each sender queue woke the queue it filled, once per batch");
        assertEquals(2, wakes[1].get());
        // Any queue of b into c's one queue; c into queue 0 of a.
        assertTrue(b.queue(1).transmit(frame, 0, frame(macC, macB, 7, 64)));
        assertEquals(List.of(7L), drain(c));
        assertTrue(c.transmit(frame, 0, frame(macA, macC, 8, 64)));
        assertEquals(List.of(8L), drain(a.queue(0)));
        for (int k = 1; k < 4; k++) {
            assertEquals(List.of(), drain(a.queue(k)));
        }
        // The port's counters sum its queues.
        assertEquals(4, a.counters().get(PortCounter.TX_FRAMES));
        assertEquals(4, b.counters().get(PortCounter.RX_FRAMES));
        b.queue(1).flushTransmit();
        assertEquals(1, b.counters().get(PortCounter.TX_FRAMES), "published at the end of queue 1's batch");
        assertEquals(1, b.counters().get(PortCounter.TX_DELIVERED));
    }

    @Test
    void removingAMultiqueuePortDiscardsEveryQueue() {
        L2Switch sw = new L2Switch(1 << 16, 64);
        Port a = sw.addPort("a");
        Port b = sw.addPort("b", 3);
        sw.learn(Frames.localMac(2), b);
        a.transmit(frame, 0, frame(Frames.localMac(2), Frames.localMac(1), 0, 64));
        a.transmit(frame, 0, frame(Frames.localMac(2), Frames.localMac(1), 1, 64));
        a.flushTransmit();
        assertEquals(2 * 72, b.queuedBytes(), "two records of 64 + 8 bytes");
        b.close();
        assertEquals(2, b.counters().get(PortCounter.RX_DISCARDED_AT_CLOSE));
        assertEquals(0, b.queuedBytes());
    }
}
