package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;
import dev.loomvisor.vhost.fixture.VmPair;
import dev.loomvisor.vhost.testing.Owners;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Two VMs, one vhost-net device each, through the switch, under every worker model: every frame sent is
 * received or dropped with a counted reason, payloads arrive intact, no flow is reordered.
 */
class EndToEndTest {

    /** Frames each way per model (the million; -Dloomvisor.e2e.frames=N to change). */
    static final long FRAMES = Long.getLong("loomvisor.e2e.frames", 1_000_000);

    @ParameterizedTest
    @EnumSource(WorkerModel.class)
    void everyFrameIsAccountedForUnderEveryModel(WorkerModel model) throws Exception {
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        try (WorkerFactory f = model.factory(kernel, 2);
             VmPair pair = VmPair.open(vmm.mainTask(), f, VmPair.Options.defaults())) {
            VmPair.Result r = pair.run(64, FRAMES, 50, TimeUnit.SECONDS);
            System.out.printf("%s: %.0f frames/s %s%n", model.modelName(), r.framesPerSecond(), r);
            assertNull(pair.guest(0).failure());
            assertNull(pair.guest(1).failure());
            assertTrue(r.complete(), "not every frame accounted for in time: " + r);
            assertEquals(FRAMES, r.sentAb());
            assertEquals(FRAMES, r.sentBa());
            assertEquals(r.sentAb(), r.receivedAb() + r.droppedAb(), "a to b: sent = received + dropped");
            assertEquals(r.sentBa(), r.receivedBa() + r.droppedBa(), "b to a: sent = received + dropped");
            assertEquals(0, r.badChecksums(), "payload checksums");
            assertEquals(0, r.reordered(), "order within each flow");
            // The drop reasons add up to the drops (only the switch's full queue can drop here).
            long reasons = r.dropsByReason().values().stream().mapToLong(Long::longValue).sum();
            assertEquals(r.droppedAb() + r.droppedBa(), reasons);
            // Device and switch counters agree with the guests.
            assertEquals(r.receivedAb(), pair.net(1).rx().counters().get(RingCounter.FRAMES));
            assertEquals(r.receivedAb(), pair.port(1).counters().get(PortCounter.RX_FRAMES));
            var tx = pair.net(0).tx().counters();
            assertEquals(FRAMES, tx.get(RingCounter.FRAMES) + tx.get(RingCounter.DROP_BACKEND),
                    "every TX frame went to the backend, which took it or dropped it");
            assertEquals(tx.get(RingCounter.DROP_BACKEND), r.droppedAb());
        } finally {
            vmm.exit();
        }
    }
}
