package dev.loomvisor.vmm.virtio;

import static dev.loomvisor.vmm.virtio.SplitRing.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.testing.TestRings;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** One test per split-ring rule a device must not trust (virtio 1.2 §2.7), each at its exact boundary. */
class RingValidationTest {

    static final int N = 8;
    static final long BASE = 0x10000;
    static final long MEM = 1 << 20;

    GuestMemory memory;
    TestRings rings;
    long data;

    @BeforeEach
    void setUp() {
        memory = GuestMemory.anonymous(BASE, MEM);
        rings = new TestRings(memory, N);
        data = rings.dataAddr();
    }

    @AfterEach
    void tearDown() {
        memory.close();
    }

    DeviceQueue device() {
        return rings.device(false, true);
    }

    RingError configure(int size, long desc, long avail, long used) {
        return new DeviceQueue(0).configure(memory, size, desc, avail, used, false, false);
    }

    /** Pops one chain and returns the error: NONE on success, null when nothing was available. */
    static RingError pop(DeviceQueue q, DescriptorChain c) {
        boolean got = q.nextAvail(c);
        if (got) {
            return RingError.NONE;
        }
        return q.isBroken() ? q.error() : null;
    }

    RingError popOne(DeviceQueue q) {
        return pop(q, q.newChain());
    }

    // Sizes and alignment (virtio 1.2 §2.7, §2.7.1).

    @Test
    void queueSizeZeroRejected() {
        assertEquals(RingError.QUEUE_SIZE_ZERO, configure(0, BASE, BASE + 0x1000, BASE + 0x2000));
    }

    @Test
    void queueSizeMaximumAcceptedOneAboveRejected() {
        try (GuestMemory big = GuestMemory.anonymous(0, 2 << 20)) {
            long desc = 0, avail = descTableSize(32768), used = 0x100000;
            DeviceQueue q = new DeviceQueue(0);
            assertEquals(RingError.NONE, q.configure(big, 32768, desc, avail, used, false, false));
            assertEquals(RingError.QUEUE_SIZE_TOO_LARGE,
                    new DeviceQueue(0).configure(big, 65536, desc, avail, used, false, false));
            assertEquals(RingError.QUEUE_SIZE_TOO_LARGE,
                    new DeviceQueue(0).configure(big, 32769, desc, avail, used, false, false));
        }
    }

    @Test
    void queueSizeNotPowerOfTwoRejected() {
        assertEquals(RingError.NONE, configure(1, BASE, BASE + 0x1000, BASE + 0x2000));
        assertEquals(RingError.NONE, configure(2, BASE, BASE + 0x1000, BASE + 0x2000));
        assertEquals(RingError.QUEUE_SIZE_NOT_POWER_OF_TWO, configure(3, BASE, BASE + 0x1000, BASE + 0x2000));
        assertEquals(RingError.QUEUE_SIZE_NOT_POWER_OF_TWO, configure(24, BASE, BASE + 0x1000, BASE + 0x2000));
    }

    @Test
    void misalignedRingsRejected() {
        assertEquals(RingError.NONE, configure(N, BASE + 16, BASE + 0x1002, BASE + 0x2004));
        assertEquals(RingError.DESC_TABLE_MISALIGNED, configure(N, BASE + 8, BASE + 0x1000, BASE + 0x2000));
        assertEquals(RingError.AVAIL_RING_MISALIGNED, configure(N, BASE, BASE + 0x1001, BASE + 0x2000));
        assertEquals(RingError.USED_RING_MISALIGNED, configure(N, BASE, BASE + 0x1000, BASE + 0x2002));
    }

    @Test
    void ringEndingAtRegionEndAcceptedOneBytePastRejected() {
        long end = BASE + MEM;
        long avail = end - availRingSize(N);
        assertEquals(RingError.NONE, configure(N, BASE, avail, BASE + 0x2000));
        assertEquals(RingError.RING_OUTSIDE_MEMORY, configure(N, BASE, avail + 2, BASE + 0x2000));
        assertEquals(RingError.RING_OUTSIDE_MEMORY, configure(N, BASE - 16, BASE + 0x1000, BASE + 0x2000));
        assertEquals(RingError.RING_OUTSIDE_MEMORY, configure(N, -16L, BASE + 0x1000, BASE + 0x2000));
    }

    // avail.idx (virtio 1.2 §2.7.6.1, §2.7.13).

