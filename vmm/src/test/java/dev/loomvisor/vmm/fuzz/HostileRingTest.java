package dev.loomvisor.vmm.fuzz;

import static dev.loomvisor.vmm.fuzz.GuardedGuest.A;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.A_SIZE;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.B;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.B_SIZE;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.C;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.C_SIZE;
import static dev.loomvisor.vmm.virtio.SplitRing.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.net.DeviceStatus;
import dev.loomvisor.vmm.net.MmioTransport;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import dev.loomvisor.vmm.testing.TestRings;
import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.RingError;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Crafted hostile rings, one per attack of issue 8, in the fuzz target's guarded memory (regions A and B
 * with an unmapped gap, a sparse 2 GiB region C, guard bands around each). Each asserts the exact declared
 * {@link RingError}, that the queue is broken and told its listener once, that a broken queue does nothing
 * more, that no guard byte changed, and that a reset queue serves a repaired ring again; then, as a queue of
 * a virtio-net device, that the device sets NEEDS_RESET and raises a config interrupt (virtio 1.2 §2.1.2)
 * while its other queue goes on.
 */
class HostileRingTest {

    static final int N = 8;

    static GuardedGuest g;
    TestRings rings;
    long data;
    long table;
    final List<RingError> told = new ArrayList<>();

    @BeforeAll
    static void memory() {
        g = new GuardedGuest();
    }

    @AfterAll
    static void free() {
        g.close();
    }

    @BeforeEach
    void setUp() {
        rings = new TestRings(g.memory, N, A);
        data = rings.dataAddr();
        table = data + 0x4000;
        told.clear();
    }

    DeviceQueue queue(boolean tx) {
        DeviceQueue q = rings.device(false, true);
        q.setDeviceWritableAllowed(!tx);
        q.setBrokenListener((qq, e) -> told.add(e));
        return q;
    }

    /**
     * Pops with a fresh queue (RX unless {@code tx}) and asserts that the ring breaks with exactly
     * {@code expected}; then the same ring as queue 0 (RX) or 1 (TX) of a virtio-net device.
     */
    void assertRejected(RingError expected, boolean tx) {
        DeviceQueue q = queue(tx);
        DescriptorChain c = q.newChain();
        assertFalse(q.nextAvail(c), "popped a hostile chain");
        assertBroken(q, expected);
        assertDeviceNeedsReset(expected, tx);
    }

