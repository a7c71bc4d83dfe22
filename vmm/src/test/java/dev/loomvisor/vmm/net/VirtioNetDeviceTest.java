package dev.loomvisor.vmm.net;

import static dev.loomvisor.vmm.net.DeviceStatus.*;
import static dev.loomvisor.vmm.net.MmioTransport.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.testing.TestRings;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.PackedRing;
import dev.loomvisor.vmm.virtio.RingError;
import java.util.ArrayList;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Feature negotiation, the status state machine, config space and queue set-up through the mmio registers. */
class VirtioNetDeviceTest {

    static final byte[] MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    static final long OFFER = NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.STATUS | NetFeatures.MRG_RXBUF
            | NetFeatures.EVENT_IDX | NetFeatures.INDIRECT_DESC | NetFeatures.CTRL_VQ | NetFeatures.MQ | NetFeatures.CSUM;

    GuestMemory memory;
    VirtioNetDevice dev;
    MmioTransport mmio;

    @BeforeEach
    void setUp() {
        memory = GuestMemory.anonymous(0x10000, 1 << 20);
        dev = new VirtioNetDevice(memory, MAC, 2, 256, OFFER);
        mmio = new MmioTransport(dev);
    }

    @AfterEach
    void tearDown() {
        memory.close();
    }

    void writeFeatures(long f) {
        mmio.write(DRIVER_FEATURES_SEL, 0);
        mmio.write(DRIVER_FEATURES, (int) f);
        mmio.write(DRIVER_FEATURES_SEL, 1);
        mmio.write(DRIVER_FEATURES, (int) (f >>> 32));
    }

    long readFeatures() {
        mmio.write(DEVICE_FEATURES_SEL, 0);
        long lo = mmio.read(DEVICE_FEATURES) & 0xffffffffL;
        mmio.write(DEVICE_FEATURES_SEL, 1);
        return lo | ((long) mmio.read(DEVICE_FEATURES) << 32);
    }

    @Test
    void identifiesAsVirtioMmioNet() {
        assertEquals(0x74726976, mmio.read(MAGIC_VALUE));
        assertEquals(2, mmio.read(VERSION));
        assertEquals(1, mmio.read(DEVICE_ID));
        assertEquals(OFFER, readFeatures());
    }

