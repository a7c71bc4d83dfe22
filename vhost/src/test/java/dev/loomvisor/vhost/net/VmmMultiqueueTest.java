package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.Accounting;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;
import dev.loomvisor.vhost.net.VmmBackend.VringWorkers;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vmm.VM;
import dev.loomvisor.vmm.driver.GuestNetDriver;
import dev.loomvisor.vmm.driver.PairStats;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.NetFeatures;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Two VMs with n queue pairs each (MQ through the control queue), every pair served by its own vhost-net on
 * a multiqueue switch port, every pair run by its own vCPU: each pair carries its frames, in order, and
 * the vhost workers are the ones the model gives (one per pair, or with the 6.5 worker calls one per ring).
 */
class VmmMultiqueueTest {

    static final long FRAMES = 5_000;
    static final long OFFER = NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.MRG_RXBUF
            | NetFeatures.EVENT_IDX | NetFeatures.CTRL_VQ | NetFeatures.MQ;

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (WorkerModel m : WorkerModel.values()) {
            out.add(Arguments.of(m, 2, VringWorkers.PER_PAIR));
            out.add(Arguments.of(m, 4, VringWorkers.PER_PAIR));
            out.add(Arguments.of(m, 2, VringWorkers.PER_VIRTQUEUE));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} queues={1} {2}")
    @MethodSource("cases")
    void everyPairCarriesItsFramesOnItsOwnWorkers(WorkerModel model, int pairs, VringWorkers vringWorkers)
            throws Exception {
        Kernel kernel = new Kernel();
        Process qemu = Owners.vmm(kernel);
        L2Switch sw = new L2Switch();
        byte[] macA = {2, 0, 0, 0, 0, 1};
        byte[] macB = {2, 0, 0, 0, 0, 2};
        L2Switch.Port pa = sw.addPort("a", pairs);
        L2Switch.Port pb = sw.addPort("b", pairs);
        try (WorkerFactory f = model.factory(kernel, 2)) {
            VmmBackend ba = new VmmBackend(qemu.mainTask(), f, pa::queue, 0, null, vringWorkers);
            VmmBackend bb = new VmmBackend(qemu.mainTask(), f, pb::queue, 0, null, vringWorkers);
            var options = new GuestNetDriver.Options(256, OFFER, pairs);
            try (VM a = VM.builder("a", qemu).memory(32L << 20)
                         .net(new VM.NetSpec(macA, pairs, 256, OFFER, ba, options)).build();
                 VM b = VM.builder("b", qemu).memory(32L << 20)
                         .net(new VM.NetSpec(macB, pairs, 256, OFFER, bb, options)).build()) {
                assertEquals(DeviceError.OK, a.start());
                assertEquals(DeviceError.OK, b.start());
                assertNull(ba.failure());
                assertNull(bb.failure());
                assertEquals(pairs, a.driver(0).pairCount());
                assertEquals(pairs, a.device(0).activePairs());
                assertEquals(pairs, ba.netCount(), "one vhost-net per pair");

                boolean ownWorkers = vringWorkers == VringWorkers.PER_VIRTQUEUE
                        && model.accounting() == Accounting.USER_WORKER;
                int workersPerVm = ownWorkers ? 2 * pairs : pairs;
                assertEquals(workersPerVm, ba.workerCount());
                assertEquals(workersPerVm, bb.workerCount());
                for (int k = 0; k < pairs; k++) {
                    var d = ba.net(k).device();
                    int rxWorker = d.getVringWorker(qemu.mainTask(), VirtioNet.RX);
                    int txWorker = d.getVringWorker(qemu.mainTask(), VirtioNet.TX);
                    assertEquals(ownWorkers, rxWorker != txWorker, "pair " + k);
                }

                for (int k = 0; k < pairs; k++) {
                    a.startVcpu(0, k, TrafficSource.fixed(64, 0, FRAMES, macB), RxSink.NONE, false);
                    b.startVcpu(0, k, TrafficSource.fixed(64, 0, FRAMES, macA), RxSink.NONE, false);
                }
                // Tasks of the VMM: its main task, a vCPU per pair per VM, and the user workers (kthreads are
                // not the VMM's).
                int userWorkers = model.accounting() == Accounting.USER_WORKER ? 2 * workersPerVm : 0;
                assertEquals(1 + 2 * pairs + userWorkers, qemu.tasks().size(), () -> qemu.tasks().toString());

                assertTrue(Owners.await(Duration.ofSeconds(60), () -> accounted(a, pa, b, pb, pairs)
                        && accounted(b, pb, a, pa, pairs)), () -> stats(a, b, pairs));
                for (VM to : List.of(a, b)) {
                    VmmBackend be = to == a ? ba : bb;
                    for (int k = 0; k < pairs; k++) {
                        PairStats s = to.driver(0).pair(k).stats();
                        assertTrue(s.rxFrames() > 0, to.name() + " pair " + k + " received nothing: " + s);
                        assertEquals(0, s.rxOutOfOrder() + s.rxCorrupt(), to.name() + " pair " + k + ": " + s);
                        assertEquals(s.rxFrames(), be.net(k).rx().counters().get(RingCounter.FRAMES),
                                "the pair's own vhost-net RX ring carried them");
                        assertTrue(be.net(k).tx().counters().get(RingCounter.FRAMES) > 0);
                    }
                }
                a.stop();
                b.stop();
                assertEquals(0, ba.netCount(), "reset took every pair's rings back");
            }
        } finally {
            qemu.exit();
        }
    }

    /** Every frame {@code from} sent is either received by {@code to} or counted as dropped on the way. */
    private static boolean accounted(VM from, L2Switch.Port fromPort, VM to, L2Switch.Port toPort, int pairs) {
        long sent = 0;
        long received = 0;
        for (int k = 0; k < pairs; k++) {
            if (from.driver(0).pair(k).stats().txCompleted() < FRAMES) {
                return false;
            }
            sent += FRAMES;
            received += to.driver(0).pair(k).stats().rxFrames();
        }
        long dropped = fromPort.counters().get(PortCounter.TX_DROP_QUEUE_FULL);
        return received + dropped == sent;
    }

    private static String stats(VM a, VM b, int pairs) {
        StringBuilder s = new StringBuilder();
        for (VM v : List.of(a, b)) {
            for (int k = 0; k < pairs; k++) {
                s.append(v.name()).append(k).append(": ").append(v.driver(0).pair(k).stats()).append('\n');
            }
        }
        return s.toString();
    }
}