    /**
     * Through a virtio-net device brought up over mmio: the hostile ring is the RX or TX queue, a good ring
     * the other. The break sets NEEDS_RESET and raises a config interrupt (virtio 1.2 §2.1.2), the
     * other queue goes on, and a device reset clears it all.
     */
    void assertDeviceNeedsReset(RingError expected, boolean tx) {
        TestRings other = new TestRings(g.memory, N, A + 0x8000);
        other.desc(0, other.dataAddr(), 64, tx ? DESC_F_WRITE : 0, 0);
        other.pushAvail(0);
        VirtioNetDevice dev = new VirtioNetDevice(g.memory, new byte[] {0x52, 0x54, 0, 1, 2, 3}, 1, 256,
                NetFeatures.VERSION_1 | NetFeatures.INDIRECT_DESC);
        MmioTransport mmio = new MmioTransport(dev);
        mmio.write(MmioTransport.STATUS, DeviceStatus.ACKNOWLEDGE);
        mmio.write(MmioTransport.STATUS, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
        long features = NetFeatures.VERSION_1 | NetFeatures.INDIRECT_DESC;
        mmio.write(MmioTransport.DRIVER_FEATURES_SEL, 0);
        mmio.write(MmioTransport.DRIVER_FEATURES, (int) features);
        mmio.write(MmioTransport.DRIVER_FEATURES_SEL, 1);
        mmio.write(MmioTransport.DRIVER_FEATURES, (int) (features >>> 32));
        int ok = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK;
        mmio.write(MmioTransport.STATUS, ok);
        int bad = tx ? 1 : 0;
        setUpQueue(mmio, bad, rings);
        setUpQueue(mmio, 1 - bad, other);
        mmio.write(MmioTransport.STATUS, ok | DeviceStatus.DRIVER_OK);
        assertTrue(dev.isRunning());
        assertFalse(dev.queue(bad).nextAvail(dev.queue(bad).newChain()));
        assertEquals(expected, dev.queue(bad).error());
        assertTrue((dev.status() & DeviceStatus.NEEDS_RESET) != 0, "NEEDS_RESET");
        assertTrue((mmio.read(MmioTransport.INTERRUPT_STATUS) & VirtioNetDevice.INT_CONFIG) != 0, "config interrupt");
        assertEquals(1, dev.brokenQueueCount());
        assertTrue(dev.queue(1 - bad).nextAvail(dev.queue(1 - bad).newChain()), "the other queue goes on");
        assertTrue(g.guardsIntact());
        mmio.write(MmioTransport.STATUS, 0);
        assertEquals(0, dev.status());
        assertFalse(dev.queue(bad).isBroken());
    }

    static void setUpQueue(MmioTransport mmio, int q, TestRings r) {
        mmio.write(MmioTransport.QUEUE_SEL, q);
        mmio.write(MmioTransport.QUEUE_NUM, r.size());
        mmio.write(MmioTransport.QUEUE_DESC_LOW, (int) r.descAddr());
        mmio.write(MmioTransport.QUEUE_DESC_HIGH, (int) (r.descAddr() >>> 32));
        mmio.write(MmioTransport.QUEUE_DRIVER_LOW, (int) r.availAddr());
        mmio.write(MmioTransport.QUEUE_DRIVER_HIGH, (int) (r.availAddr() >>> 32));
        mmio.write(MmioTransport.QUEUE_DEVICE_LOW, (int) r.usedAddr());
        mmio.write(MmioTransport.QUEUE_DEVICE_HIGH, (int) (r.usedAddr() >>> 32));
        mmio.write(MmioTransport.QUEUE_READY, 1);
    }

    void assertRejected(RingError expected) {
        assertRejected(expected, false);
    }

    void assertBroken(DeviceQueue q, RingError expected) {
        assertEquals(expected, q.error());
        assertTrue(q.isBroken());
        assertEquals(List.of(expected), told, "the device is told once (it then sets NEEDS_RESET)");
        assertEquals(1, q.errorCount(expected));
        int usedIdx = rings.usedIdx();
        // Broken: nothing more is popped or published until the device is reset.
        assertFalse(q.nextAvail(q.newChain()));
        assertFalse(q.addUsed(0, 0));
        assertFalse(q.hasAvail());
        assertFalse(q.enableNotifications());
        assertFalse(q.needsInterrupt());
        assertEquals(usedIdx, rings.usedIdx());
        assertEquals(1, told.size());
        assertTrue(g.guardsIntact(), "a guard band changed");
        q.reset();
        assertFalse(q.isBroken());
        assertEquals(RingError.NONE, q.error());
    }

    // Loops.

    @Test
    void descriptorPointingAtItselfIsRejected() {
        rings.desc(0, data, 1, DESC_F_NEXT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.CHAIN_TOO_LONG);
    }

    @Test
    void directDescriptorLoopIsRejected() {
        rings.desc(2, data, 1, DESC_F_NEXT, 5);
        rings.desc(5, data, 1, DESC_F_NEXT, 7);
        rings.desc(7, data, 1, DESC_F_NEXT, 2);
        rings.pushAvail(2);
        assertRejected(RingError.CHAIN_TOO_LONG);
    }

    @Test
    void descriptorLoopThroughIndirectTableIsRejected() {
        // Direct 0 -> 1 -> indirect; inside the table 0 -> 1 -> 2 -> 0.
        rings.desc(0, data, 1, DESC_F_NEXT, 1);
        rings.desc(1, table, 48, DESC_F_INDIRECT, 0);
        rings.indirectDesc(table, 0, data, 1, DESC_F_NEXT, 1);
        rings.indirectDesc(table, 1, data, 1, DESC_F_NEXT, 2);
        rings.indirectDesc(table, 2, data, 1, DESC_F_NEXT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.CHAIN_TOO_LONG);
    }

    @Test
    void indirectTablePointingBackAtTheDescriptorTableIsRejectedAsNested() {
        // The indirect table is the ring's own descriptor table: entry 0 is the INDIRECT descriptor itself.
        rings.desc(0, rings.descAddr(), 16L * N, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.INDIRECT_NESTED);
    }

    // Chain length.

    @Test
    void chainOfNPlusOneDescriptorsIsRejected() {
        // N distinct descriptors, the last leading back to the first: the N+1st visit is the violation.
        for (int i = 0; i < N; i++) {
            rings.desc(i, data + i, 1, DESC_F_NEXT, (i + 1) % N);
        }
        rings.pushAvail(0);
        assertRejected(RingError.CHAIN_TOO_LONG);
    }

    /** Past the other ring of {@link #assertDeviceNeedsReset}: room for a table of the bound plus one. */
    static final long BIG_TABLE = A + 0xA000;

    @Test
    void indirectTableOfTheBoundIsAcceptedOneMoreIsRejected() {
        int max = DescriptorChain.MAX_INDIRECT_ENTRIES;
        for (int i = 0; i <= max; i++) {
            rings.indirectDesc(BIG_TABLE, i, data + i, 1, i < max - 1 ? DESC_F_NEXT : 0, i + 1);
        }
        rings.desc(0, BIG_TABLE, 16L * max, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        DeviceQueue q = queue(false);
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c), "a Linux-sized table on a queue of " + N);
        assertEquals(max, c.segmentCount());
        assertFalse(q.isBroken());
        assertTrue(g.guardsIntact());

        rings.indirectDesc(BIG_TABLE, max - 1, data + max - 1, 1, DESC_F_NEXT, max);
        rings.desc(1, BIG_TABLE, 16L * (max + 1), DESC_F_INDIRECT, 0);
        rings.availIdx(0);
        rings.pushAvail(1);
        assertRejected(RingError.INDIRECT_TOO_LARGE);
    }