    @Test
    void availIdxNAheadAcceptedNPlusOneRejected() {
        for (int i = 0; i < N; i++) {
            rings.desc(i, data + 64L * i, 64, 0, 0);
            rings.availRing(i, i);
        }
        rings.availIdx(N);
        DeviceQueue q = device();
        DescriptorChain c = q.newChain();
        for (int i = 0; i < N; i++) {
            assertTrue(q.nextAvail(c), "chain " + i);
            assertEquals(i, c.head());
        }
        assertFalse(q.nextAvail(c));
        assertFalse(q.isBroken());

        DeviceQueue q2 = device();
        rings.availIdx(N + 1);
        assertEquals(RingError.AVAIL_IDX_TOO_FAR_AHEAD, popOne(q2));
    }

    @Test
    void availIdxDecrementRejected() {
        rings.desc(0, data, 64, 0, 0);
        rings.pushAvail(0);
        DeviceQueue q = device();
        assertEquals(RingError.NONE, popOne(q));
        rings.availIdx(0); // went backwards: 0 - 1 = 65535 ahead
        assertEquals(RingError.AVAIL_IDX_TOO_FAR_AHEAD, popOne(q));
    }

    // Indexes and chain length (virtio 1.2 §2.7.5, §2.7.5.2).

    @Test
    void headIndexBelowNAcceptedNRejected() {
        rings.desc(N - 1, data, 64, 0, 0);
        rings.pushAvail(N - 1);
        rings.pushAvail(N);
        DeviceQueue q = device();
        assertEquals(RingError.NONE, popOne(q));
        assertEquals(RingError.HEAD_OUT_OF_RANGE, popOne(q));
    }

    @Test
    void nextIndexBelowNAcceptedNRejected() {
        rings.desc(0, data, 64, DESC_F_NEXT, N - 1);
        rings.desc(N - 1, data, 64, 0, 0);
        rings.desc(1, data, 64, DESC_F_NEXT, N);
        rings.pushAvail(0);
        rings.pushAvail(1);
        DeviceQueue q = device();
        assertEquals(RingError.NONE, popOne(q));
        assertEquals(RingError.NEXT_OUT_OF_RANGE, popOne(q));
    }

    @Test
    void chainOfNAcceptedLoopVisitingNPlusOneRejected() {
        for (int i = 0; i < N; i++) {
            rings.desc(i, data + i, 1, i < N - 1 ? DESC_F_NEXT : 0, i + 1);
        }
        rings.pushAvail(0);
        DeviceQueue q = device();
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(N, c.segmentCount());

        rings.desc(N - 1, data, 1, DESC_F_NEXT, 0); // the last now loops back to the head
        rings.pushAvail(0);
        assertEquals(RingError.CHAIN_TOO_LONG, pop(q, c));
    }

    @Test
    void chainTotallingBelow2To32AcceptedAt2To32Rejected() {
        // Lengths add up across descriptors that may overlap, so one sparse 2 GiB region suffices.
        try (GuestMemory big = GuestMemory.builder().memfd(0, Integer.MAX_VALUE, "chain-total").build()) {
            TestRings r = new TestRings(big, N, 0x1000);
            long max = Integer.MAX_VALUE; // 2^31 - 1; two of them are 2^32 - 2
            r.desc(0, 0, max, DESC_F_NEXT, 1);
            r.desc(1, 0, max, DESC_F_NEXT, 2);
            r.desc(2, 0, 1, 0, 0); // total 2^32 - 1
            r.desc(3, 0, max, DESC_F_NEXT, 4);
            r.desc(4, 0, max, DESC_F_NEXT, 5);
            r.desc(5, 0, 2, 0, 0); // total 2^32
            r.pushAvail(0);
            r.pushAvail(3);
            DeviceQueue q = r.device(false, false);
            DescriptorChain c = q.newChain();
            assertTrue(q.nextAvail(c));
            assertEquals((1L << 32) - 1, c.readableLength());
            assertEquals(RingError.CHAIN_TOO_BIG, pop(q, c));
        }
    }

    // Addresses: every buffer lies in guest memory; a chain totals less than 2^32 bytes (virtio 1.2 §2.7.5.2).

    @Test
    void bufferEndingAtRegionEndAcceptedOneBytePastRejected() {
        long end = BASE + MEM;
        rings.desc(0, end - 100, 100, 0, 0);
        rings.desc(1, end - 100, 101, 0, 0);
        rings.desc(2, BASE - 1, 2, 0, 0);
        rings.pushAvail(0);
        rings.pushAvail(1);
        DeviceQueue q = device();
        assertEquals(RingError.NONE, popOne(q));
        assertEquals(RingError.DESC_OUTSIDE_MEMORY, popOne(q));
        DeviceQueue q2 = new TestRings(memory, N).device(false, false);
        rings.desc(2, BASE - 1, 2, 0, 0);
        rings.pushAvail(2);
        assertEquals(RingError.DESC_OUTSIDE_MEMORY, popOne(q2));
    }

