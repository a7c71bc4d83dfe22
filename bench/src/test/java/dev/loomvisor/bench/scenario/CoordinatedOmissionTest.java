package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Signal;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;

/**
 * Coordinated-omission correction on the real data path: guest 0 sends to guest 1 open loop at 10,000
 * frames/s, stamping each frame with its intended send time. Once, the sending device's worker is frozen
 * with SIGSTOP for 100 ms (as a suspend or a descheduled host thread would), then SIGCONT. The guest's
 * 256-entry TX ring fills within 26 ms and the guest cannot send; the ~1,000 frames due during the stall
 * must all show up as delayed. Stamped with the time they actually left, only the ~256 frames stuck in the
 * ring would (the check fails that way: verified by turning the stamping off).
 */
class CoordinatedOmissionTest {

    static final long RATE = 10_000;
    static final long STALL_MS = 100;

    @Test
    void a100msStallAt10kppsShowsAsAboutAThousandDelayedSamples() throws Exception {
        Kernel kernel = new Kernel();
        var vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        var latency = new Histogram(TimeUnit.SECONDS.toNanos(60), 3);
        long frames = 6_000;
        try (WorkerFactory f = WorkerModel.USER_WORKER_PLATFORM.factory(kernel);
             VmPair pair = VmPair.open(vmm, f, VmLab.Options.defaults())) {
            var tx = pair.vm(0);
            var rx = pair.vm(1);
            tx.send(rx.mac(), 64, frames, 1e9 / RATE, true);
            // Only the receiving vCPU records, so the histogram has one writer and needs no recorder.
            rx.driver().setLatencySink(v -> latency.recordValue(Math.max(0, v)));
            rx.start();
            tx.start();
            // Stall 2,000 frames in (0.2 s), well after start-up, for 100 ms.
            while (rx.stats().rxFrames() < 2_000) {
                LockSupport.parkNanos(100_000);
            }
            Task worker = pair.vm(0).net().device().workers().getFirst().thread().task();
            worker.sendSignal(Signal.SIGSTOP);
            long t0 = System.nanoTime();
            while (System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(STALL_MS)) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(STALL_MS) - (System.nanoTime() - t0));
            }
            worker.sendSignal(Signal.SIGCONT);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (rx.stats().rxFrames() < frames && System.nanoTime() < deadline) {
                LockSupport.parkNanos(1_000_000);
            }
            pair.lab().stopVcpus();
            assertEquals(frames, rx.stats().rxFrames(), "every frame arrived");
        } finally {
            vmm.exit();
        }
        long delayed = latency.getCountBetweenValues(TimeUnit.MILLISECONDS.toNanos(10), Long.MAX_VALUE / 4);
        // ~1,000 frames were due during the 100 ms. The lower bound is the check: without the correction only a
        // ring's worth (256) or fewer show. The upper bound only catches stamps that make every frame late: an
        // overloaded machine adds stalls of its own (2,250 and 4,010 seen at load average 13 on 2 cores).
        assertTrue(delayed >= 700 && delayed <= frames - 1_000, "delayed samples: " + delayed);
        assertTrue(latency.getMaxValue() >= TimeUnit.MILLISECONDS.toNanos(80), "max " + latency.getMaxValue());
    }
}
