package dev.loomvisor.vhost.net;

import static dev.loomvisor.vmm.net.DeviceStatus.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.testing.TestRings;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.SplitRing;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** vmm's device on vhost-net's data path, with a guest that breaks its RX ring (rings written by hand). */
class VmmBackendTest {

    static final long FEATURES = NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF;

    @Test
    void anRxRingBrokenUnderVhostSetsTheDevicesNeedsResetWithAConfigInterrupt() throws Exception {
        Kernel kernel = new Kernel();
        Process qemu = Owners.vmm(kernel);
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel);
             GuestMemory memory = GuestMemory.anonymous(0x10000, 1 << 20)) {
            VirtioNetDevice dev = new VirtioNetDevice(memory, new byte[] {2, 0, 0, 0, 0, 1}, 1, 256, FEATURES);
            GeneratorBackend gen = new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), 64, 10);
            VmmBackend backend = new VmmBackend(qemu.mainTask(), f, gen);
            dev.setBackend(backend);
            TestRings rx = new TestRings(memory, 16, 0x10000);
            TestRings tx = new TestRings(memory, 16, 0x20000);
            assertEquals(DeviceError.OK, dev.setStatus(ACKNOWLEDGE));
            assertEquals(DeviceError.OK, dev.setStatus(ACKNOWLEDGE | DRIVER));
            assertEquals(DeviceError.OK, dev.setDriverFeatures(FEATURES));
            assertEquals(DeviceError.OK, dev.setStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK));
            TestRings[] rings = {rx, tx};
            for (int q = 0; q < 2; q++) {
                assertEquals(DeviceError.OK, dev.setQueueSize(q, 16));
                assertEquals(DeviceError.OK, dev.setQueueDesc(q, rings[q].descAddr()));
                assertEquals(DeviceError.OK, dev.setQueueAvail(q, rings[q].availAddr()));
                assertEquals(DeviceError.OK, dev.setQueueUsed(q, rings[q].usedAddr()));
                assertEquals(DeviceError.OK, dev.setQueueReady(q, true));
            }
            // One receive buffer too small for the virtio-net header (virtio 1.2 §5.1.6.3.1).
            rx.desc(0, rx.dataAddr(), VirtioNetHeader.SIZE - 1, SplitRing.DESC_F_WRITE, 0);
            rx.pushAvail(0);
            assertEquals(DeviceError.OK, dev.setStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK));
            assertNotNull(backend.net(), "DRIVER_OK handed the rings to vhost-net");
            assertTrue(Owners.await(Duration.ofSeconds(10), () -> (dev.status() & NEEDS_RESET) != 0), "NEEDS_RESET");
            assertTrue((dev.interruptStatus() & VirtioNetDevice.INT_CONFIG) != 0, "config interrupt");
            assertTrue(dev.vector(0).isSignalled());
            assertEquals(RingError.RX_BUFFER_TOO_SMALL, backend.net().rx().ringError());
            assertEquals(1, backend.net().rx().counters().get(RingCounter.RING_ERRORS));
            assertEquals(DeviceError.OK, dev.setStatus(0));
        } finally {
            qemu.exit();
        }
    }
}
