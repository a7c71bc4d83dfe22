package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vmm.VM;
import dev.loomvisor.vmm.driver.PairStats;
import dev.loomvisor.vmm.driver.QueuePairDriver;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.RingLayout;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.Task;
import dev.loomvisor.vhost.work.VhostWorker;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Two of vmm's VMs on packed rings (VIRTIO_F_RING_PACKED negotiated by their guest drivers), served by
 * vhost-net under every worker model: closed loop both ways, open loop, and round trips through an echo guest.
 * Every frame is checked by the receiving guest (sequence per flow, payload).
 */
class VmmPackedRingTest {

    static final long FRAMES = 20_000;
    static final long PACED = 500;
    static final long PINGS = 500;
    static final double PACE_NANOS = 20_000;
    static final Duration WAIT = Duration.ofSeconds(60);

    @ParameterizedTest
    @EnumSource(WorkerModel.class)
    void packedRingGuestsExchangeFramesClosedOpenAndEcho(WorkerModel model) throws Exception {
        Kernel kernel = new Kernel();
        Process qemu = Owners.vmm(kernel);
        L2Switch sw = new L2Switch();
        byte[] macA = {2, 0, 0, 0, 0, 1};
        byte[] macB = {2, 0, 0, 0, 0, 2};
        try (WorkerFactory f = model.factory(kernel)) {
            VmmBackend ba = new VmmBackend(qemu.mainTask(), f, sw.addPort("a"));
            VmmBackend bb = new VmmBackend(qemu.mainTask(), f, sw.addPort("b"));
            try (VM a = VM.builder("a", qemu).memory(16L << 20)
                    .net(VM.NetSpec.of(macA, ba).ring(RingLayout.PACKED)).build();
                 VM b = VM.builder("b", qemu).memory(16L << 20)
                         .net(VM.NetSpec.of(macB, bb).ring(RingLayout.PACKED)).build()) {
                assertEquals(DeviceError.OK, a.start());
                assertEquals(DeviceError.OK, b.start());
                assertNull(ba.failure());
                assertTrue(a.device(0).hasFeature(NetFeatures.RING_PACKED), "the driver negotiated packed rings");
                assertTrue(a.device(0).queue(0) instanceof PackedDeviceQueue);
                assertTrue(ba.net().rx().isPacked() && ba.net().tx().isPacked(), "vhost-net serves packed rings");
                QueuePairDriver pa = a.driver(0).pair(0);
                QueuePairDriver pb = b.driver(0).pair(0);
                PairStats sa = pa.stats();
                PairStats sb = pb.stats();

                // Closed loop, both ways, frames of several sizes (1,500 B takes MRG_RXBUF's second buffer).
                pa.transmit(TrafficSource.mix(new int[] {64, 1500}, new int[] {1, 1}, 0, FRAMES, macB, 7));
                pb.transmit(TrafficSource.fixed(64, 0, FRAMES, macA));
                a.startVcpu(0, 0);
                b.startVcpu(0, 0);
                // A closed loop outruns the receiver: the switch drops what a full port queue cannot take, and
                // every frame is either received or counted there.
                assertTrue(Owners.await(WAIT, () -> sb.rxFrames() + backendDrops(ba) == FRAMES
                                && sa.rxFrames() + backendDrops(bb) == FRAMES),
                        "closed loop: a " + sa + " b " + sb);
                long aFromB = sa.rxFrames();
                long bFromA = sb.rxFrames();
                for (VmmBackend x : new VmmBackend[] {ba, bb}) {
                    var tx = x.net().tx().counters();
                    var rx = x.net().rx().counters();
                    assertEquals(0, tx.get(RingCounter.DROP_BAD_HEADER) + tx.get(RingCounter.DROP_TOO_BIG)
                            + rx.get(RingCounter.DROP_TOO_BIG) + rx.get(RingCounter.DROP_BAD_RX_CHAIN)
                            + tx.get(RingCounter.RING_ERRORS) + rx.get(RingCounter.RING_ERRORS));
                }

                // Open loop: paced frames (slow enough that none is dropped), each one's latency handed to the sink.
                AtomicLong latencies = new AtomicLong();
                pb.setLatencySink(ns -> latencies.incrementAndGet());
                pa.transmit(TrafficSource.paced(64, PACE_NANOS, PACED, macB).stampIntended());
                assertTrue(Owners.await(WAIT, () -> sb.rxFrames() == bFromA + PACED), "open loop: b " + sb);
                assertEquals(PACED, latencies.get());
                pb.setLatencySink(null);

                // Echo: b returns every PING as a PONG.
                pb.setEcho(true);
                pa.transmit(TrafficSource.paced(64, PACE_NANOS, PINGS, macB).pings());
                assertTrue(Owners.await(WAIT, () -> sa.rxFrames() == aFromB + PINGS), "echo: a " + sa + " b " + sb);
                assertEquals(PINGS, sb.echoed());

                assertEquals(0, sa.rxCorrupt() + sb.rxCorrupt());
                assertEquals(0, sa.rxOutOfOrder() + sb.rxOutOfOrder());
                assertNull(pa.failure());
                assertNull(pb.failure());
                assertEquals(0, a.device(0).brokenQueueCount() + b.device(0).brokenQueueCount());
                a.stop();
                b.stop();
            }
            assertNull(ba.net(), "reset took the rings back");
        } finally {
            qemu.exit();
        }
    }

