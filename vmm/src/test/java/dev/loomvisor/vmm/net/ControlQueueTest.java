package dev.loomvisor.vmm.net;

import static dev.loomvisor.vmm.net.DeviceStatus.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.driver.ControlQueueDriver;
import dev.loomvisor.vmm.driver.GuestAllocator;
import dev.loomvisor.vmm.driver.GuestNetDriver;
import dev.loomvisor.vmm.memory.GuestMemory;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The control queue: VQ_PAIRS_SET from the driver's probe, and every hostile command answered ERR. */
class ControlQueueTest {

    static final byte[] MAC = {0x52, 0x54, 0, 0, 0, 0x0c};
    static final long OFFER = NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.CTRL_VQ | NetFeatures.MQ
            | NetFeatures.EVENT_IDX;
    static final int MAX_PAIRS = 4;

    final GuestMemory memory = GuestMemory.anonymous(0, 16 << 20);
    final List<Integer> pairsChanges = new CopyOnWriteArrayList<>();
    VirtioNetDevice device;
    GuestNetDriver driver;

    @AfterEach
    void tearDown() {
        if (driver != null) {
            driver.reset();
        }
        memory.close();
    }

    void bringUp(long offer, GuestNetDriver.Options options) {
        device = new VirtioNetDevice(memory, MAC, (offer & NetFeatures.MQ) != 0 ? MAX_PAIRS : 1, 256, offer);
        device.setBackend(new DeviceBackend() {
            @Override
            public void activate(VirtioNetDevice d) {
            }

            @Override
            public void deactivate(VirtioNetDevice d) {
            }

            @Override
            public void queuePairsChanged(VirtioNetDevice d, int pairs) {
                pairsChanges.add(pairs);
            }
        });
        driver = new GuestNetDriver(memory, new MmioTransport(device), GuestAllocator.of(memory), options);
        assertEquals(DeviceError.OK, driver.probe());
    }

    GuestNetDriver.Options pairs(int n) {
        return new GuestNetDriver.Options(64, OFFER, n);
    }

    @Test
    void probeEnablesItsPairsWithVqPairsSet() {
        bringUp(OFFER, pairs(MAX_PAIRS));
        assertEquals(MAX_PAIRS, driver.pairCount());
        assertEquals(MAX_PAIRS, device.activePairs());
        assertEquals(List.of(MAX_PAIRS), pairsChanges);
        assertEquals(2 * MAX_PAIRS, device.controlQueueIndex());
        assertEquals(2 * MAX_PAIRS, driver.control().index());
        assertEquals(1, device.controlQueue().count(ControlError.OK));
        assertEquals(0, device.controlQueue().refusedCount());
    }

    @Test
    void aDriverWantingFewerPairsEnablesOnlyThoseAndMayChangeItsMind() {
        bringUp(OFFER, pairs(2));
        assertEquals(2, driver.pairCount());
        assertEquals(2, device.activePairs());
        assertEquals(DeviceError.OK, driver.control().setQueuePairs(MAX_PAIRS));
        assertEquals(DeviceError.OK, driver.control().setQueuePairs(1));
        assertEquals(1, device.activePairs());
        assertEquals(List.of(2, MAX_PAIRS, 1), pairsChanges);
    }

