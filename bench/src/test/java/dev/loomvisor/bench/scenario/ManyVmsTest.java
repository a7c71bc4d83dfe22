package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.timer.HrtimerBase;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vmm.memory.GuestMemory;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * A thousand VMs on one switch: set up (in parallel), each pair sends paced frames both ways through the lab's
 * one pacing clock, every VM receives exactly what its peer sent and nothing else, and all of it is torn
 * down again, guest memory and timers given back. The time bound is a hang guard only.
 */
class ManyVmsTest {

    private static final int VMS = 1_000;
    private static final long FRAMES = 5;

    @Test
    void aThousandVmsSetUpCarryFramesAndTearDown() {
        assertTimeoutPreemptively(Duration.ofMinutes(5), this::run);
    }

    private void run() throws Exception {
        Kernel kernel = new Kernel();
        var vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        long memories0 = GuestMemory.liveMemories();
        var options = VmLab.Options.defaults().withQueueSize(16).withBuffers(8, 8).withSwitchQueueBytes(4096);
        HrtimerBase clock;
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel)) {
            VmLab lab = new VmLab(vmm, f, options);
            try {
                clock = lab.pacingClock();
                List<VmLab.Vm> vms = lab.addVms("vm", VMS);
                assertEquals(VMS, vms.size());
                assertEquals(VMS, lab.vms().size());
                assertEquals(8, vms.get(0).driver().rxBuffers(), "the RX buffer count is honoured");
                assertEquals(8, vms.get(0).driver().txBuffers(), "the TX buffer count is honoured");
                for (int i = 0; i < VMS; i++) {
                    vms.get(i).send(vms.get(i ^ 1).mac(), 64, FRAMES, 2e6, true); // one frame every 2 ms
                }
                for (var v : vms) {
                    v.start();
                }
                long end = System.nanoTime() + Duration.ofMinutes(2).toNanos();
                while (!allArrived(vms) && System.nanoTime() - end < 0) {
                    LockSupport.parkNanos(10_000_000);
                }
                long sent = 0;
                long received = 0;
                for (int i = 0; i < VMS; i++) {
                    var me = vms.get(i);
                    var peer = vms.get(i ^ 1);
                    assertEquals(FRAMES, me.driver().receivedFrom(peer.mac()), me.name() + " got its peer's frames");
                    assertEquals(FRAMES, me.stats().rxInOrder(), me.name() + ": in order, none from elsewhere");
                    assertEquals(0, me.stats().rxCorrupt() + me.stats().rxLost(), me.name() + ": intact");
                    assertEquals(0, VmLab.dropped(peer, me), "nothing dropped from " + peer.name());
                    sent += me.stats().txFrames();
                    received += me.stats().rxFrames();
                }
                assertEquals(VMS * FRAMES, sent);
                assertEquals(sent, received, "every frame sent arrived once");
                assertTrue(clock.timers() >= VMS, "every paced vCPU has its timer on the one clock");
            } finally {
                lab.close();
            }
            assertTrue(lab.vms().isEmpty());
            assertFalse(clock.clockThread().isAlive(), "the lab's clock stopped with it");
            assertEquals(0, clock.timers(), "every vCPU gave its timer back");
            assertEquals(memories0, GuestMemory.liveMemories(), "every guest memory freed");
        } finally {
            vmm.exit();
        }
    }

    private static boolean allArrived(List<VmLab.Vm> vms) {
        for (var v : vms) {
            if (v.stats().rxFrames() < FRAMES) {
                return false;
            }
        }
        return true;
    }
}
