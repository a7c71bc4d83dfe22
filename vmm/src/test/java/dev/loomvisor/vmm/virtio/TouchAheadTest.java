package dev.loomvisor.vmm.virtio;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.testing.TestRings;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The two reads a fast device makes around its pops: {@link DeviceVirtqueue#touchAhead} (a prefetch that reads
 * only what the device has seen made available, only inside guest memory, and changes nothing) and
 * {@link DeviceVirtqueue#hasNewAvail} (a refill is a buffer not seen yet, not one given back).
 */
class TouchAheadTest {

    static final int N = 8;
    GuestMemory memory;

    @BeforeEach
    void setUp() {
        memory = GuestMemory.anonymous(0x10000, 1 << 20);
    }

    @AfterEach
    void tearDown() {
        memory.close();
    }

    @Test
    void splitTouchReadsOnlySeenBuffersInsideGuestMemory() {
        TestRings rings = new TestRings(memory, N);
        DeviceQueue q = rings.device(false, false);
        long data = rings.dataAddr();
        for (int i = 0; i < 4; i++) {
            rings.write(data + 64L * i, new byte[] {(byte) (10 + i), (byte) (20 + i)});
            rings.desc(i, data + 64L * i, 64, 0, 0);
        }
        rings.desc(4, 0x7fff_0000_0000L, 64, 0, 0); // outside guest memory
        rings.desc(5, -1, 64, 0, 0);                 // the offset wraps it to 0, below guest memory
        for (int head = 0; head < 6; head++) {
            rings.pushAvail(head);
        }
        assertEquals(0, q.touchAhead(0, N, 1), "nothing read before avail.idx was acquired");
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c)); // sees avail.idx 6, pops head 0
        assertEquals(21 + 22 + 23, q.touchAhead(0, N, 1), "heads 1 to 3, at offset 1; 4 and 5 skipped");
        assertEquals(22, q.touchAhead(1, 1, 1));
        assertEquals(0, q.touchAhead(5, N, 0), "past what was seen");
        rings.pushAvail(0);
        assertEquals(21 + 22 + 23, q.touchAhead(0, N, 1), "a chain not seen yet is not read");
        assertEquals(1, q.lastAvail(), "touching pops nothing");
        assertFalse(q.isBroken(), "a bad address in a touch is no violation: the pop checks it");
        assertTrue(q.nextAvail(c));
        assertEquals(1, c.head());
    }

    @Test
    void splitRefillIsOnlyWhatTheDeviceHasNotSeen() {
        TestRings rings = new TestRings(memory, N);
        DeviceQueue q = rings.device(false, false);
        long data = rings.dataAddr();
        rings.desc(0, data, 64, SplitRing.DESC_F_WRITE, 0);
        rings.desc(1, data + 64, 64, SplitRing.DESC_F_WRITE, 0);
        rings.pushAvail(0);
        assertTrue(q.hasNewAvail());
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertFalse(q.nextAvail(c));
        q.discard(1); // too few for a frame: given back
        assertTrue(q.hasAvail(), "the given-back chain is available again");
        assertFalse(q.hasNewAvail(), "but it is no refill");
        rings.pushAvail(1);
        assertTrue(q.hasNewAvail());
        assertTrue(q.nextAvail(c));
        assertTrue(q.nextAvail(c));
        assertFalse(q.hasNewAvail());
    }

    @Test
    void packedTouchStopsAtTheFirstSlotNotAvailableInItsLap() {
        PackedTestRing ring = new PackedTestRing(memory, N);
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, false);
        long data = ring.dataAddr;
        for (int i = 0; i < 3; i++) {
            ring.at(data + 64L * i, 2).putByte(1, (byte) (30 + i));
            d.add(data + 64L * i, 64, false, i);
        }
        assertEquals(0, q.touchAhead(0, N, 1), "not published yet");
        d.publish();
        assertEquals(30 + 31 + 32, q.touchAhead(0, N, 1));
        assertEquals(31, q.touchAhead(1, 1, 1));
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(31 + 32, q.touchAhead(0, N, 1));
        ring.desc(3, 0x7fff_0000_0000L, 64, 3, PackedRing.DESC_F_AVAIL); // available in lap 1, outside memory
        assertEquals(31 + 32, q.touchAhead(0, N, 1));
        assertFalse(q.isBroken());
    }

    @Test
    void packedRefillIsOnlyWhatTheDeviceHasNotSeen() {
        PackedTestRing ring = new PackedTestRing(memory, N);
        PackedDriverQueue d = ring.driver(false);
        PackedDeviceQueue q = ring.device(false, false);
        long data = ring.dataAddr;
        d.add(data, 64, true, 0);
        d.publish();
        assertTrue(q.hasNewAvail());
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertFalse(q.nextAvail(c));
        q.discard(1);
        assertTrue(q.hasAvail());
        assertFalse(q.hasNewAvail(), "a chain given back is no refill");
        d.add(data + 64, 64, true, 1);
        d.publish();
        assertTrue(q.hasNewAvail());
    }
}
