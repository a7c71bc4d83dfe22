package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.fixture.VmPair;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vhost.work.VhostWorker;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The hot path allocates nothing per frame in steady state: the bytes the workers' threads allocate while
 * 400,000 frames cross (TX handler, switch, RX handler, work queue, notifications) stay below one byte a
 * frame, where even one small object per frame would cost 16. Platform workers, since per-thread allocation counters do not cover
 * virtual threads.
 */
class AllocationTest {

    @Test
    void workersAllocateNothingPerFrame() throws Exception {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        try (WorkerFactory f = WorkerModel.USER_WORKER_PLATFORM.factory(kernel);
             VmPair pair = VmPair.open(vmm.mainTask(), f, VmPair.Options.defaults())) {
            pair.run(64, 200_000, 30, TimeUnit.SECONDS); // warm-up: JIT, first-time paths
            List<Long> ids = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                for (VhostWorker w : pair.net(i).device().workers()) {
                    ids.add(w.thread().task().thread().threadId());
                }
            }
            long before = 0;
            for (long id : ids) {
                before += mx.getThreadAllocatedBytes(id);
            }
            VmPair.Result r = pair.run(64, 200_000, 30, TimeUnit.SECONDS);
            long after = 0;
            for (long id : ids) {
                after += mx.getThreadAllocatedBytes(id);
            }
            long frames = r.sentAb() + r.sentBa();
            long bytes = after - before;
            System.out.printf("%d bytes allocated by %d workers for %d frames%n", bytes, ids.size(), frames);
            assertTrue(r.complete());
            // One object per frame would be >= 16 bytes a frame; allow under one byte a frame (wake-ups and lock
            // contention on control paths may allocate a little, per batch or per sleep, not per frame).
            assertTrue(bytes < frames, bytes + " bytes for " + frames + " frames");
        } finally {
            vmm.exit();
        }
    }
}
