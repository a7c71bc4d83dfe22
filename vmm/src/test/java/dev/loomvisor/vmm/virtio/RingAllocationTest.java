package dev.loomvisor.vmm.virtio;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.RxPlacement;
import dev.loomvisor.vmm.net.RxResult;
import dev.loomvisor.vmm.testing.TestRings;
import java.lang.management.ManagementFactory;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/**
 * The hot path allocates nothing per frame: driver add/publish/kick decision, device pop, copy out, copy in,
 * add used (single and batched), interrupt decision, notification toggling, reap, and MRG_RXBUF placement.
 * Measured with the JVM's per-thread allocation counter after a warm-up.
 */
class RingAllocationTest {

    static final int FRAMES = 200_000;

    static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    @Test
    void steadyStateRoundTripsAllocateNothing() {
        try (GuestMemory m = GuestMemory.anonymous(0x100000, 2 << 20)) {
            TestRings tx = new TestRings(m, 256, 0x100000);
            TestRings rx = new TestRings(m, 256, 0x140000);
            DriverQueue txd = tx.driver(true);
            DeviceQueue txq = tx.device(true, true);
            DriverQueue rxd = rx.driver(true);
            DeviceQueue rxq = rx.device(true, true);
            RxPlacement placement = new RxPlacement(rxq, true);
            DescriptorChain c = txq.newChain();
            UsedElement u = new UsedElement();
            UnsafeBuffer frame = new UnsafeBuffer(new byte[4096]);
            long buf = 0x180000;
            long[] addrs = {buf, buf + 12};
            int[] lens = {12, 1500};
            round(txd, txq, rxd, placement, c, u, frame, addrs, lens, FRAMES); // warm-up, JIT
            long before = allocated();
            round(txd, txq, rxd, placement, c, u, frame, addrs, lens, FRAMES);
            long bytes = allocated() - before;
            assertFalse(txq.isBroken());
            assertFalse(rxq.isBroken());
            // 0 B per frame; a few hundred bytes of slack for the JIT's own bookkeeping on this thread.
            assertTrue(bytes < 1024, bytes + " bytes allocated over " + FRAMES + " frames");
        }
    }

    static void round(DriverQueue txd, DeviceQueue txq, DriverQueue rxd, RxPlacement placement, DescriptorChain c,
                      UsedElement u, UnsafeBuffer frame, long[] addrs, int[] lens, int frames) {
        long rxBuf = 0x1c0000;
        for (int i = 0; i < frames; i++) {
            // Driver: post an RX buffer and a two-descriptor TX chain (header + frame).
            rxd.add(rxBuf, 1526, true, i);
            if (rxd.publishAndCheckKick()) {
                rxd.availIdx();
            }
            txd.add(addrs, lens, 2, 0, i);
            txd.publishAndCheckKick();
            // Device: pop TX with kicks off, copy the frame out, complete it, place it on RX, decide interrupts.
            txq.disableNotifications();
            assertTrue(txq.nextAvail(c));
            int n = c.readReadable(12, frame, 0, 1500);
            txq.stageUsed(c.head(), 0);
            txq.publishUsed();
            txq.needsInterrupt();
            txq.enableNotifications();
            assertEquals(RxResult.DELIVERED, placement.place(frame, 0, n));
            placement.queue().publishUsed();
            placement.queue().needsInterrupt();
            // Driver: reap both.
            assertTrue(txd.reap(u));
            assertTrue(rxd.reap(u));
            rxd.enableInterrupts();
        }
    }
}
