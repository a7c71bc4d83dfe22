package dev.loomvisor.vmm;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.RingLayout;
import dev.loomvisor.vmm.net.Wire;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** VMs owned by emulated VMM processes: vCPUs are the owner's threads; stopping stops everything. */
class VMTest {

    static final byte[] MAC_A = {0x52, 0x54, 0, 0, 1, 0x0a};
    static final byte[] MAC_B = {0x52, 0x54, 0, 0, 1, 0x0b};

    static void awaitTrue(BooleanSupplier c, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!c.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
            Thread.sleep(1);
        }
    }

    static Process qemu(Kernel k, long nproc) throws ErrnoException {
        return k.spawn("qemu-system-x86", Credentials.user(1000, 1000), Rlimits.nproc(nproc), k.rootCgroup());
    }

    @Test
    void twoVmsOnAWireExchangeFramesAndStopCleanly() throws Exception {
        Kernel k = new Kernel();
        Process pa = qemu(k, Rlimits.INFINITY);
        Process pb = qemu(k, Rlimits.INFINITY);
        Wire wire = Wire.pair();
        try (VM a = VM.builder("a", pa).memory(16 << 20).net(VM.NetSpec.of(MAC_A, wire.endA())).build();
             VM b = VM.builder("b", pb).memory(16 << 20).memfd(true).carrier(Carrier.PLATFORM)
                     .net(VM.NetSpec.of(MAC_B, wire.endB())).build()) {
            assertEquals(DeviceError.OK, a.start());
            assertEquals(DeviceError.OK, b.start());
            int frames = 10_000;
            Task va = a.startVcpu(0, 0, TrafficSource.fixed(256, 0, frames, MAC_B), RxSink.NONE, false);
            Task vb = b.startVcpu(0, 0, null, RxSink.NONE, false);
            assertSame(pa, va.process(), "a vCPU is a thread of the VMM process");
            assertTrue(pa.taskIds().contains(va.tid()));
            assertEquals("vcpu0", va.comm());
            awaitTrue(() -> b.driver(0).pair(0).stats().rxInOrder() == frames, "frames at b");
            assertEquals(0, b.driver(0).pair(0).stats().rxLost());

            a.stop();
            assertTrue(va.isDead(), "stop waits for the vCPUs");
            assertEquals(0, a.device(0).status(), "stop resets the device");
            assertFalse(pa.taskIds().contains(va.tid()));
            b.stop();
            assertTrue(vb.isDead());
        }
    }

    @Test
    void twoVmsOnPackedRingsExchangeAndEchoFramesGatheringMergedBuffers() throws Exception {
        Kernel k = new Kernel();
        Process pa = qemu(k, Rlimits.INFINITY);
        Wire wire = Wire.pair();
        // 512-byte RX buffers: a 1,500-byte frame takes several (MRG_RXBUF), gathered by the guest.
        VM.NetSpec specA = VM.NetSpec.of(MAC_A, wire.endA()).ring(RingLayout.PACKED);
        VM.NetSpec specB = VM.NetSpec.of(MAC_B, wire.endB()).ring(RingLayout.PACKED);
        specB = new VM.NetSpec(specB.mac(), specB.pairs(), specB.queueMax(), specB.offered(), specB.backend(),
                specB.driverOptions().withRxBufferSize(512));
        try (VM a = VM.builder("a", pa).memory(16 << 20).net(specA).build();
             VM b = VM.builder("b", pa).memory(16 << 20).net(specB).build()) {
            assertEquals(DeviceError.OK, a.start());
            assertEquals(DeviceError.OK, b.start());
            for (VM vm : new VM[] {a, b}) {
                assertTrue(vm.device(0).hasFeature(NetFeatures.RING_PACKED));
                assertInstanceOf(PackedDeviceQueue.class, vm.device(0).queue(0));
                assertInstanceOf(PackedDeviceQueue.class, vm.device(0).queue(1));
            }
            int frames = 5_000;
            var sb = b.driver(0).pair(0).stats();
            var sa = a.driver(0).pair(0).stats();
            a.startVcpu(0, 0, TrafficSource.fixed(1500, 0, frames, MAC_B), RxSink.NONE, false);
            b.startVcpu(0, 0, null, RxSink.NONE, true);
            awaitTrue(() -> sb.rxFrames() == frames, "frames at b");
            assertEquals(frames, sb.rxInOrder());
            assertEquals(0, sb.rxCorrupt() + sb.rxLost());
            a.driver(0).pair(0).transmit(TrafficSource.fixed(1500, 0, frames, MAC_B).pings());
            awaitTrue(() -> sa.rxFrames() == frames, "pongs at a");
            assertEquals(frames, sb.echoed());
            assertEquals(0, sa.rxCorrupt());
            assertEquals(0, a.device(0).brokenQueueCount() + b.device(0).brokenQueueCount());
        }
    }

    @Test
    void vcpusCountAgainstTheOwnersNproc() throws Exception {
        Kernel k = new Kernel();
        Process p = qemu(k, 2); // the main thread and one vCPU
        try (VM vm = VM.builder("small", p).memory(8 << 20).net(VM.NetSpec.of(MAC_A, Wire.loopback().endA())).build()) {
            assertEquals(DeviceError.OK, vm.start());
            vm.startVcpu(0, 0, null, RxSink.NONE, false);
            ErrnoException e = assertThrows(ErrnoException.class, () -> vm.startVcpu(0, 0, null, RxSink.NONE, false));
            assertEquals(Errno.EAGAIN, e.errno());
            assertEquals(1, vm.vcpus().size());
        }
    }

    @Test
    void ownerExitKillsTheVcpus() throws Exception {
        Kernel k = new Kernel();
        Process p = qemu(k, Rlimits.INFINITY);
        try (VM vm = VM.builder("doomed", p).memory(8 << 20).net(VM.NetSpec.of(MAC_A, Wire.loopback().endA())).build()) {
            assertEquals(DeviceError.OK, vm.start());
            Task v = vm.startVcpu(0, 0, TrafficSource.fixed(64, 1000, Long.MAX_VALUE, MAC_A), RxSink.NONE, false);
            awaitTrue(() -> vm.driver(0).pair(0).stats().rxFrames() > 0, "loopback traffic");
            p.exit();
            assertTrue(v.isDead(), "exit_group waits for every thread");
            assertTrue(p.isDead());
        }
    }
}