    /** Frames the switch refused from {@code b}'s port (the receiver's queue was full). */
    private static long backendDrops(VmmBackend b) {
        VhostNet n = b.net();
        return n == null ? 0 : n.tx().counters().get(RingCounter.DROP_BACKEND);
    }

    /**
     * The guest driver on packed rings allocates nothing per frame, nor do the workers serving them: bytes the
     * vCPU and worker threads allocate while 200,000 frames cross stay below one a frame. Platform vCPUs and
     * workers, since per-thread allocation counters do not cover virtual threads.
     */
    @Test
    void packedRingPathAllocatesNothingPerFrame() throws Exception {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Kernel kernel = new Kernel();
        Process qemu = Owners.vmm(kernel);
        L2Switch sw = new L2Switch();
        byte[] macA = {2, 0, 0, 0, 0, 1};
        byte[] macB = {2, 0, 0, 0, 0, 2};
        try (WorkerFactory f = WorkerModel.USER_WORKER_PLATFORM.factory(kernel)) {
            VmmBackend ba = new VmmBackend(qemu.mainTask(), f, sw.addPort("a"));
            VmmBackend bb = new VmmBackend(qemu.mainTask(), f, sw.addPort("b"));
            try (VM a = VM.builder("a", qemu).memory(16L << 20).carrier(Carrier.PLATFORM)
                    .net(VM.NetSpec.of(macA, ba).ring(RingLayout.PACKED)).build();
                 VM b = VM.builder("b", qemu).memory(16L << 20).carrier(Carrier.PLATFORM)
                         .net(VM.NetSpec.of(macB, bb).ring(RingLayout.PACKED)).build()) {
                assertEquals(DeviceError.OK, a.start());
                assertEquals(DeviceError.OK, b.start());
                QueuePairDriver pa = a.driver(0).pair(0);
                QueuePairDriver pb = b.driver(0).pair(0);
                a.startVcpu(0, 0);
                b.startVcpu(0, 0);
                long warm = 100_000;
                long measured = 200_000;
                pa.transmit(TrafficSource.fixed(64, 0, warm, macB));
                pb.transmit(TrafficSource.fixed(64, 0, warm, macA));
                assertTrue(Owners.await(WAIT, () -> pa.stats().txCompleted() == warm && pb.stats().txCompleted() == warm));
                List<Long> ids = new ArrayList<>();
                for (VM vm : List.of(a, b)) {
                    for (Task t : vm.vcpus()) {
                        ids.add(t.thread().threadId());
                    }
                }
                for (VmmBackend x : List.of(ba, bb)) {
                    for (VhostWorker w : x.net().device().workers()) {
                        ids.add(w.thread().task().thread().threadId());
                    }
                }
                long before = 0;
                for (long id : ids) {
                    before += mx.getThreadAllocatedBytes(id);
                }
                pa.transmit(TrafficSource.fixed(64, 0, measured, macB));
                pb.transmit(TrafficSource.fixed(64, 0, measured, macA));
                assertTrue(Owners.await(WAIT, () -> pa.stats().txCompleted() == warm + measured
                        && pb.stats().txCompleted() == warm + measured));
                long after = 0;
                for (long id : ids) {
                    after += mx.getThreadAllocatedBytes(id);
                }
                long bytes = after - before;
                long frames = 2 * measured;
                assertTrue(bytes < frames, bytes + " bytes allocated by " + ids.size() + " threads for " + frames + " frames");
                assertEquals(0, pa.stats().rxCorrupt() + pb.stats().rxCorrupt());
                a.stop();
                b.stop();
            }
        } finally {
            qemu.exit();
        }
    }
}
