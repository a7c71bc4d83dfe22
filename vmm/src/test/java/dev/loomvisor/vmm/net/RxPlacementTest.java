package dev.loomvisor.vmm.net;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.testing.TestRings;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.util.ArrayList;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** MRG_RXBUF placement and its absence (virtio 1.2 §5.1.6.3, §5.1.6.4). */
class RxPlacementTest {

    static final int N = 16;
    static final int BUF = VirtioNetHeader.MIN_RX_BUFFER;
    GuestMemory memory;
    TestRings rings;
    DriverQueue driver;
    UnsafeBuffer frame;

    @BeforeEach
    void setUp() {
        memory = GuestMemory.anonymous(0x10000, 1 << 20);
        rings = new TestRings(memory, N);
        driver = rings.driver(false);
        frame = new UnsafeBuffer(new byte[8000]);
        for (int i = 0; i < frame.capacity(); i++) {
            frame.putByte(i, (byte) (i * 7 + 1));
        }
    }

    @AfterEach
    void tearDown() {
        memory.close();
    }

    /** Places a frame and publishes its used elements, as a data path does at the end of a batch. */
    static RxResult deliver(RxPlacement rx, UnsafeBuffer frame, int off, int len) {
        RxResult r = rx.place(frame, off, len);
        rx.queue().publishUsed();
        return r;
    }

    long buffer(int i) {
        return rings.dataAddr() + (long) i * 0x1000;
    }

    void post(int count, int size) {
        for (int i = 0; i < count; i++) {
            assertTrue(driver.add(buffer(i), size, true, i) >= 0);
        }
        driver.publish();
    }

    @Test
    void mergeable4000ByteFrameUsesThreeBuffersWithNumBuffers3() {
        post(5, BUF);
        DeviceQueue q = rings.device(false, false);
        RxPlacement rx = new RxPlacement(q, true);
        assertEquals(RxResult.DELIVERED, deliver(rx, frame, 0, 4000));
        assertEquals(3, rings.usedIdx(), "three used elements, published together");
        UsedElement u = new UsedElement();
        int[] expectLen = {BUF, BUF, 12 + 4000 - 2 * BUF}; // 1526, 1526, 960
        byte[] got = new byte[4000];
        int at = 0;
        for (int i = 0; i < 3; i++) {
            assertTrue(driver.reap(u));
            assertEquals(i, u.cookie());
            assertEquals(expectLen[i], u.len());
            int skip = i == 0 ? 12 : 0;
            memory.read(buffer(i) + skip, got, at, u.len() - skip);
            at += u.len() - skip;
        }
        assertFalse(driver.reap(u));
        assertEquals(4000, at);
        byte[] hdr = rings.read(buffer(0), 12);
        assertEquals(3, (hdr[10] & 0xff) | (hdr[11] & 0xff) << 8, "num_buffers");
        byte[] expect = new byte[4000];
        frame.getBytes(0, expect);
        assertArrayEquals(expect, got);
    }

    @Test
    void mergeableWithoutEnoughBuffersConsumesNothing() {
        post(2, BUF);
        DeviceQueue q = rings.device(false, false);
        RxPlacement rx = new RxPlacement(q, true);
        assertEquals(RxResult.NO_BUFFERS, deliver(rx, frame, 0, 4000));
        assertEquals(0, rings.usedIdx());
        assertEquals(0, q.lastAvail());
        assertEquals(RxResult.DELIVERED, deliver(rx, frame, 0, 1000), "the buffers are still there");
        assertEquals(1, rings.usedIdx());
    }

    @Test
    void withoutMergeableOneBufferPerFrameAndNumBuffers1() {
        post(2, 4096);
        RxPlacement rx = new RxPlacement(rings.device(false, false), false);
        assertEquals(RxResult.DELIVERED, deliver(rx, frame, 0, 4000));
        UsedElement u = new UsedElement();
        assertTrue(driver.reap(u));
        assertEquals(4012, u.len());
        byte[] hdr = rings.read(buffer(0), 12);
        assertEquals(1, hdr[10]);
        assertEquals(0, hdr[11]);
    }

    @Test
    void withoutMergeableTooSmallBufferIsAFrameErrorNotACrash() {
        post(1, BUF);
        DeviceQueue q = rings.device(false, false);
        RxPlacement rx = new RxPlacement(q, false);
        assertEquals(RxResult.FRAME_TOO_LARGE, deliver(rx, frame, 0, 4000));
        assertEquals(1, rx.framesTooLarge());
        assertFalse(q.isBroken());
        assertEquals(0, rings.usedIdx(), "the buffer was kept for the next frame");
        assertEquals(RxResult.DELIVERED, deliver(rx, frame, 0, 1514), "the largest frame that fits 1526");
        UsedElement u = new UsedElement();
        assertTrue(driver.reap(u));
        assertEquals(BUF, u.len());
    }

    @Test
    void brokenRxQueueReportsBroken() {
        rings.pushAvail(N + 3);
        DeviceQueue q = rings.device(false, false);
        RxPlacement rx = new RxPlacement(q, true);
        assertEquals(RxResult.RING_BROKEN, deliver(rx, frame, 0, 100));
        assertEquals(RxResult.RING_BROKEN, deliver(rx, frame, 0, 100));
    }
    @Test
    void mergeableFrameNeedingMoreBuffersThanTheRingHoldsIsDroppedNotRetried() {
        // 16 buffers of 100 bytes can never hold 12 + 4000 bytes: waiting for more would stall the sender
        // forever, so the frame is dropped with a reason and the buffers stay for the next frame.
        post(N, 100);
        DeviceQueue q = rings.device(false, false);
        RxPlacement rx = new RxPlacement(q, true);
        assertEquals(RxResult.FRAME_TOO_LARGE, deliver(rx, frame, 0, 4000));
        assertEquals(1, rx.framesTooLarge());
        assertEquals(0, rings.usedIdx());
        assertEquals(0, q.lastAvail(), "every popped buffer given back");
        assertFalse(q.isBroken());
        assertEquals(RxResult.DELIVERED, deliver(rx, frame, 0, 1000), "11 of the buffers take the next frame");
        assertEquals(11, rings.usedIdx());
    }

    @Test
    void bufferTooSmallForTheHeaderBreaksTheQueue() {
        for (boolean mergeable : new boolean[] {true, false}) {
            setUp();
            post(2, VirtioNetHeader.SIZE - 1);
            DeviceQueue q = rings.device(false, false);
            List<RingError> broken = new ArrayList<>();
            q.setBrokenListener((queue, e) -> broken.add(e));
            RxPlacement rx = new RxPlacement(q, mergeable);
            assertEquals(RxResult.RING_BROKEN, deliver(rx, frame, 0, 60), "mergeable " + mergeable);
            assertTrue(q.isBroken(), "a buffer that cannot hold the header must not sit at the head for ever");
            assertEquals(1, broken.size());
            tearDown();
        }
    }
}
