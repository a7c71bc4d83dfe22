package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
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
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import dev.loomvisor.vmm.net.DeviceError;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Two of vmm's VMs (their own guest drivers and vCPUs) whose NICs vhost-net serves through the switch. */
class VmmIntegrationTest {

    static final long FRAMES = 100_000;

    @Test
    void vmmGuestsExchangeFramesThroughVhostNet() throws Exception {
        Kernel kernel = new Kernel();
        Process qemu = Owners.vmm(kernel);
        L2Switch sw = new L2Switch();
        byte[] macA = {2, 0, 0, 0, 0, 1};
        byte[] macB = {2, 0, 0, 0, 0, 2};
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel)) {
            VmmBackend ba = new VmmBackend(qemu.mainTask(), f, sw.addPort("a"));
            VmmBackend bb = new VmmBackend(qemu.mainTask(), f, sw.addPort("b"));
            try (VM a = VM.builder("a", qemu).memory(16L << 20).net(VM.NetSpec.of(macA, ba)).build();
                 VM b = VM.builder("b", qemu).memory(16L << 20).net(VM.NetSpec.of(macB, bb)).build()) {
                assertEquals(DeviceError.OK, a.start());
                assertEquals(DeviceError.OK, b.start());
                assertNull(ba.failure());
                assertNull(bb.failure());
                assertNotNull(ba.net(), "DRIVER_OK handed the rings to vhost-net");
                a.startVcpu(0, 0, TrafficSource.fixed(64, 0, FRAMES, macB), RxSink.NONE, false);
                b.startVcpu(0, 0, TrafficSource.fixed(64, 0, FRAMES, macA), RxSink.NONE, false);
                PairStats sa = a.driver(0).pair(0).stats();
                PairStats sbs = b.driver(0).pair(0).stats();
                assertTrue(Owners.await(Duration.ofSeconds(30), () -> accounted(sa, sbs, ba, bb) && accounted(sbs, sa, bb, ba)),
                        "a: " + sa + " b: " + sbs);
                assertEquals(0, sbs.rxCorrupt() + sa.rxCorrupt());
                assertEquals(0, sbs.rxOutOfOrder() + sa.rxOutOfOrder());
                assertEquals(sbs.rxFrames(), bb.net().rx().counters().get(RingCounter.FRAMES));
                a.stop();
                b.stop();
            }
            assertNull(ba.net(), "reset took the rings back");
        } finally {
            qemu.exit();
        }
    }

    private static boolean accounted(PairStats from, PairStats to, VmmBackend src, VmmBackend dst) {
        if (from.txCompleted() < FRAMES || src.net() == null || dst.net() == null) {
            return false;
        }
        var tx = src.net().tx().counters();
        long dropped = tx.get(RingCounter.DROP_BACKEND) + tx.get(RingCounter.DROP_BAD_HEADER)
                + tx.get(RingCounter.DROP_TOO_BIG) + dst.net().rx().counters().get(RingCounter.DROP_TOO_BIG);
        return to.rxFrames() + dropped == FRAMES;
    }
}
