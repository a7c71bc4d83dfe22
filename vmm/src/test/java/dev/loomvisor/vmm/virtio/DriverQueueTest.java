package dev.loomvisor.vmm.virtio;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.testing.TestRings;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The driver side against the device side: chains, indirect tables, the free list, used_event. */
class DriverQueueTest {

    static final int N = 8;
    GuestMemory memory;
    TestRings rings;
    long data;

    @BeforeEach
    void setUp() {
        memory = GuestMemory.anonymous(0x10000, 1 << 20);
        rings = new TestRings(memory, N);
        data = rings.dataAddr();
    }

    @AfterEach
    void tearDown() {
        memory.close();
    }

    @Test
    void chainOfReadableThenWritableArrivesAsWritten() {
        DriverQueue d = rings.driver(false);
        DeviceQueue q = rings.device(false, false);
        rings.write(data, "hello, ".getBytes());
        rings.write(data + 0x100, "device".getBytes());
        int head = d.add(new long[] {data, data + 0x100, data + 0x200}, new int[] {7, 6, 32}, 2, 1, 99);
        assertTrue(head >= 0);
        assertEquals(N - 3, d.freeCount());
        d.publish();
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(head, c.head());
        assertEquals(2, c.readableCount());
        assertEquals(1, c.writableCount());
        UnsafeBuffer b = new UnsafeBuffer(new byte[32]);
        assertEquals(13, c.readReadable(0, b, 0, 32));
        assertEquals("hello, device", b.getStringWithoutLengthAscii(0, 13));
        assertEquals(6, c.readReadable(7, b, 0, 32), "reading from an offset crosses into the second segment");
        assertEquals(5, c.writeWritable(0, new UnsafeBuffer("reply".getBytes()), 0, 5));
        assertEquals(0, c.writeWritable(32, b, 0, 1), "nothing past the writable part");
        q.addUsed(c.head(), 5);
        UsedElement u = new UsedElement();
        assertTrue(d.reap(u));
        assertEquals(99, u.cookie());
        assertEquals(5, u.len());
        assertEquals("reply", new String(rings.read(data + 0x200, 5)));
        assertEquals(N, d.freeCount(), "all three descriptors back on the free list");
    }

    @Test
    void indirectTableUsesOneRingDescriptor() {
        DriverQueue d = rings.driver(false);
        DeviceQueue q = rings.device(false, true);
        long table = data + 0x4000;
        long[] addrs = new long[N];
        int[] lens = new int[N];
        for (int i = 0; i < N; i++) {
            addrs[i] = data + 0x10L * i;
            lens[i] = 0x10;
        }
        int head = d.addIndirect(table, addrs, lens, N - 2, 2, 7);
        assertEquals(N - 1, d.freeCount());
        d.publish();
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        assertEquals(head, c.head());
        assertEquals(N, c.segmentCount());
        assertEquals(N - 2, c.readableCount());
        assertEquals(data + 0x70, c.segmentAddress(N - 1));
    }

    @Test
    void fullRingRefusesAndReapingFrees() {
        DriverQueue d = rings.driver(false);
        DeviceQueue q = rings.device(false, false);
        for (int i = 0; i < N; i++) {
            assertTrue(d.add(data, 1, false, i) >= 0);
        }
        assertEquals(-1, d.add(data, 1, false, N));
        assertEquals(-1, d.add(new long[] {data, data}, new int[] {1, 1}, 2, 0, N));
        d.publish();
        DescriptorChain c = q.newChain();
        for (int i = 0; i < N; i++) {
            assertTrue(q.nextAvail(c));
            q.addUsed(c.head(), 0);
        }
        UsedElement u = new UsedElement();
        for (int i = 0; i < N; i++) {
            assertTrue(d.reap(u));
            assertEquals(i, u.cookie(), "in order");
        }
        assertEquals(N, d.freeCount());
        assertTrue(d.add(data, 1, false, 0) >= 0);
    }

    @Test
    void usedEventWrittenByTheDriverSteersTheDevice() {
        DriverQueue d = rings.driver(true);
        DeviceQueue q = rings.device(true, false);
        assertTrue(q.needsInterrupt(), "first decision");
        d.setUsedEvent(2); // interrupt when used.idx passes 2
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 4; i++) {
            d.add(data, 1, false, i);
        }
        d.publish();
        boolean[] irq = new boolean[4];
        for (int i = 0; i < 4; i++) {
            assertTrue(q.nextAvail(c));
            q.addUsed(c.head(), 0);
            irq[i] = q.needsInterrupt();
        }
        assertArrayEquals(new boolean[] {false, false, true, false}, irq);
    }

    @Test
    void delayedInterruptComesThreeQuartersOfTheWayThroughTheBuffersInFlight() {
        DriverQueue d = rings.driver(true);
        DeviceQueue q = rings.device(true, false);
        assertTrue(q.needsInterrupt(), "first decision");
        for (int i = 0; i < N; i++) {
            d.add(data, 1, false, i);
        }
        d.publish();
        assertFalse(d.enableInterruptsDelayed(), "nothing used yet");
        DescriptorChain c = q.newChain();
        boolean[] irq = new boolean[N];
        for (int i = 0; i < N; i++) {
            assertTrue(q.nextAvail(c));
            q.addUsed(c.head(), 0);
            irq[i] = q.needsInterrupt();
        }
        // 8 in flight: used_event 6, so the interrupt comes with the 7th used buffer, and only then.
        boolean[] expected = new boolean[N];
        expected[6] = true;
        assertArrayEquals(expected, irq);
        assertTrue(d.enableInterruptsDelayed(), "all 8 used: more than three quarters are pending already");
        UsedElement u = new UsedElement();
        while (d.reap(u)) {
            // free them
        }
        assertFalse(d.enableInterruptsDelayed(), "nothing in flight, nothing pending");
    }
}
