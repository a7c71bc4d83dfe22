package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.worker.Accounting;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.RingLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A VM pair with --queues 2 and 4 (and 2 on packed rings) under every worker model: each queue pair of each VM carries frames (its
 * guest counters and its own vhost-net's ring counters), in order, each pair on its own vCPU and worker.
 */
class VmLabQueuesTest {

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (WorkerModel m : WorkerModel.values()) {
            out.add(Arguments.of(m, 2, RingLayout.SPLIT));
            out.add(Arguments.of(m, 4, RingLayout.SPLIT));
            // On packed rings the control queue that enables the pairs is packed too.
            out.add(Arguments.of(m, 2, RingLayout.PACKED));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} queues={1} {2}")
    @MethodSource("cases")
    void everyPairCarriesFrames(WorkerModel model, int queues, RingLayout ring) throws Exception {
        Kernel kernel = new Kernel();
        var vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        try (WorkerFactory f = model.factory(kernel, 2);
             VmPair pair = VmPair.open(vmm, f, VmLab.Options.defaults().withRing(ring), queues)) {
            for (int i = 0; i < 2; i++) {
                var vm = pair.vm(i);
                assertEquals(queues, vm.queues());
                assertEquals(queues, vm.vm().device(0).activePairs(), "VQ_PAIRS_SET enabled every pair");
                assertEquals(queues, vm.workers(), "one worker per pair");
                var device = vm.vm().device(0);
                assertEquals(ring == RingLayout.PACKED, device.hasFeature(NetFeatures.RING_PACKED));
                assertEquals(ring == RingLayout.PACKED,
                        device.queue(device.controlQueueIndex()) instanceof PackedDeviceQueue, "control queue layout");
            }
            // Each pair's vCPU is a thread of the VMM; user workers are too.
            int userWorkers = model.accounting() == Accounting.USER_WORKER ? 2 * queues : 0;
            long frames = 2_000;
            pair.vm(0).send(pair.vm(1).mac(), 64, frames, 0, false);
            pair.vm(1).send(pair.vm(0).mac(), 64, frames, 0, false);
            pair.vm(0).start();
            pair.vm(1).start();
            assertEquals(1 + 2 * queues + userWorkers, vmm.tasks().size());
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!allArrived(pair, queues, frames) && System.nanoTime() < deadline) {
                LockSupport.parkNanos(1_000_000);
            }
            pair.lab().stopVcpus();
            for (int i = 0; i < 2; i++) {
                var vm = pair.vm(i);
                for (int k = 0; k < queues; k++) {
                    var s = vm.driver(k).stats();
                    assertEquals(frames, s.rxFrames(), vm.name() + " pair " + k + ": " + s);
                    assertEquals(frames, s.rxInOrder(), vm.name() + " pair " + k + ": " + s);
                    assertEquals(frames, vm.net(k).rx().counters().get(RingCounter.FRAMES));
                    assertEquals(frames, vm.net(k).tx().counters().get(RingCounter.FRAMES));
                }
            }
        } finally {
            vmm.exit();
        }
    }

    /** Every pair received all its frames (the switch queues hold 2,000 64-byte frames: none dropped). */
    private static boolean allArrived(VmPair pair, int queues, long frames) {
        for (int i = 0; i < 2; i++) {
            for (int k = 0; k < queues; k++) {
                if (pair.vm(i).driver(k).stats().rxFrames() < frames) {
                    return false;
                }
            }
        }
        return true;
    }
}