    @Test
    void hostileCommandsAreAnsweredErrAndChangeNothing() {
        bringUp(OFFER, pairs(2));
        ControlQueueDriver c = driver.control();
        byte[] none = new byte[0];
        // Wrong class (VIRTIO_NET_CTRL_RX = 0) and an unknown one.
        assertEquals(DeviceError.CONTROL_REFUSED, c.send(0, 0, new byte[] {1}, 1, true));
        assertEquals(DeviceError.CONTROL_REFUSED, c.send(0xff, 0, le16(2), 2, true));
        // Class MQ, other commands (RSS_CONFIG = 1, HASH_CONFIG = 2, and nonsense).
        for (int cmd : new int[] {1, 2, 0x80, 0xff}) {
            assertEquals(DeviceError.CONTROL_REFUSED, c.send(NetControl.CLASS_MQ, cmd, le16(2), 2, true));
        }
        // Pairs out of 1..max_virtqueue_pairs, down to 0 and up to the spec's own maximum and beyond.
        for (int n : new int[] {0, MAX_PAIRS + 1, NetControl.VQ_PAIRS_MAX, 0xffff}) {
            assertEquals(DeviceError.CONTROL_REFUSED, c.setQueuePairs(n), "pairs " + n);
        }
        // Short and odd buffers: no header, half a header, data of 0, 1, 3 and 64 bytes.
        assertEquals(DeviceError.CONTROL_REFUSED, c.sendBytes(none, 0, true));
        assertEquals(DeviceError.CONTROL_REFUSED, c.sendBytes(new byte[] {NetControl.CLASS_MQ}, 1, true));
        for (int len : new int[] {0, 1, 3, ControlQueueDriver.MAX_DATA}) {
            byte[] data = new byte[ControlQueueDriver.MAX_DATA];
            data[0] = 2;
            assertEquals(DeviceError.CONTROL_REFUSED, c.send(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET,
                    data, len, true), len + " data bytes");
        }
        // No ack byte at all: returned used, unanswered.
        assertEquals(DeviceError.CONTROL_REFUSED, c.send(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET,
                le16(MAX_PAIRS), 2, false));

        ControlQueue q = device.controlQueue();
        assertEquals(2, q.count(ControlError.UNKNOWN_CLASS));
        assertEquals(4, q.count(ControlError.UNKNOWN_COMMAND));
        assertEquals(4, q.count(ControlError.PAIRS_OUT_OF_RANGE));
        assertEquals(2, q.count(ControlError.SHORT_HEADER));
        assertEquals(4, q.count(ControlError.BAD_DATA_LENGTH));
        assertEquals(1, q.count(ControlError.NO_ACK_BUFFER));
        assertEquals(17, q.refusedCount());
        assertEquals(2, device.activePairs(), "no hostile command changed the pairs");
        assertEquals(List.of(2), pairsChanges);
        assertTrue(device.isRunning(), "a refused command is not a broken device");
        assertEquals(0, device.status() & NEEDS_RESET);
        assertEquals(DeviceError.OK, c.setQueuePairs(3), "the queue still serves good commands");
        assertEquals(3, device.activePairs());
    }

    @Test
    void vqPairsSetWithoutMqIsRefused() {
        bringUp(OFFER, new GuestNetDriver.Options(64, OFFER & ~NetFeatures.MQ, MAX_PAIRS));
        assertEquals(1, driver.pairCount());
        assertEquals(NetFeatures.CTRL_VQ, driver.features() & (NetFeatures.CTRL_VQ | NetFeatures.MQ));
        assertEquals(DeviceError.CONTROL_REFUSED, driver.control().setQueuePairs(2));
        assertEquals(1, device.controlQueue().count(ControlError.MQ_NOT_NEGOTIATED));
        assertEquals(1, device.activePairs());
        assertEquals(List.of(), pairsChanges);
    }