    @Test
    void loopInAnIndirectTableOfTheBoundIsStillALoop() {
        int max = DescriptorChain.MAX_INDIRECT_ENTRIES;
        for (int i = 0; i < max; i++) {
            rings.indirectDesc(BIG_TABLE, i, data + i, 1, DESC_F_NEXT, (i + 1) % max);
        }
        rings.desc(0, BIG_TABLE, 16L * max, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.CHAIN_TOO_LONG);
    }

    @Test
    void nMinusOneDirectThenAFullIndirectTableIsTheLongestChainAndIsAccepted() {
        for (int i = 0; i < N - 1; i++) {
            rings.desc(i, data + i, 1, DESC_F_NEXT, i + 1);
        }
        rings.desc(N - 1, table, 16L * N, DESC_F_INDIRECT, 0);
        for (int i = 0; i < N; i++) {
            rings.indirectDesc(table, i, data + 100 + i, 1, i < N - 1 ? DESC_F_NEXT : 0, i + 1);
        }
        rings.pushAvail(0);
        DeviceQueue q = queue(false);
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(2 * N - 1, c.segmentCount());
        assertEquals(data + 100 + N - 1, c.segmentAddress(2 * N - 2));
        assertFalse(q.isBroken());
    }

    // Indirect tables.

    @Test
    void indirectInsideIndirectIsRejected() {
        rings.indirectDesc(table, 0, data, 8, DESC_F_NEXT, 1);
        rings.indirectDesc(table, 1, table + 0x100, 16, DESC_F_INDIRECT, 0);
        rings.indirectDesc(table + 0x100, 0, data, 8, 0, 0);
        rings.desc(0, table, 32, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.INDIRECT_NESTED);
    }

    @Test
    void indirectLengthNotAMultipleOf16IsRejected() {
        for (long len : new long[] {1, 15, 17, 24, 16L * N - 1}) {
            setUp();
            rings.indirectDesc(table, 0, data, 8, 0, 0);
            rings.desc(0, table, len, DESC_F_INDIRECT, 0);
            rings.pushAvail(0);
            assertRejected(RingError.INDIRECT_BAD_LENGTH);
        }
    }

    @Test
    void indirectOfLengthZeroIsRejected() {
        rings.desc(0, table, 0, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.INDIRECT_BAD_LENGTH);
    }

    @Test
    void indirectTogetherWithNextIsRejected() {
        rings.indirectDesc(table, 0, data, 8, 0, 0);
        rings.desc(0, table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1);
        rings.desc(1, data, 8, 0, 0);
        rings.pushAvail(0);
        assertRejected(RingError.INDIRECT_WITH_NEXT);
    }

    // Lengths and addresses.

