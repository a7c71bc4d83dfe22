package dev.loomvisor.vmm.virtio;

import static dev.loomvisor.vmm.virtio.PackedRing.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import java.util.ArrayList;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The packed virtqueue (virtio 1.2 §2.8): both sides against each other, then a hostile driver. */
class PackedRingTest {

    static final int N = 8;
    GuestMemory memory;
    PackedTestRing ring;
    long data;
    final UsedElement used = new UsedElement();

    @BeforeEach
    void setUp() {
        memory = GuestMemory.anonymous(0x10000, 1 << 20);
        ring = new PackedTestRing(memory, N);
        data = ring.dataAddr;
    }

    @AfterEach
    void tearDown() {
        memory.close();
    }

    @Test
    void chainRoundTripsWithBufferIdAndWrittenLength() {
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, false);
        ring.write(data, "hello, ".getBytes());
        ring.write(data + 0x100, "device".getBytes());
        int id = d.add(new long[] {data, data + 0x100, data + 0x200}, new int[] {7, 6, 32}, 2, 1, 99);
        assertEquals(N - 3, d.freeCount());
        DescriptorChain c = q.newChain();
        assertFalse(q.nextAvail(c), "not available before publish: the first descriptor's flags go last");
        d.publish();
        assertTrue(q.hasAvail());
        assertTrue(q.nextAvail(c));
        assertEquals(id, c.head());
        assertEquals(2, c.readableCount());
        assertEquals(1, c.writableCount());
        UnsafeBuffer b = new UnsafeBuffer(new byte[32]);
        assertEquals(13, c.readReadable(0, b, 0, 32));
        assertEquals("hello, device", b.getStringWithoutLengthAscii(0, 13));
        assertEquals(5, c.writeWritable(0, new UnsafeBuffer("reply".getBytes()), 0, 5));
        assertFalse(d.hasUsed());
        assertTrue(q.addUsed(c.head(), 5));
        assertTrue(isUsed(ring.flags(0), true), "used descriptor in slot 0 with used wrap 1");
        assertEquals(id, ring.id(0));
        assertTrue(d.reap(used));
        assertEquals(99, used.cookie());
        assertEquals(5, used.len());
        assertEquals("reply", new String(ring.read(data + 0x200, 5)));
        assertEquals(N, d.freeCount());
        assertEquals(3 | WRAP_BIT, q.lastUsed(), "used position skipped the chain's three slots");
        assertEquals(3 | WRAP_BIT, q.lastAvail());
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 5, 8})
    void wrapsAroundManyTimesWithChainsAcrossTheEnd(int chainLength) {
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, false);
        DescriptorChain c = q.newChain();
        long[] addrs = new long[chainLength];
        int[] lens = new int[chainLength];
        for (int k = 0; k < chainLength; k++) {
            addrs[k] = data + 64L * k;
            lens[k] = 64;
        }
        int rounds = 1000;
        for (int i = 0; i < rounds; i++) {
            int id = d.add(addrs, lens, chainLength - 1, 1, i);
            assertTrue(id >= 0, "round " + i);
            d.publish();
            assertTrue(q.nextAvail(c), "round " + i);
            assertEquals(chainLength, c.segmentCount());
            assertEquals(id, c.head());
            assertTrue(q.addUsed(c.head(), i & 0xff));
            assertTrue(d.reap(used));
            assertEquals(i, used.cookie());
            assertEquals(i & 0xff, used.len());
            assertFalse(q.nextAvail(c));
        }
        long laps = (long) rounds * chainLength / N;
        assertEquals((rounds * chainLength) % N, q.lastAvail() & ~WRAP_BIT);
        assertEquals(laps % 2 == 0, (q.lastAvail() & WRAP_BIT) != 0, "the wrap counter flipped once per lap");
        assertEquals(q.lastAvail(), d.availIdx());
        assertEquals(q.lastUsed(), d.lastUsed());
        assertEquals(N, d.freeCount());
    }

    @Test
    void outOfOrderUsedBuffersAreMatchedById() {
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, false);
        DescriptorChain c = q.newChain();
        int a = d.add(data, 10, true, 1);
        int b = d.add(new long[] {data + 64, data + 128}, new int[] {10, 10}, 0, 2, 2);
        d.publish();
        assertTrue(q.nextAvail(c));
        assertEquals(a, c.head());
        assertTrue(q.nextAvail(c));
        assertEquals(b, c.head());
        assertTrue(q.addUsed(b, 20));
        assertTrue(q.addUsed(a, 10));
        assertTrue(d.reap(used));
        assertEquals(2, used.cookie());
        assertTrue(d.reap(used));
        assertEquals(1, used.cookie());
        assertEquals(3 | WRAP_BIT, d.lastUsed());
        assertEquals(N, d.freeCount());
    }

    @Test
    void indirectTableCountsAsOneRingSlot() {
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, true);
        DescriptorChain c = q.newChain();
        long table = data + 0x1000;
        int id = d.addIndirect(table, new long[] {data, data + 64, data + 128}, new int[] {12, 50, 64}, 2, 1, 7);
        d.publish();
        assertTrue(q.nextAvail(c));
        assertEquals(id, c.head());
        assertEquals(3, c.segmentCount());
        assertEquals(2, c.readableCount());
        assertEquals(62, c.readableLength());
        assertEquals(1 | WRAP_BIT, q.lastAvail());
        assertTrue(q.addUsed(id, 64));
        assertTrue(d.reap(used));
        assertEquals(1 | WRAP_BIT, d.lastUsed());
    }

    @Test
    void stagedBatchBecomesVisibleAtOnce() {
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, false);
        DescriptorChain c = q.newChain();
        int[] ids = new int[3];
        for (int i = 0; i < 3; i++) {
            d.add(data + 64L * i, 64, true, i);
        }
        d.publish();
        for (int i = 0; i < 3; i++) {
            assertTrue(q.nextAvail(c));
            ids[i] = c.head();
        }
        for (int i = 0; i < 3; i++) {
            assertTrue(q.stageUsed(ids[i], 1));
        }
        assertTrue(q.hasStagedUsed());
        assertFalse(d.hasUsed(), "the first used descriptor's flags are held back until publish");
        q.publishUsed();
        for (int i = 0; i < 3; i++) {
            assertTrue(d.reap(used));
        }
        assertFalse(d.reap(used));
    }

    @Test
    void discardGivesChainsBackAcrossTheRingEnd() {
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, false);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 6; i++) {
            d.add(data, 1, true, i);
            d.publish();
            assertTrue(q.nextAvail(c));
            q.addUsed(c.head(), 0);
            d.reap(used);
        }
        int a = d.add(new long[] {data, data}, new int[] {1, 1}, 0, 2, 0);
        int b = d.add(new long[] {data, data}, new int[] {1, 1}, 0, 2, 0);
        d.publish();
        assertTrue(q.nextAvail(c));
        assertTrue(q.nextAvail(c));
        assertEquals(2, q.lastAvail(), "two chains of two from slot 6 end at slot 2 of the next lap (wrap 0)");
        q.discard(2);
        assertEquals(6 | WRAP_BIT, q.lastAvail());
        assertFalse(q.enableNotifications(), "discarded chains are not new work");
        assertTrue(q.hasAvail());
        assertTrue(q.nextAvail(c));
        assertEquals(a, c.head());
        assertTrue(q.nextAvail(c));
        assertEquals(b, c.head());
        assertTrue(q.addUsed(a, 0));
        assertTrue(q.addUsed(b, 0));
        assertTrue(d.reap(used));
        assertTrue(d.reap(used));
        assertEquals(N, d.freeCount());
    }

    // Notification suppression (virtio 1.2 §2.8.10).

    @Test
    void deviceEventSuppressionWithoutEventIdx() {
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, false);
        q.disableNotifications();
        assertEquals(EVENT_FLAG_DISABLE, ring.deviceEventFlags());
        d.add(data, 1, true, 0);
        assertFalse(d.publishAndCheckKick(), "DISABLE: no kick");
        assertTrue(q.enableNotifications(), "a chain came while kicks were off");
        assertEquals(EVENT_FLAG_ENABLE, ring.deviceEventFlags());
        d.add(data, 1, true, 0);
        assertTrue(d.publishAndCheckKick());
    }

    @Test
    void deviceEventSuppressionWithEventIdxKicksOnceAtTheOffset() {
        PackedDriverQueue d = ring.driver(true);
        PackedDeviceQueue q = ring.device(true, false);
        DescriptorChain c = q.newChain();
        assertFalse(q.enableNotifications());
        assertEquals(EVENT_FLAG_DESC, ring.deviceEventFlags());
        assertEquals(0 | WRAP_BIT, ring.deviceEventOffWrap());
        d.add(data, 1, true, 0);
        assertTrue(d.publishAndCheckKick(), "passed the off_wrap");
        d.add(data, 1, true, 0);
        assertFalse(d.publishAndCheckKick(), "already kicked for this off_wrap");
        assertTrue(q.nextAvail(c));
        assertTrue(q.nextAvail(c));
        assertFalse(q.enableNotifications());
        assertEquals(2 | WRAP_BIT, ring.deviceEventOffWrap());
        d.add(data, 1, true, 0);
        assertTrue(d.publishAndCheckKick());
    }

    @Test
    void offWrapOnTheOtherLapIsHonoured() {
        PackedDriverQueue d = ring.driver(true);
        PackedDeviceQueue q = ring.device(true, false);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < N - 1; i++) {
            d.add(data, 1, true, 0);
            d.publish();
            assertTrue(q.nextAvail(c));
            q.addUsed(c.head(), 0);
            d.reap(used);
        }
        assertFalse(q.enableNotifications());
        assertEquals((N - 1) | WRAP_BIT, ring.deviceEventOffWrap());
        d.add(new long[] {data, data}, new int[] {1, 1}, 0, 2, 0); // slots 7 and 0: crosses into wrap 0
        assertTrue(d.publishAndCheckKick());
        assertTrue(q.nextAvail(c));
        assertFalse(q.enableNotifications());
        assertEquals(1, ring.deviceEventOffWrap(), "slot 1, wrap 0");
        d.add(data, 1, true, 0);
        assertTrue(d.publishAndCheckKick());
    }

    @Test
    void driverEventSuppression() {
        PackedDriverQueue d = ring.driver(true);
        PackedDeviceQueue q = ring.device(true, false);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 4; i++) {
            d.add(data, 1, true, i);
        }
        d.publish();
        d.disableInterrupts();
        assertTrue(q.nextAvail(c));
        q.addUsed(c.head(), 0);
        assertFalse(q.needsInterrupt(), "DISABLE");
        assertTrue(d.enableInterrupts(), "one used entry pending");
        assertTrue(d.reap(used));
        assertTrue(q.nextAvail(c));
        q.addUsed(c.head(), 0);
        assertTrue(q.needsInterrupt(), "used position passed the driver's off_wrap");
        assertTrue(q.nextAvail(c));
        q.addUsed(c.head(), 0);
        assertFalse(q.needsInterrupt(), "the driver has not reaped: its off_wrap is behind, no second interrupt");
        assertTrue(d.reap(used));
        assertTrue(d.reap(used));
        assertTrue(q.nextAvail(c));
        q.addUsed(c.head(), 0);
        assertTrue(q.needsInterrupt());
        ring.driverEvent(0, EVENT_FLAG_ENABLE);
        assertTrue(q.needsInterrupt(), "ENABLE: always");
    }

    @Test
    void stateIsAllocationFreeAndBaseRoundTrips() {
        PackedDeviceQueue q = new PackedDeviceQueue(0);
        q.setLastAvail(5 | WRAP_BIT);
        assertEquals(RingError.NONE, q.configure(memory, N, ring.descAddr, ring.driverAddr, ring.deviceAddr, false, false));
        assertEquals(5 | WRAP_BIT, q.lastAvail());
        assertEquals(5 | WRAP_BIT, q.lastUsed());
        q.setLastAvail(3);
        assertEquals(3, q.lastAvail());
        assertEquals(3, q.lastUsed(), "used follows the restored base, wrap counter included");
    }

    // VIRTIO_F_IN_ORDER (virtio 1.2 §2.8.9).

    @Test
    void inOrderBatchIsOneUsedDescriptor() {
        PackedDriverQueue d = ring.driver(false, true);
        PackedDeviceQueue q = ring.device(false, false);
        q.setInOrder(true);
        DescriptorChain c = q.newChain();
        for (int round = 0; round < 50; round++) {
            int[] ids = new int[3];
            int[] lens = new int[3];
            d.add(data, 1, false, 10);
            d.add(new long[] {data, data}, new int[] {1, 1}, 2, 0, 11);
            d.add(data, 1, false, 12);
            d.publish();
            int slot = q.lastUsed() & ~WRAP_BIT;
            for (int i = 0; i < 3; i++) {
                assertTrue(q.nextAvail(c));
                ids[i] = c.head();
            }
            assertTrue(q.addUsedN(ids, lens, 3));
            assertEquals(ids[2], ring.id(slot), "one used descriptor carrying the batch's last id");
            assertEquals(((slot + 4) % N), q.lastUsed() & ~WRAP_BIT, "skipped all four slots");
            for (int i = 0; i < 3; i++) {
                assertTrue(d.reap(used), "round " + round);
                assertEquals(10 + i, used.cookie());
            }
            assertFalse(d.reap(used));
            assertEquals(N, d.freeCount());
        }
    }

    @Test
    void inOrderFallsBackToOneEntryPerBufferWhenLengthsMatter() {
        PackedDriverQueue d = ring.driver(false, true);
        PackedDeviceQueue q = ring.device(false, false);
        q.setInOrder(true);
        DescriptorChain c = q.newChain();
        d.add(data, 64, true, 0);
        d.add(data, 64, true, 1);
        d.publish();
        int[] ids = new int[2];
        assertTrue(q.nextAvail(c));
        ids[0] = c.head();
        assertTrue(q.nextAvail(c));
        ids[1] = c.head();
        assertTrue(q.addUsedN(ids, new int[] {30, 40}, 2));
        assertTrue(d.reap(used));
        assertEquals(30, used.len());
        assertTrue(d.reap(used));
        assertEquals(40, used.len());
    }

    // A hostile driver: each rule breaks only this queue, with its own error.

    private PackedDeviceQueue broken(PackedDeviceQueue q, RingError expected) {
        DescriptorChain c = q.newChain();
        List<RingError> told = new ArrayList<>();
        q.setBrokenListener((qq, e) -> told.add(e));
        assertFalse(q.nextAvail(c));
        assertEquals(expected, q.error());
        assertEquals(List.of(expected), told);
        assertFalse(q.nextAvail(c), "a broken queue stays quiet");
        assertFalse(q.addUsed(0, 0));
        assertFalse(q.enableNotifications());
        assertFalse(q.needsInterrupt());
        return q;
    }

    @Test
    void usedFlagsOfTheCurrentLapAtTheNextSlotAreRejected() {
        ring.desc(0, data, 1, 0, DESC_F_AVAIL | DESC_F_USED);
        broken(ring.device(false, false), RingError.PACKED_FLAGS_INVALID);
    }

    @Test
    void previousLapFlagsAreNotAvailable() {
        PackedDeviceQueue q = ring.device(false, false);
        ring.desc(0, data, 1, 0, DESC_F_USED); // available for wrap 0: a stale slot from the last lap
        assertFalse(q.nextAvail(q.newChain()));
        assertFalse(q.isBroken());
        ring.desc(0, data, 1, 0, 0); // used in wrap 0
        assertFalse(q.nextAvail(q.newChain()));
        assertFalse(q.isBroken());
    }

    @Test
    void wrapCounterFlipInsideAChainIsRequired() {
        PackedDeviceQueue q = ring.device(false, false);
        q.setLastAvail(N - 1 | WRAP_BIT);
        ring.desc(N - 1, data, 1, 0, DESC_F_NEXT | availFlags(true));
        ring.desc(0, data, 1, 0, availFlags(true)); // should carry wrap 0 after the ring's end
        broken(q, RingError.PACKED_CHAIN_NOT_AVAIL);
    }

    @Test
    void chainAcrossTheEndWithFlippedFlagsIsAccepted() {
        PackedDeviceQueue q = ring.device(false, false);
        q.setLastAvail(N - 1 | WRAP_BIT);
        ring.desc(N - 1, data, 1, 0, DESC_F_NEXT | availFlags(true));
        ring.desc(0, data, 1, 3, availFlags(false));
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(3, c.head(), "the id is the last descriptor's");
        assertEquals(1, q.lastAvail(), "slot 1, wrap 0");
    }

    @Test
    void chainedDescriptorNotMadeAvailableIsRejected() {
        ring.desc(0, data, 1, 0, DESC_F_NEXT | availFlags(true));
        ring.desc(1, data, 1, 0, 0);
        broken(ring.device(false, false), RingError.PACKED_CHAIN_NOT_AVAIL);
    }

    @Test
    void idOutOfRange() {
        ring.desc(0, data, 1, N, availFlags(true));
        broken(ring.device(false, false), RingError.PACKED_ID_OUT_OF_RANGE);
    }

    @Test
    void idReusedWhileInFlight() {
        PackedDeviceQueue q = ring.device(false, false);
        ring.desc(0, data, 1, 2, availFlags(true));
        ring.desc(1, data, 1, 2, availFlags(true));
        assertTrue(q.nextAvail(q.newChain()));
        broken(q, RingError.PACKED_ID_IN_USE);
    }

    @Test
    void chainLongerThanTheRingMeetsItsOwnFirstSlotOnTheOtherLap() {
        // A packed chain cannot loop: after N descriptors it is back at its first slot with the wrap counter
        // flipped, where the first descriptor's flags say "available on the old lap" (virtio 1.2 §2.8.1).
        PackedDeviceQueue q = ring.device(false, false);
        q.setLastAvail(1 | WRAP_BIT);
        for (int i = 1; i < N; i++) {
            ring.desc(i, data, 1, 0, DESC_F_NEXT | availFlags(true));
        }
        ring.desc(0, data, 1, 0, DESC_F_NEXT | availFlags(false));
        broken(q, RingError.PACKED_CHAIN_NOT_AVAIL);
        assertEquals(1 | WRAP_BIT, q.lastAvail(), "nothing popped");
    }

    @Test
    void moreInFlightThanTheRingHolds() {
        PackedDeviceQueue q = ring.device(false, false);
        DescriptorChain c = q.newChain();
        for (int i = 0; i < N; i++) {
            ring.desc(i, data, 1, i, availFlags(true));
        }
        for (int i = 0; i < N; i++) {
            assertTrue(q.nextAvail(c));
        }
        // Nothing used, yet the driver marks slot 0 available for the next lap with a fresh id.
        ring.desc(0, data, 1, 0, availFlags(false));
        broken(q, RingError.PACKED_ID_IN_USE);
        PackedTestRing again = new PackedTestRing(memory, N);
        q = again.device(false, false);
        for (int i = 0; i < N - 1; i++) {
            again.desc(i, data, 1, i, availFlags(true));
            assertTrue(q.nextAvail(c));
        }
        again.desc(N - 1, data, 1, N - 1, DESC_F_NEXT | availFlags(true));
        again.desc(0, data, 1, N - 1, availFlags(false));
        broken(q, RingError.PACKED_RING_OVERRUN);
    }

    @Test
    void indirectRules() {
        ring.desc(0, data, 16, 0, DESC_F_INDIRECT | availFlags(true));
        broken(ring.device(false, false), RingError.INDIRECT_NOT_NEGOTIATED);
        ring.desc(0, data, 16, 0, DESC_F_INDIRECT | DESC_F_NEXT | availFlags(true));
        broken(ring.device(false, true), RingError.INDIRECT_WITH_NEXT);
        ring.desc(0, data, 24, 0, DESC_F_INDIRECT | availFlags(true));
        broken(ring.device(false, true), RingError.INDIRECT_BAD_LENGTH);
        ring.desc(0, data, 16L * (DescriptorChain.MAX_INDIRECT_ENTRIES + 1), 0, DESC_F_INDIRECT | availFlags(true));
        broken(ring.device(false, true), RingError.INDIRECT_TOO_LARGE);
        ring.desc(0, 0x7fff_0000L, 16, 0, DESC_F_INDIRECT | availFlags(true));
        broken(ring.device(false, true), RingError.INDIRECT_OUTSIDE_MEMORY);
        ring.desc(0, data, 1, 0, DESC_F_NEXT | availFlags(true));
        ring.desc(1, data, 16, 0, DESC_F_INDIRECT | availFlags(true));
        broken(ring.device(false, true), RingError.PACKED_INDIRECT_IN_CHAIN);
        long table = data + 0x1000;
        ring.descAt(table, data, 8, 0, DESC_F_WRITE);
        ring.descAt(table + 16, data, 8, 0, 0);
        ring.desc(0, table, 32, 0, DESC_F_INDIRECT | availFlags(true));
        broken(ring.device(false, true), RingError.READABLE_AFTER_WRITABLE);
        // Flags other than WRITE inside a table (INDIRECT, NEXT) are reserved and ignored (§2.8.7).
        ring.descAt(table, data, 8, 0, DESC_F_INDIRECT | DESC_F_NEXT);
        ring.descAt(table + 16, data, 8, 0, DESC_F_WRITE);
        PackedDeviceQueue q = ring.device(false, true);
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(2, c.segmentCount());
    }

    @Test
    void indirectLongerThanTheQueueAcceptedUpToTheBoundOneMoreRejected() {
        int max = DescriptorChain.MAX_INDIRECT_ENTRIES;
        long table = data + 0x1000;
        for (int i = 0; i <= max; i++) {
            ring.descAt(table + 16L * i, data + i, 1, 0, 0);
        }
        ring.desc(0, table, 16L * max, 0, DESC_F_INDIRECT | availFlags(true));
        PackedDeviceQueue q = ring.device(false, true);
        DescriptorChain c = q.newChain();
        assertTrue(c.capacity() < max, "the chain has to grow");
        assertTrue(q.nextAvail(c), "a table of " + max + " entries on a queue of " + N);
        assertEquals(max, c.segmentCount());
        assertEquals(data + max - 1, c.segmentAddress(max - 1));
        ring.desc(0, table, 16L * (max + 1), 0, DESC_F_INDIRECT | availFlags(true));
        broken(ring.device(false, true), RingError.INDIRECT_TOO_LARGE);
    }

    @Test
    void bufferRulesAsOnTheSplitRing() {
        ring.desc(0, 0x7fff_0000L, 1, 0, availFlags(true));
        broken(ring.device(false, false), RingError.DESC_OUTSIDE_MEMORY);
        ring.desc(0, -16, 32, 0, availFlags(true));
        broken(ring.device(false, false), RingError.ADDRESS_OVERFLOW);
        ring.desc(0, data, 1, 0, DESC_F_WRITE | DESC_F_NEXT | availFlags(true));
        ring.desc(1, data, 1, 0, availFlags(true));
        broken(ring.device(false, false), RingError.READABLE_AFTER_WRITABLE);
        ring.desc(0, data, 1, 0, DESC_F_WRITE | availFlags(true));
        PackedDeviceQueue tx = ring.device(false, false);
        tx.setDeviceWritableAllowed(false);
        broken(tx, RingError.WRITABLE_ON_READ_ONLY_QUEUE);
    }

    @Test
    void configurationRules() {
        PackedDeviceQueue q = new PackedDeviceQueue(0);
        assertEquals(RingError.QUEUE_SIZE_ZERO, q.configure(memory, 0, ring.descAddr, ring.driverAddr, ring.deviceAddr, false, false));
        q.reset();
        assertEquals(RingError.NONE, q.configure(memory, 6, ring.descAddr, ring.driverAddr, ring.deviceAddr, false, false),
                "a packed ring need not be a power of two");
        q.reset();
        assertEquals(RingError.QUEUE_SIZE_TOO_LARGE, q.configure(memory, 32769, ring.descAddr, ring.driverAddr, ring.deviceAddr, false, false));
        q.reset();
        assertEquals(RingError.DESC_TABLE_MISALIGNED, q.configure(memory, N, ring.descAddr + 8, ring.driverAddr, ring.deviceAddr, false, false));
        q.reset();
        assertEquals(RingError.PACKED_EVENT_AREA_MISALIGNED, q.configure(memory, N, ring.descAddr, ring.driverAddr + 2, ring.deviceAddr, false, false));
        q.reset();
        assertEquals(RingError.RING_OUTSIDE_MEMORY, q.configure(memory, N, ring.descAddr, ring.driverAddr, 0x7fff_0000L, false, false));
        q.reset();
        q.setLastAvail(N | WRAP_BIT);
        assertEquals(RingError.PACKED_BASE_OUT_OF_RANGE, q.configure(memory, N, ring.descAddr, ring.driverAddr, ring.deviceAddr, false, false));
    }

    @Test
    void deviceBugsAreCaught() {
        PackedDeviceQueue q = ring.device(false, false);
        assertFalse(q.addUsed(N, 0));
        assertEquals(RingError.USED_ID_OUT_OF_RANGE, q.error());
        q = ring.device(false, false);
        assertFalse(q.addUsed(1, 0));
        assertEquals(RingError.PACKED_USED_ID_NOT_IN_FLIGHT, q.error());
    }

    @Test
    void aBrokenQueueDoesNotAffectItsNeighbour() {
        PackedTestRing other;
        try (GuestMemory m2 = GuestMemory.anonymous(0x10000, 1 << 20)) {
            other = new PackedTestRing(m2, N);
            PackedDriverQueue d = other.driver(false);
            PackedDeviceQueue good = other.device(false, false);
            ring.desc(0, data, 1, N + 5, availFlags(true));
            broken(ring.device(false, false), RingError.PACKED_ID_OUT_OF_RANGE);
            d.add(other.dataAddr, 1, true, 0);
            d.publish();
            DescriptorChain c = good.newChain();
            assertTrue(good.nextAvail(c));
            assertTrue(good.addUsed(c.head(), 1));
            assertTrue(d.reap(used));
        }
    }

    @Test
    void popAndUseAllocateNothing() {
        PackedDriverQueue d = ring.driver(true);
        PackedDeviceQueue q = ring.device(true, true);
        DescriptorChain c = q.newChain();
        Runnable round = () -> {
            d.add(data, 64, false, 0);
            d.publishAndCheckKick();
            q.nextAvail(c);
            q.addUsed(c.head(), 0);
            q.needsInterrupt();
            q.enableNotifications();
            d.reap(used);
        };
        for (int i = 0; i < 20_000; i++) {
            round.run();
        }
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 10_000; i++) {
            round.run();
        }
        long after = mx.getCurrentThreadAllocatedBytes();
        assertTrue(after - before < 1024, "allocated " + (after - before) + " bytes in 10,000 round trips");
    }
}