    @Test
    void mqWithoutCtrlVqIsNeitherAcceptedNorAskedFor() {
        // The driver drops MQ when it does not take CTRL_VQ (virtio 1.2 §5.1.3.1) and runs one pair.
        bringUp(OFFER, new GuestNetDriver.Options(64, OFFER & ~NetFeatures.CTRL_VQ, MAX_PAIRS));
        assertEquals(0, driver.features() & (NetFeatures.CTRL_VQ | NetFeatures.MQ));
        assertEquals(1, driver.pairCount());
        assertNull(driver.control());
        driver.reset();
        // A driver that asks for MQ alone fails FEATURES_OK.
        MmioTransport mmio = new MmioTransport(device);
        mmio.write(MmioTransport.STATUS, ACKNOWLEDGE);
        mmio.write(MmioTransport.STATUS, ACKNOWLEDGE | DRIVER);
        long f = NetFeatures.VERSION_1 | NetFeatures.MQ;
        mmio.write(MmioTransport.DRIVER_FEATURES_SEL, 0);
        mmio.write(MmioTransport.DRIVER_FEATURES, (int) f);
        mmio.write(MmioTransport.DRIVER_FEATURES_SEL, 1);
        mmio.write(MmioTransport.DRIVER_FEATURES, (int) (f >>> 32));
        mmio.write(MmioTransport.STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertEquals(DeviceError.FEATURES_REJECTED, mmio.lastError());
        // And the control queue does not exist without CTRL_VQ negotiated.
        f = NetFeatures.VERSION_1;
        mmio.write(MmioTransport.DRIVER_FEATURES_SEL, 0);
        mmio.write(MmioTransport.DRIVER_FEATURES, (int) f);
        mmio.write(MmioTransport.DRIVER_FEATURES_SEL, 1);
        mmio.write(MmioTransport.DRIVER_FEATURES, 1);
        mmio.write(MmioTransport.STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertEquals(DeviceError.OK, mmio.lastError());
        mmio.write(MmioTransport.QUEUE_SEL, 2 * MAX_PAIRS);
        mmio.write(MmioTransport.QUEUE_READY, 1);
        assertEquals(DeviceError.QUEUE_INDEX, mmio.lastError());
        driver = null;
        mmio.write(MmioTransport.STATUS, 0);
    }

    @Test
    void resetGoesBackToOnePair() {
        bringUp(OFFER, pairs(MAX_PAIRS));
        assertEquals(MAX_PAIRS, device.activePairs());
        driver.reset();
        assertEquals(1, device.activePairs());
        assertEquals(DeviceError.OK, driver.probe());
        assertEquals(MAX_PAIRS, device.activePairs());
    }

    @Test
    void theDeviceRejectsMqWithoutCtrlVqOffered() {
        assertThrows(IllegalArgumentException.class, () -> new VirtioNetDevice(memory, MAC, 2, 256,
                NetFeatures.VERSION_1 | NetFeatures.MQ));
    }

    @Test
    void aControlChainThatBreaksARingRuleNeedsResetAndTouchesNoOtherDevice() {
        bringUp(OFFER, pairs(2));
        GuestMemory otherMemory = GuestMemory.anonymous(0, 16 << 20);
        try {
            VirtioNetDevice other = new VirtioNetDevice(otherMemory, MAC, MAX_PAIRS, 256, OFFER);
            GuestNetDriver otherDriver = new GuestNetDriver(otherMemory, new MmioTransport(other),
                    GuestAllocator.of(otherMemory), pairs(2));
            assertEquals(DeviceError.OK, otherDriver.probe());
            // A second driver-side view of the control ring, as a guest scribbling on it would write: it
            // rewrites descriptor 0 to point far outside guest memory and makes it available again.
            int q = device.controlQueueIndex();
            var rogue = new dev.loomvisor.vmm.virtio.DriverQueue(memory, device.queueSize(q), device.queueDesc(q),
                    device.queueAvail(q), device.queueUsed(q), true);
            rogue.add(new long[] {0xffff_0000_0000L, 0xffff_0000_1000L}, new int[] {4, 1}, 1, 1, 0);
            rogue.add(new long[] {0xffff_0000_0000L, 0xffff_0000_1000L}, new int[] {4, 1}, 1, 1, 0);
            rogue.publish();
            new MmioTransport(device).write(MmioTransport.QUEUE_NOTIFY, q);
            assertTrue((device.status() & NEEDS_RESET) != 0, "the broken control queue asks for a reset");
            assertEquals(1, device.brokenQueueCount());
            assertEquals(dev.loomvisor.vmm.virtio.RingError.DESC_OUTSIDE_MEMORY, device.queue(q).error());
            assertEquals(2, device.activePairs());
            assertTrue(other.isRunning(), "the other device goes on");
            assertEquals(DeviceError.OK, otherDriver.control().setQueuePairs(MAX_PAIRS));
            assertEquals(MAX_PAIRS, other.activePairs());
            otherDriver.reset();
            driver.reset();
            assertEquals(0, device.status(), "a reset clears it");
            assertEquals(DeviceError.OK, driver.probe());
            assertEquals(2, device.activePairs());
        } finally {
            otherMemory.close();
        }
    }

    static byte[] le16(int v) {
        return new byte[] {(byte) v, (byte) (v >>> 8)};
    }
}