    @Test
    void chainLengthsSummingPast2To32AreRejected() {
        // Region C is 2^31 - 1 bytes: two of its whole length and 2 more bytes make exactly 2^32.
        rings.desc(0, C, C_SIZE, DESC_F_NEXT, 1);
        rings.desc(1, C, C_SIZE, DESC_F_NEXT, 2);
        rings.desc(2, data, 2, 0, 0);
        rings.pushAvail(0);
        assertRejected(RingError.CHAIN_TOO_BIG);
    }

    @Test
    void chainLengthsSummingPast2To32AcrossAnIndirectTableAreRejected() {
        rings.desc(0, C, C_SIZE, DESC_F_NEXT, 1);
        rings.desc(1, table, 32, DESC_F_INDIRECT, 0);
        rings.indirectDesc(table, 0, C, C_SIZE, DESC_F_NEXT, 1);
        rings.indirectDesc(table, 1, data, 2, 0, 0);
        rings.pushAvail(0);
        assertRejected(RingError.CHAIN_TOO_BIG);
    }

    @Test
    void chainOf2To32MinusOneBytesIsAccepted() {
        rings.desc(0, C, C_SIZE, DESC_F_NEXT, 1);
        rings.desc(1, C, C_SIZE, DESC_F_NEXT, 2);
        rings.desc(2, data, 1, 0, 0);
        rings.pushAvail(0);
        DeviceQueue q = queue(false);
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals((1L << 32) - 1, c.readableLength());
    }

    @Test
    void addressPlusLengthWrapping2To64IsRejected() {
        long[][] cases = {{-1L, 1}, {-0x10L, 0x10}, {-0x10L, 0xffffffffL}, {Long.MIN_VALUE, 0}, {-1L, 0xffffffffL}};
        RingError[] expected = {RingError.ADDRESS_OVERFLOW, RingError.ADDRESS_OVERFLOW, RingError.ADDRESS_OVERFLOW,
                RingError.DESC_OUTSIDE_MEMORY, RingError.ADDRESS_OVERFLOW};
        for (int i = 0; i < cases.length; i++) {
            // Alone (the one-descriptor fast path) and second in a chain (the walk).
            for (boolean chained : new boolean[] {false, true}) {
                setUp();
                if (chained) {
                    rings.desc(0, data, 8, DESC_F_NEXT, 1);
                    rings.desc(1, cases[i][0], cases[i][1], 0, 0);
                } else {
                    rings.desc(0, cases[i][0], cases[i][1], 0, 0);
                }
                rings.pushAvail(0);
                assertRejected(expected[i]);
            }
        }
    }

    @Test
    void indirectTableWrapping2To64IsRejected() {
        rings.desc(0, -0x20L, 0x20, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.ADDRESS_OVERFLOW);
    }

    @Test
    void descriptorsPointingIntoTheGuardRegionsAreRejected() {
        // Just before region A, straddling its start and end, just after it, the gap, straddling B's end,
        // and region C's end: every one lies (partly) in a guard band or in no region.
        long[][] cases = {{A - 1, 1}, {A - 1, 2}, {A + A_SIZE - 1, 2}, {A + A_SIZE, 1}, {A + A_SIZE + 0x1000, 16},
                {B - 16, 32}, {B + B_SIZE - 8, 16}, {C + C_SIZE - 1, 2}, {C - GuardedGuest.GUARD, 8}};
        for (long[] bad : cases) {
            for (boolean write : new boolean[] {false, true}) {
                setUp();
                rings.desc(0, bad[0], bad[1], write ? DESC_F_WRITE : 0, 0);
                rings.pushAvail(0);
                assertRejected(RingError.DESC_OUTSIDE_MEMORY);
            }
        }
    }

    @Test
    void indirectTableInTheGuardRegionIsRejected() {
        rings.desc(0, A + A_SIZE - 16, 32, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.INDIRECT_OUTSIDE_MEMORY);
        setUp();
        rings.desc(0, A - 16, 16, DESC_F_INDIRECT, 0);
        rings.pushAvail(0);
        assertRejected(RingError.INDIRECT_OUTSIDE_MEMORY);
    }

    @Test
    void zeroLengthBufferAtARegionsEndIsAcceptedAndTouchesNothing() {
        rings.desc(0, A + A_SIZE, 0, DESC_F_WRITE, 0);
        rings.pushAvail(0);
        DeviceQueue q = queue(false);
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(0, c.writeWritable(0, new org.agrona.concurrent.UnsafeBuffer(new byte[16]), 0, 16));
        assertTrue(g.guardsIntact());
    }