    @Test
    void addressPlusLengthOverflowRejected() {
        rings.desc(0, -0x10L, 0x10, 0, 0); // ends exactly at 2^64: wraps
        rings.pushAvail(0);
        assertEquals(RingError.ADDRESS_OVERFLOW, popOne(device()));
        rings.desc(0, -0x10L, 0xf, 0, 0); // ends at 2^64 - 1: no wrap, but not guest memory
        rings.availIdx(0);
        rings.pushAvail(0);
        assertEquals(RingError.DESC_OUTSIDE_MEMORY, popOne(device()));
    }

    // Indirect tables (virtio 1.2 §2.7.5.3, §2.7.5.3.1, §2.7.5.3.2).

    long table() {
        return data + 0x8000;
    }

    @Test
    void indirectWithoutFeatureRejected() {
        rings.indirectDesc(table(), 0, data, 64, 0, 0);
        rings.desc(0, table(), 16, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertEquals(RingError.INDIRECT_NOT_NEGOTIATED, popOne(rings.device(false, false)));
        assertEquals(RingError.NONE, popOne(rings.device(false, true)));
    }

    @Test
    void nestedIndirectRejected() {
        rings.indirectDesc(table(), 0, table() + 0x100, 16, DESC_F_INDIRECT, 0);
        rings.indirectDesc(table() + 0x100, 0, data, 64, 0, 0);
        rings.desc(0, table(), 16, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertEquals(RingError.INDIRECT_NESTED, popOne(device()));
    }

    @Test
    void indirectLengthMultipleOf16AcceptedOtherwiseRejected() {
        rings.indirectDesc(table(), 0, data, 64, 0, 0);
        rings.desc(0, table(), 16, DESC_F_INDIRECT, 0);
        rings.desc(1, table(), 17, DESC_F_INDIRECT, 0);
        rings.desc(2, table(), 0, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        rings.pushAvail(1);
        DeviceQueue q = device();
        assertEquals(RingError.NONE, popOne(q));
        assertEquals(RingError.INDIRECT_BAD_LENGTH, popOne(q));
        rings.availIdx(0);
        rings.pushAvail(2);
        assertEquals(RingError.INDIRECT_BAD_LENGTH, popOne(device()));
    }

    @Test
    void indirectLongerThanTheQueueAcceptedUpToTheBoundOneMoreRejected() {
        int max = DescriptorChain.MAX_INDIRECT_ENTRIES;
        for (int i = 0; i <= max; i++) {
            rings.indirectDesc(table(), i, data + i, 1, i < max - 1 ? DESC_F_NEXT : 0, i + 1);
        }
        rings.desc(0, table(), 16L * max, DESC_F_INDIRECT, 0);
        rings.desc(1, table(), 16L * (max + 1), DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        rings.pushAvail(1);
        DeviceQueue q = device();
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c), "a table of " + max + " entries on a queue of " + N);
        assertEquals(max, c.segmentCount());
        assertEquals(data + max - 1, c.segmentAddress(max - 1));
        assertEquals(RingError.INDIRECT_TOO_LARGE, pop(q, c));
    }

    @Test
    void directPrefixKeptWhenAnIndirectTableAtTheBoundGrowsTheChain() {
        int max = DescriptorChain.MAX_INDIRECT_ENTRIES;
        for (int i = 0; i < N - 1; i++) {
            rings.desc(i, data + 0x4000 + i, 1, DESC_F_NEXT, i + 1);
        }
        rings.desc(N - 1, table(), 16L * max, DESC_F_INDIRECT, 0);
        for (int i = 0; i < max; i++) {
            rings.indirectDesc(table(), i, data + i, 1, i < max - 1 ? DESC_F_NEXT : 0, i + 1);
        }
        rings.pushAvail(0);
        DeviceQueue q = device();
        DescriptorChain c = q.newChain();
        assertTrue(c.capacity() < N - 1 + max, "the chain has to grow");
        assertEquals(RingError.NONE, pop(q, c));
        assertEquals(N - 1 + max, c.segmentCount());
        for (int i = 0; i < N - 1; i++) {
            assertEquals(data + 0x4000 + i, c.segmentAddress(i), "direct descriptor " + i + " survived the growth");
        }
        assertEquals(data + max - 1, c.segmentAddress(N - 2 + max));
    }

    @Test
    void loopInsideAnIndirectTableAtTheBoundRejected() {
        int max = DescriptorChain.MAX_INDIRECT_ENTRIES;
        for (int i = 0; i < max; i++) {
            rings.indirectDesc(table(), i, data + i, 1, DESC_F_NEXT, (i + 1) % max);
        }
        rings.desc(0, table(), 16L * max, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertEquals(RingError.CHAIN_TOO_LONG, popOne(device()));
    }

    @Test
    void loopInsideIndirectTableRejected() {
        rings.indirectDesc(table(), 0, data, 1, DESC_F_NEXT, 1);
        rings.indirectDesc(table(), 1, data, 1, DESC_F_NEXT, 0);
        rings.desc(0, table(), 32, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertEquals(RingError.CHAIN_TOO_LONG, popOne(device()));
    }

    @Test
    void indirectNextIndexOutsideTableRejected() {
        rings.indirectDesc(table(), 0, data, 1, DESC_F_NEXT, 2); // table has 2 entries
        rings.desc(0, table(), 32, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertEquals(RingError.NEXT_OUT_OF_RANGE, popOne(device()));
    }

    @Test
    void indirectTogetherWithNextRejected() {
        rings.indirectDesc(table(), 0, data, 64, 0, 0);
        rings.desc(0, table(), 16, DESC_F_INDIRECT | DESC_F_NEXT, 1);
        rings.desc(1, data, 64, 0, 0);
        rings.pushAvail(0);
        assertEquals(RingError.INDIRECT_WITH_NEXT, popOne(device()));
    }

    @Test
    void indirectTableOutsideMemoryRejected() {
        rings.desc(0, BASE + MEM - 16, 32, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertEquals(RingError.INDIRECT_OUTSIDE_MEMORY, popOne(device()));
    }

    @Test
    void writeFlagOnIndirectDescriptorIgnored() {
        rings.indirectDesc(table(), 0, data, 64, 0, 0);
        rings.desc(0, table(), 16, DESC_F_INDIRECT | DESC_F_WRITE, 0);
        rings.pushAvail(0);
        DeviceQueue q = device();
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(1, c.readableCount());
        assertEquals(0, c.writableCount());
    }

    @Test
    void directDescriptorsThenOneIndirectWork() {
        rings.desc(3, data, 10, DESC_F_NEXT, 5);
        rings.desc(5, data + 10, 20, DESC_F_NEXT, 6);
        rings.desc(6, table(), 32, DESC_F_INDIRECT, 0);
        rings.indirectDesc(table(), 0, data + 30, 30, DESC_F_NEXT, 1);
        rings.indirectDesc(table(), 1, data + 100, 40, DESC_F_WRITE, 0);
        rings.pushAvail(3);
        DeviceQueue q = device();
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(3, c.head());
        assertEquals(3, c.readableCount());
        assertEquals(1, c.writableCount());
        assertEquals(60, c.readableLength());
        assertEquals(40, c.writableLength());
        assertEquals(data + 100, c.segmentAddress(3));
    }

    // Direction (virtio 1.2 §2.7.4.2; TX buffers are output only, §5.1.6.2).

    @Test
    void readableAfterWritableRejected() {
        rings.desc(0, data, 10, DESC_F_NEXT, 1);
        rings.desc(1, data, 10, DESC_F_NEXT | DESC_F_WRITE, 2);
        rings.desc(2, data, 10, DESC_F_WRITE, 0);
        rings.desc(3, data, 10, DESC_F_NEXT | DESC_F_WRITE, 4);
        rings.desc(4, data, 10, 0, 0);
        rings.pushAvail(0);
        rings.pushAvail(3);
        DeviceQueue q = device();
        assertEquals(RingError.NONE, popOne(q));
        assertEquals(RingError.READABLE_AFTER_WRITABLE, popOne(q));
    }

    @Test
    void writableOnTxRejected() {
        rings.desc(0, data, 10, DESC_F_NEXT, 1);
        rings.desc(1, data, 10, 0, 0);
        rings.desc(2, data, 10, DESC_F_NEXT, 3);
        rings.desc(3, data, 10, DESC_F_WRITE, 0);
        rings.pushAvail(0);
        rings.pushAvail(2);
        DeviceQueue q = device();
        q.setDeviceWritableAllowed(false);
        assertEquals(RingError.NONE, popOne(q));
        assertEquals(RingError.WRITABLE_ON_READ_ONLY_QUEUE, popOne(q));
    }

    // Used ids (virtio 1.2 §2.7.8).

    @Test
    void usedIdBelowNAcceptedNRejected() {
        DeviceQueue q = device();
        assertTrue(q.addUsed(N - 1, 0));
        assertFalse(q.addUsed(N, 0));
        assertEquals(RingError.USED_ID_OUT_OF_RANGE, q.error());
        assertEquals(1, rings.usedIdx(), "the bad element was not published");
    }

    @Test
    void chainMadeForASmallerQueueGrowsInsteadOfFailing() {
        DescriptorChain c = new DeviceQueue(1).newChain(); // capacity 2
        for (int i = 0; i < N; i++) {
            rings.desc(i, data + i, 1, i < N - 1 ? DESC_F_NEXT : 0, i + 1);
        }
        rings.pushAvail(0);
        DeviceQueue q = device();
        assertTrue(q.nextAvail(c));
        assertEquals(N, c.segmentCount());
        assertTrue(c.capacity() >= 2 * N);
    }

    // Wrap and breakage.

    @Test
    void indexesWrapFrom65535To0() {
        rings.availIdx(65533);
        rings.usedIdx(65533);
        DriverQueue driver = rings.driver(false);
        DeviceQueue q = device();
        q.setLastAvail(65533);
        q.configure(memory, N, rings.descAddr(), rings.availAddr(), rings.usedAddr(), false, true);
        DescriptorChain c = q.newChain();
        UsedElement u = new UsedElement();
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 5; i++) {
                assertTrue(driver.add(data + i, 1, true, 1000 * round + i) >= 0);
            }
            driver.publish();
            for (int i = 0; i < 5; i++) {
                assertTrue(q.nextAvail(c), "round " + round + " chain " + i);
                assertTrue(q.addUsed(c.head(), 1));
            }
            assertFalse(q.nextAvail(c));
            for (int i = 0; i < 5; i++) {
                assertTrue(driver.reap(u));
                assertEquals(1000 * round + i, u.cookie());
            }
            assertFalse(driver.reap(u));
        }
        assertEquals((65533 + 15) & 0xffff, q.lastAvail());
        assertEquals((65533 + 15) & 0xffff, rings.usedIdx());
        assertFalse(q.isBroken());
    }

    @Test
    void brokenQueueStaysBrokenCountsAndTellsOnceOtherQueuesGoOn() {
        TestRings other = new TestRings(memory, N, BASE + 0x40000);
        other.desc(0, data, 64, 0, 0);
        other.pushAvail(0);
        rings.pushAvail(N);
        rings.pushAvail(0);
        DeviceQueue bad = device();
        DeviceQueue good = other.device(false, false);
        List<RingError> told = new ArrayList<>();
        bad.setBrokenListener((q, e) -> told.add(e));
        DescriptorChain c = bad.newChain();
        assertFalse(bad.nextAvail(c));
        assertFalse(bad.nextAvail(c));
        assertFalse(bad.addUsed(0, 0));
        assertFalse(bad.enableNotifications());
        assertFalse(bad.needsInterrupt());
        assertTrue(bad.isBroken());
        assertEquals(List.of(RingError.HEAD_OUT_OF_RANGE), told);
        assertEquals(1, bad.errorCount(RingError.HEAD_OUT_OF_RANGE));
        assertEquals(1, bad.errorCount());
        assertTrue(good.nextAvail(c));
        assertTrue(good.addUsed(c.head(), 0));
        bad.reset();
        assertFalse(bad.isBroken());
        assertEquals(RingError.NONE, bad.error());
    }
    @Test
    void usedEntriesStagedBeforeABreakArePublished() {
        // Two chains popped and returned (their frames went out), then the guest breaks the ring in the
        // same run: the two used entries must still reach the driver.
        rings.desc(0, data, 64, 0, 0);
        rings.desc(1, data + 64, 64, 0, 0);
        rings.pushAvail(0);
        rings.pushAvail(1);
        rings.pushAvail(N + 1); // head out of range
        DeviceQueue q = device();
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertTrue(q.stageUsed(c.head(), 0));
        assertTrue(q.nextAvail(c));
        assertTrue(q.stageUsed(c.head(), 0));
        assertFalse(q.nextAvail(c));
        assertEquals(RingError.HEAD_OUT_OF_RANGE, q.error());
        assertEquals(2, rings.usedIdx(), "used entries staged before the break are published");
        assertEquals(0, rings.usedId(0));
        assertEquals(1, rings.usedId(1));
    }
}
