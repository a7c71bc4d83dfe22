package dev.loomvisor.vmm.virtio;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.testing.TestRings;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** VIRTIO_F_IN_ORDER on the split ring: one used element per batch on a device-read-only queue (virtio 1.2 §2.7.9). */
class InOrderTest {

    static final int N = 16;
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

    private DeviceQueue device(boolean readOnly) {
        DeviceQueue q = new DeviceQueue(0);
        q.setInOrder(true);
        q.setDeviceWritableAllowed(!readOnly);
        assertEquals(RingError.NONE, q.configure(memory, N, rings.descAddr(), rings.availAddr(), rings.usedAddr(),
                false, false));
        return q;
    }

    private DriverQueue driver() {
        DriverQueue d = rings.driver(false);
        d.setInOrder(true);
        return d;
    }

    @Test
    void aBatchOfReadOnlyBuffersIsOneUsedElementCarryingTheLastHead() {
        DeviceQueue q = device(true);
        DriverQueue d = driver();
        int[] heads = new int[5];
        for (int i = 0; i < 5; i++) {
            heads[i] = d.add(data + 64L * i, 64, false, 100 + i);
        }
        d.publish();
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 5; i++) {
            assertTrue(q.nextAvail(c));
            assertTrue(q.stageUsed(c.head(), 0));
        }
        assertEquals(0, rings.usedIdx(), "nothing published before publishUsed");
        int before = rings.usedId(1);
        q.publishUsed();
        assertEquals(5, rings.usedIdx(), "used.idx moves by the batch's size");
        assertEquals(heads[4], rings.usedId(0), "the one element, at the batch's first position, names the last head");
        assertEquals(0, rings.usedLen(0));
        assertEquals(before, rings.usedId(1), "the batch's other elements are not written");
        UsedElement u = new UsedElement();
        for (int i = 0; i < 5; i++) {
            assertTrue(d.reap(u), "buffer " + i);
            assertEquals(heads[i], u.head());
            assertEquals(100 + i, u.cookie());
            assertEquals(0, u.len());
        }
        assertFalse(d.reap(u));
        assertEquals(N, d.freeCount());
    }

    @Test
    void batchesFollowEachOtherAcrossTheWrapOfTheRing() {
        DeviceQueue q = device(true);
        DriverQueue d = driver();
        DescriptorChain c = q.newChain();
        UsedElement u = new UsedElement();
        long cookie = 0;
        long reaped = 0;
        for (int round = 0; round < 50; round++) {
            int n = 1 + round % N;
            for (int i = 0; i < n; i++) {
                assertTrue(d.add(data + 64L * i, 64, false, cookie++) >= 0);
            }
            d.publish();
            for (int i = 0; i < n; i++) {
                assertTrue(q.nextAvail(c));
                q.stageUsed(c.head(), 0);
            }
            q.publishUsed();
            for (int i = 0; i < n; i++) {
                assertTrue(d.reap(u));
                assertEquals(reaped++, u.cookie(), "in the order made available");
            }
            assertFalse(d.reap(u));
        }
        assertEquals(cookie, reaped);
    }

    @Test
    void aLengthOrAnOutOfOrderUseEndsTheBatch() {
        DeviceQueue q = device(true);
        DriverQueue d = driver();
        int[] heads = new int[4];
        for (int i = 0; i < 4; i++) {
            heads[i] = d.add(data + 64L * i, 64, false, i);
        }
        d.publish();
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 4; i++) {
            assertTrue(q.nextAvail(c));
        }
        q.stageUsed(heads[0], 0);
        q.stageUsed(heads[1], 0);
        q.stageUsed(heads[3], 0); // out of order: written on its own, after the batch of two
        q.stageUsed(heads[2], 7); // a length: written on its own
        q.publishUsed();
        assertEquals(4, rings.usedIdx());
        assertEquals(heads[1], rings.usedId(0));
        assertEquals(heads[3], rings.usedId(2));
        assertEquals(heads[2], rings.usedId(3));
        assertEquals(7, rings.usedLen(3));
    }

    @Test
    void aQueueTheDeviceWritesKeepsOneElementPerBuffer() {
        DeviceQueue q = device(false);
        DriverQueue d = driver();
        for (int i = 0; i < 3; i++) {
            d.add(data + 64L * i, 64, true, i);
        }
        d.publish();
        DescriptorChain c = q.newChain();
        for (int i = 0; i < 3; i++) {
            assertTrue(q.nextAvail(c));
            q.stageUsed(c.head(), 0);
        }
        q.publishUsed();
        for (int i = 0; i < 3; i++) {
            assertEquals(i, rings.usedId(i), "element " + i + " written");
        }
    }

    @Test
    void aBreakPublishesTheStagedBatchFirst() {
        DeviceQueue q = device(true);
        DriverQueue d = driver();
        int a = d.add(data, 64, false, 0);
        int b = d.add(data + 64, 64, false, 1);
        d.publish();
        DescriptorChain c = q.newChain();
        assertTrue(q.nextAvail(c));
        q.stageUsed(c.head(), 0);
        assertTrue(q.nextAvail(c));
        q.stageUsed(c.head(), 0);
        q.fail(RingError.RX_BUFFER_TOO_SMALL);
        assertEquals(2, rings.usedIdx());
        assertEquals(b, rings.usedId(0));
        UsedElement u = new UsedElement();
        assertTrue(d.reap(u));
        assertEquals(a, u.head());
        assertTrue(d.reap(u));
        assertEquals(b, u.head());
    }

    @Test
    void resetForgetsInOrder() {
        DeviceQueue q = device(true);
        q.reset();
        assertFalse(q.inOrder());
    }
}