    // avail.idx.

    @Test
    void availIdxDecrementedAfterPopsIsRejected() {
        for (int i = 0; i < 3; i++) {
            rings.desc(i, data + 64L * i, 64, 0, 0);
            rings.pushAvail(i);
        }
        DeviceQueue q = queue(false);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 3; i++) {
            assertTrue(q.nextAvail(c));
        }
        rings.availIdx(2); // one back: 65535 ahead
        assertFalse(q.nextAvail(c));
        assertBroken(q, RingError.AVAIL_IDX_TOO_FAR_AHEAD);
    }

    @Test
    void availIdxJumpedByMoreThanQueueSizeIsRejected() {
        for (int jump : new int[] {N + 1, 2 * N, 0x8000, 0xffff}) {
            setUp();
            rings.availIdx(jump);
            assertRejected(RingError.AVAIL_IDX_TOO_FAR_AHEAD);
        }
    }

    @Test
    void availIdxJumpedByExactlyQueueSizeAcrossTheWrapIsAccepted() {
        for (int i = 0; i < N; i++) {
            rings.desc(i, data + 64L * i, 64, 0, 0);
            rings.availRing(65530 + i, i);
        }
        rings.availIdx((65530 + N) & 0xffff);
        DeviceQueue q = queue(false);
        q.setLastAvail(65530);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < N; i++) {
            assertTrue(q.nextAvail(c), "chain " + i);
        }
        assertFalse(q.nextAvail(c));
        assertFalse(q.isBroken());
    }

    // Direction.

    @Test
    void writeOnlyDescriptorBeforeAReadOnlyOneInATxChainIsRejected() {
        rings.desc(0, data, 12, DESC_F_WRITE | DESC_F_NEXT, 1);
        rings.desc(1, data + 64, 64, 0, 0);
        rings.pushAvail(0);
        // On TX the device-writable descriptor is itself the violation, before the order is.
        assertRejected(RingError.WRITABLE_ON_READ_ONLY_QUEUE, true);
        // On RX the order is.
        told.clear();
        assertRejected(RingError.READABLE_AFTER_WRITABLE, false);
    }

    @Test
    void writeOnlyDescriptorInsideATxIndirectTableIsRejected() {
        rings.desc(0, data, 12, DESC_F_NEXT, 1);
        rings.desc(1, table, 32, DESC_F_INDIRECT | DESC_F_WRITE, 0); // WRITE on the table itself is ignored
        rings.indirectDesc(table, 0, data + 64, 64, DESC_F_NEXT, 1);
        rings.indirectDesc(table, 1, data + 128, 64, DESC_F_WRITE, 0);
        rings.pushAvail(0);
        assertRejected(RingError.WRITABLE_ON_READ_ONLY_QUEUE, true);
    }

    @Test
    void headAndNextIndexesAtTheEdgeAreRejected() {
        rings.pushAvail(N);
        assertRejected(RingError.HEAD_OUT_OF_RANGE);
        setUp();
        rings.pushAvail(0xffff);
        assertRejected(RingError.HEAD_OUT_OF_RANGE);
        setUp();
        rings.desc(0, data, 8, DESC_F_NEXT, 0xffff);
        rings.pushAvail(0);
        assertRejected(RingError.NEXT_OUT_OF_RANGE);
    }

    @Test
    void aBrokenQueueResetAndGivenARepairedRingServesAgain() {
        rings.desc(0, data, 1, DESC_F_NEXT, 0);
        rings.pushAvail(0);
        DeviceQueue q = queue(false);
        assertFalse(q.nextAvail(q.newChain()));
        assertEquals(RingError.CHAIN_TOO_LONG, q.error());
        // The driver resets the device and sets the ring up again (virtio 1.2 §2.1.2).
        q.reset();
        rings = new TestRings(g.memory, N, A);
        rings.desc(0, data, 64, 0, 0);
        rings.pushAvail(0);
        assertEquals(RingError.NONE, q.configure(g.memory, N, rings.descAddr(), rings.availAddr(), rings.usedAddr(),
                false, true));
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertTrue(q.addUsed(c.head(), 0));
        assertEquals(1, rings.usedIdx());
    }
}
