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
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vmm.VM;
import dev.loomvisor.vmm.driver.PairStats;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
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
    static final byte[] MAC_A = {2, 0, 0, 0, 0, 1};
    static final byte[] MAC_B = {2, 0, 0, 0, 0, 2};

    /** A device whose driver is the test: features, the two rings as laid out, DRIVER_OK. */
    static VirtioNetDevice handDriven(GuestMemory memory, byte[] mac, VmmBackend backend, TestRings rx, TestRings tx) {
        VirtioNetDevice dev = new VirtioNetDevice(memory, mac, 1, 256, FEATURES);
        dev.setBackend(backend);
        assertEquals(DeviceError.OK, dev.setStatus(ACKNOWLEDGE));
        assertEquals(DeviceError.OK, dev.setStatus(ACKNOWLEDGE | DRIVER));
        assertEquals(DeviceError.OK, dev.setDriverFeatures(FEATURES));
        assertEquals(DeviceError.OK, dev.setStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK));
        TestRings[] rings = {rx, tx};
        for (int q = 0; q < 2; q++) {
            assertEquals(DeviceError.OK, dev.setQueueSize(q, rings[q].size()));
            assertEquals(DeviceError.OK, dev.setQueueDesc(q, rings[q].descAddr()));
            assertEquals(DeviceError.OK, dev.setQueueAvail(q, rings[q].availAddr()));
            assertEquals(DeviceError.OK, dev.setQueueUsed(q, rings[q].usedAddr()));
            assertEquals(DeviceError.OK, dev.setQueueReady(q, true));
        }
        assertEquals(DeviceError.OK, dev.setStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK));
        return dev;
    }

    @Test
    void anRxRingBrokenUnderVhostSetsTheDevicesNeedsResetWithAConfigInterrupt() throws Exception {
        Kernel kernel = new Kernel();
        Process qemu = Owners.vmm(kernel);
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel);
             GuestMemory memory = GuestMemory.anonymous(0x10000, 1 << 20)) {
            GeneratorBackend gen = new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), 64, 10);
            VmmBackend backend = new VmmBackend(qemu.mainTask(), f, gen);
            TestRings rx = new TestRings(memory, 16, 0x10000);
            // One receive buffer too small for the virtio-net header (virtio 1.2 §5.1.6.3.1).
            rx.desc(0, rx.dataAddr(), VirtioNetHeader.SIZE - 1, SplitRing.DESC_F_WRITE, 0);
            rx.pushAvail(0);
            VirtioNetDevice dev = handDriven(memory, MAC_B, backend, rx, new TestRings(memory, 16, 0x20000));
            assertNotNull(backend.net(), "DRIVER_OK handed the rings to vhost-net");
            // The device sets NEEDS_RESET, then the interrupt status, then signals the vector (virtio 1.2
            // §2.1.2), from the worker that found the break: wait until all three are visible.
            assertTrue(Owners.await(Duration.ofSeconds(10), () -> (dev.status() & NEEDS_RESET) != 0
                    && (dev.interruptStatus() & VirtioNetDevice.INT_CONFIG) != 0 && dev.vector(0).isSignalled()),
                    "NEEDS_RESET with a config interrupt");
            assertEquals(RingError.RX_BUFFER_TOO_SMALL, backend.net().rx().ringError());
            assertEquals(1, backend.net().rx().counters().get(RingCounter.RING_ERRORS));
            assertEquals(DeviceError.OK, dev.setStatus(0));
        } finally {
            qemu.exit();
        }
    }

    @Test
    void aGuestWhoseWholeRingCannotHoldAFrameDoesNotStallItsSender() throws Exception {
        // b's receive ring: 16 buffers of 64 bytes, 1024 bytes in all, never refilled. Every 1514-byte frame a
        // sends it must be dropped with a reason, and a's transmit ring must keep draining.
        long frames = 2_000;
        Kernel kernel = new Kernel();
        Process qemu = Owners.vmm(kernel);
        L2Switch sw = new L2Switch();
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel);
             GuestMemory memB = GuestMemory.anonymous(0x10000, 1 << 20)) {
            VmmBackend ba = new VmmBackend(qemu.mainTask(), f, sw.addPort("a"));
            VmmBackend bb = new VmmBackend(qemu.mainTask(), f, sw.addPort("b"));
            TestRings rx = new TestRings(memB, 16, 0x10000);
            for (int i = 0; i < 16; i++) {
                rx.desc(i, rx.dataAddr() + 64L * i, 64, SplitRing.DESC_F_WRITE, 0);
                rx.pushAvail(i);
            }
            VirtioNetDevice b = handDriven(memB, MAC_B, bb, rx, new TestRings(memB, 16, 0x20000));
            try (VM a = VM.builder("a", qemu).memory(16L << 20).net(VM.NetSpec.of(MAC_A, ba)).build()) {
                assertEquals(DeviceError.OK, a.start());
                a.startVcpu(0, 0, TrafficSource.fixed(1514, 0, frames, MAC_B), RxSink.NONE, false);
                PairStats sa = a.driver(0).pair(0).stats();
                assertTrue(Owners.await(Duration.ofSeconds(30), () -> sa.txCompleted() == frames),
                        "a's TX ring drained: " + sa);
                var bRx = bb.net().rx().counters();
                assertTrue(Owners.await(Duration.ofSeconds(30), () -> bRx.get(RingCounter.DROP_TOO_BIG)
                        + ba.net().tx().counters().get(RingCounter.DROP_BACKEND) == frames),
                        "every frame dropped with a reason: " + bRx.get(RingCounter.DROP_TOO_BIG));
                assertTrue(bRx.get(RingCounter.DROP_TOO_BIG) > 0, "b's ring dropped the frames it could never hold");
                assertEquals(0, bRx.get(RingCounter.FRAMES));
                assertEquals(0, b.status() & NEEDS_RESET, "too large is a frame's error, not the ring's");
                a.stop();
            }
            assertEquals(DeviceError.OK, b.setStatus(0));
        } finally {
            qemu.exit();
        }
    }
}