    @Test
    void fullBringUpNegotiatesFeatures() {
        mmio.write(STATUS, ACKNOWLEDGE);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER);
        long want = NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX;
        writeFeatures(want);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertEquals(DeviceError.OK, mmio.lastError());
        assertTrue((mmio.read(STATUS) & FEATURES_OK) != 0);
        assertEquals(want, dev.negotiatedFeatures());
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertTrue(dev.isRunning());
    }

    @Test
    void skippingAStepIsRefused() {
        mmio.write(STATUS, DRIVER);
        assertEquals(DeviceError.STATUS_OUT_OF_ORDER, mmio.lastError());
        assertEquals(0, dev.status());
        mmio.write(STATUS, ACKNOWLEDGE);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | DRIVER_OK);
        assertEquals(DeviceError.STATUS_OUT_OF_ORDER, mmio.lastError());
        assertEquals(ACKNOWLEDGE, dev.status());
        writeFeatures(NetFeatures.VERSION_1);
        assertEquals(DeviceError.FEATURES_LOCKED, mmio.lastError(), "features before DRIVER");
        mmio.write(STATUS, 0x100 | ACKNOWLEDGE);
        mmio.write(STATUS, 0);
        mmio.write(STATUS, ACKNOWLEDGE | NEEDS_RESET);
        assertEquals(DeviceError.STATUS_OUT_OF_ORDER, mmio.lastError(), "only the device sets NEEDS_RESET");
    }

    @Test
    void statusBitsCannotBeClearedExceptByReset() {
        mmio.write(STATUS, ACKNOWLEDGE);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER);
        mmio.write(STATUS, DRIVER);
        assertEquals(DeviceError.STATUS_CLEARS_BITS, mmio.lastError());
        assertEquals(ACKNOWLEDGE | DRIVER, dev.status());
        mmio.write(STATUS, 0);
        assertEquals(0, dev.status());
    }

    @Test
    void featuresAfterFeaturesOkAreRefused() {
        mmio.write(STATUS, ACKNOWLEDGE);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER);
        writeFeatures(NetFeatures.VERSION_1);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        writeFeatures(NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF);
        assertEquals(DeviceError.FEATURES_LOCKED, mmio.lastError());
        assertEquals(NetFeatures.VERSION_1, dev.negotiatedFeatures());
    }

    @Test
    void featuresWithoutVersion1OrNotOfferedLeaveFeaturesOkClear() {
        mmio.write(STATUS, ACKNOWLEDGE);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER);
        writeFeatures(NetFeatures.MRG_RXBUF);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertEquals(DeviceError.FEATURES_REJECTED, mmio.lastError());
        assertEquals(0, mmio.read(STATUS) & FEATURES_OK, "the driver re-reads and sees it refused");
        writeFeatures(NetFeatures.VERSION_1 | NetFeatures.RING_PACKED);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertEquals(DeviceError.FEATURES_REJECTED, mmio.lastError());
        writeFeatures(NetFeatures.VERSION_1);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertEquals(DeviceError.OK, mmio.lastError());
    }

    @Test
    void configSpaceHoldsMacStatusAndPairs() {
        assertEquals(0x12005452, mmio.read(CONFIG));
        int w = mmio.read(CONFIG + 4);
        assertEquals(0x5634, w & 0xffff);
        assertEquals(NetConfigSpace.LINK_UP, w >>> 16);
        assertEquals(2, mmio.read(CONFIG + 8) & 0xffff);
        dev.setLinkUp(false);
        assertEquals(0, mmio.read(CONFIG + 4) >>> 16);
    }

    void upToFeaturesOk(long features) {
        mmio.write(STATUS, ACKNOWLEDGE);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER);
        writeFeatures(features);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    }

    void setUpQueue(int q, TestRings r) {
        mmio.write(QUEUE_SEL, q);
        mmio.write(QUEUE_NUM, r.size());
        mmio.write(QUEUE_DESC_LOW, (int) r.descAddr());
        mmio.write(QUEUE_DESC_HIGH, (int) (r.descAddr() >>> 32));
        mmio.write(QUEUE_DRIVER_LOW, (int) r.availAddr());
        mmio.write(QUEUE_DRIVER_HIGH, 0);
        mmio.write(QUEUE_DEVICE_LOW, (int) r.usedAddr());
        mmio.write(QUEUE_DEVICE_HIGH, 0);
        mmio.write(QUEUE_READY, 1);
    }

    @Test
    void queueSetUpThroughRegistersConfiguresTheDeviceQueue() {
        upToFeaturesOk(NetFeatures.VERSION_1 | NetFeatures.EVENT_IDX);
        TestRings r = new TestRings(memory, 64);
        mmio.write(QUEUE_SEL, 1);
        assertEquals(256, mmio.read(QUEUE_NUM_MAX));
        setUpQueue(1, r);
        assertEquals(DeviceError.OK, mmio.lastError());
        assertEquals(1, mmio.read(QUEUE_READY));
        assertTrue(dev.queue(1).isReady());
        assertTrue(dev.queue(1).eventIdx());
        assertEquals(64, dev.queue(1).size());
        assertEquals(r.availAddr(), dev.queueAvail(1));
        mmio.write(QUEUE_NUM, 128);
        assertEquals(DeviceError.QUEUE_LOCKED, mmio.lastError(), "ready queues are locked");
        mmio.write(QUEUE_SEL, 99);
        mmio.write(QUEUE_READY, 1);
        assertEquals(DeviceError.QUEUE_INDEX, mmio.lastError());
    }

    @Test
    void badQueueSetUpIsRefusedAndNeedsReset() {
        upToFeaturesOk(NetFeatures.VERSION_1);
        mmio.write(QUEUE_SEL, 0);
        mmio.write(QUEUE_NUM, 100);
        mmio.write(QUEUE_READY, 1);
        assertEquals(DeviceError.QUEUE_REJECTED, mmio.lastError());
        assertTrue((dev.status() & NEEDS_RESET) != 0);
        assertTrue((mmio.read(INTERRUPT_STATUS) & VirtioNetDevice.INT_CONFIG) != 0);
        assertTrue(dev.vector(0).isSignalled());
        mmio.write(INTERRUPT_ACK, VirtioNetDevice.INT_CONFIG);
        assertEquals(0, mmio.read(INTERRUPT_STATUS));
        mmio.write(STATUS, 0);
        assertEquals(0, dev.status());
        assertFalse(dev.queue(0).isBroken());
    }

    @Test
    void queueBrokenByTheGuestSetsNeedsResetAndOtherQueuesGoOn() {
        upToFeaturesOk(NetFeatures.VERSION_1);
        TestRings r0 = new TestRings(memory, 16, 0x10000);
        TestRings r1 = new TestRings(memory, 16, 0x20000);
        setUpQueue(0, r0);
        setUpQueue(1, r1);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        r1.desc(0, r1.dataAddr(), 64, 2 /* WRITE on TX */, 0);
        r1.pushAvail(0);
        r0.desc(0, r0.dataAddr(), 64, 2, 0);
        r0.pushAvail(0);
        assertFalse(dev.queue(1).nextAvail(dev.queue(1).newChain()));
        assertTrue(dev.queue(1).isBroken());
        assertEquals(1, dev.brokenQueueCount());
        assertTrue((dev.status() & NEEDS_RESET) != 0);
        assertFalse(dev.isRunning());
        assertTrue(dev.queue(0).nextAvail(dev.queue(0).newChain()), "the RX queue still works");
    }

    /** A packed ring at {@code base}: the descriptor ring, then the driver and device event areas. */
    void setUpPackedQueue(int q, long base, int size) {
        memory.zero(base, size * 16 + 8);
        long driverArea = base + size * 16L;
        mmio.write(QUEUE_SEL, q);
        mmio.write(QUEUE_NUM, size);
        mmio.write(QUEUE_DESC_LOW, (int) base);
        mmio.write(QUEUE_DESC_HIGH, 0);
        mmio.write(QUEUE_DRIVER_LOW, (int) driverArea);
        mmio.write(QUEUE_DRIVER_HIGH, 0);
        mmio.write(QUEUE_DEVICE_LOW, (int) (driverArea + 4));
        mmio.write(QUEUE_DEVICE_HIGH, 0);
        mmio.write(QUEUE_READY, 1);
    }

    /** Descriptor {@code i} of the packed ring at {@code base}, made available on the first lap (wrap 1). */
    void packedDesc(long base, int i, long addr, int len, int id, int flags) {
        byte[] d = new byte[16];
        UnsafeBuffer b = new UnsafeBuffer(d);
        b.putLong(0, addr);
        b.putInt(8, len);
        b.putShort(12, (short) id);
        b.putShort(14, (short) (flags | PackedRing.DESC_F_AVAIL));
        memory.write(base + 16L * i, d, 0, 16);
    }

    @Test
    void packedRingsNegotiatedRunPackedQueuesAndABrokenOneNeedsReset() {
        dev = new VirtioNetDevice(memory, MAC, 1, 256, OFFER & ~NetFeatures.MQ | NetFeatures.RING_PACKED);
        mmio = new MmioTransport(dev);
        assertTrue((readFeatures() & NetFeatures.RING_PACKED) != 0, "the device offers packed rings");
        upToFeaturesOk(NetFeatures.VERSION_1 | NetFeatures.RING_PACKED);
        setUpPackedQueue(0, 0x10000, 16);
        setUpPackedQueue(1, 0x20000, 16);
        assertEquals(DeviceError.OK, mmio.lastError());
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertInstanceOf(PackedDeviceQueue.class, dev.queue(0));
        assertInstanceOf(PackedDeviceQueue.class, dev.queue(1));
        assertEquals(16, dev.queue(1).size());
        packedDesc(0x10000, 0, 0x30000, 64, 0, PackedRing.DESC_F_WRITE);
        packedDesc(0x20000, 0, 0x31000, 64, 0, PackedRing.DESC_F_WRITE); // WRITE on TX
        assertFalse(dev.queue(1).nextAvail(dev.queue(1).newChain()));
        assertEquals(RingError.WRITABLE_ON_READ_ONLY_QUEUE, dev.queue(1).error());
        assertEquals(1, dev.brokenQueueCount());
        assertTrue((dev.status() & NEEDS_RESET) != 0);
        assertTrue((mmio.read(INTERRUPT_STATUS) & VirtioNetDevice.INT_CONFIG) != 0);
        assertTrue(dev.queue(0).nextAvail(dev.queue(0).newChain()), "the RX queue still works");

        // Reset, and a driver that does not ask for packed rings gets split ones again.
        mmio.write(STATUS, 0);
        assertFalse(dev.queue(1).isBroken());
        upToFeaturesOk(NetFeatures.VERSION_1);
        setUpQueue(1, new TestRings(memory, 16, 0x20000));
        assertEquals(DeviceError.OK, mmio.lastError());
        assertInstanceOf(DeviceQueue.class, dev.queue(1));
    }

    @Test
    void driverOkHandsQueuesToTheBackendAndResetTakesThemBack() {
        List<String> calls = new ArrayList<>();
        dev.setBackend(new DeviceBackend() {
            @Override
            public void activate(VirtioNetDevice d) {
                calls.add("activate");
            }

            @Override
            public void deactivate(VirtioNetDevice d) {
                calls.add("deactivate");
            }
        });
        upToFeaturesOk(NetFeatures.VERSION_1);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        mmio.write(STATUS, 0);
        assertEquals(List.of("activate", "deactivate"), calls);
    }

    @Test
    void callsRaiseTheUsedBufferBitOnThePairsVector() {
        dev.call(VirtioNetDevice.txQueue(1)).signal();
        assertTrue(dev.vector(1).isSignalled());
        assertFalse(dev.vector(0).isSignalled());
        assertEquals(VirtioNetDevice.INT_USED_BUFFER, mmio.read(INTERRUPT_STATUS));
        mmio.write(QUEUE_NOTIFY, 3);
        assertTrue(dev.kick(3).isSignalled());
    }
    @Test
    void featureSelectorsAreUnsigned() {
        // DeviceFeaturesSel and DriverFeaturesSel are 32-bit registers: 0xffffffff and 0x80000000 are large
        // selectors, which select no feature bits, not -1 and a negative number.
        for (int sel : new int[] {2, 0x80000000, 0xffffffff}) {
            mmio.write(DEVICE_FEATURES_SEL, sel);
            assertEquals(0, mmio.read(DEVICE_FEATURES), "selector 0x" + Integer.toHexString(sel));
        }
        mmio.write(STATUS, ACKNOWLEDGE);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER);
        writeFeatures(NetFeatures.VERSION_1);
        for (int sel : new int[] {2, 0x80000000, 0xffffffff}) {
            mmio.write(DRIVER_FEATURES_SEL, sel);
            mmio.write(DRIVER_FEATURES, 0xffffffff);
        }
        assertEquals(NetFeatures.VERSION_1, dev.driverFeatures(), "writes through large selectors change nothing");
        mmio.write(QUEUE_SEL, 0xffffffff);
        assertEquals(0, mmio.read(QUEUE_NUM_MAX), "no queue 0xffffffff");
    }

    @Test
    void rxBufferTooSmallForTheHeaderSetsNeedsResetWithAConfigInterrupt() {
        upToFeaturesOk(NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF);
        TestRings r0 = new TestRings(memory, 16, 0x10000);
        setUpQueue(0, r0);
        mmio.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        r0.desc(0, r0.dataAddr(), VirtioNetHeader.SIZE - 1, 2 /* WRITE */, 0);
        r0.pushAvail(0);
        RxPlacement rx = new RxPlacement(dev.queue(0), true);
        assertEquals(RxResult.RING_BROKEN, rx.place(new UnsafeBuffer(new byte[60]), 0, 60));
        assertEquals(RingError.RX_BUFFER_TOO_SMALL, dev.queue(0).error());
        assertTrue((dev.status() & NEEDS_RESET) != 0, "NEEDS_RESET");
        assertTrue((mmio.read(INTERRUPT_STATUS) & VirtioNetDevice.INT_CONFIG) != 0, "config interrupt");
        assertTrue(dev.vector(0).isSignalled());
    }
}
