package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.management.ThreadMXBean;
import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import java.lang.management.ManagementFactory;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * An idle VM pair costs no CPU: two VMs with running vCPUs, their vhost-net devices up and their pacing clock
 * made, and no frame moving, use under 20 ms of the JVM threads' CPU time over 2 s, beyond what those threads
 * take without VMs (the test runner's own). A guard against spinning or polling (one 1 ms poll alone would cost
 * more), not a benchmark: the bound is generous.
 */
class IdleCostTest {

    private static final long WINDOW_NANOS = 2_000_000_000L;
    private static final long MAX_CPU_NANOS = 20_000_000L;

    /** What the JVM alone (the test runner's threads, JIT, GC) costs over the window, before any VM exists. */
    private static long baselineNanos;

    @BeforeAll
    static void measureBaseline() {
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        System.gc();
        baselineNanos = cpuOver(os, WINDOW_NANOS);
    }

    /**
     * CPU time of the JVM's Java threads over {@code nanos} of waiting: every platform thread, so every carrier of
     * the virtual threads, the clock thread and the kthread models' threads. The JIT compiler and GC threads are
     * not Java threads here: a C2 compile of the code the first frames just ran is not the idle path, and it cost
     * a few hundred milliseconds right after set-up in a loaded run. Thread CPU clocks count in nanoseconds.
     */
    private static long cpuOver(com.sun.management.OperatingSystemMXBean os, long nanos) {
        ThreadMXBean threads = (ThreadMXBean) ManagementFactory.getThreadMXBean();
        long[] ids0 = threads.getAllThreadIds();
        long[] cpu0 = threads.getThreadCpuTime(ids0);
        java.util.Map<Long, Long> start = new java.util.HashMap<>();
        for (int i = 0; i < ids0.length; i++) {
            start.put(ids0[i], Math.max(0, cpu0[i]));
        }
        long t0 = System.nanoTime();
        while (System.nanoTime() - t0 < nanos) {
            LockSupport.parkNanos(nanos - (System.nanoTime() - t0));
        }
        long[] ids1 = threads.getAllThreadIds();
        long[] cpu1 = threads.getThreadCpuTime(ids1);
        long used = 0;
        for (int i = 0; i < ids1.length; i++) {
            if (cpu1[i] >= 0) {
                used += cpu1[i] - start.getOrDefault(ids1[i], 0L); // a thread born in the window counts whole
            }
        }
        return used;
    }

    @ParameterizedTest
    @EnumSource(WorkerModel.class)
    void anIdlePairCostsUnder20msOfCpuIn2s(WorkerModel model) throws Exception {
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        Kernel kernel = new Kernel();
        var vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        try (WorkerFactory f = model.factory(kernel);
             VmPair pair = VmPair.open(vmm, f, VmLab.Options.defaults())) {
            pair.lab().pacingClock();
            var a = pair.vm(0);
            var b = pair.vm(1);
            // A few paced frames first, so the vCPUs, workers and clock have all run once and gone idle.
            a.send(b.mac(), 64, 10, 1e6, true);
            a.start();
            b.start();
            long end = System.nanoTime() + 60_000_000_000L;
            while (b.stats().rxFrames() < 10 && System.nanoTime() - end < 0) {
                LockSupport.parkNanos(1_000_000);
            }
            assertEquals(10, b.stats().rxFrames(), "the frames before the idle window arrived");
            System.gc(); // no collection of earlier garbage inside the window
            LockSupport.parkNanos(100_000_000L);
            long cpu = cpuOver(os, WINDOW_NANOS) - baselineNanos;
            assertTrue(cpu < MAX_CPU_NANOS, model + ": an idle pair used " + cpu / 1_000_000.0
                    + " ms of CPU in 2 s beyond the " + baselineNanos / 1_000_000.0 + " ms of the JVM without VMs");
            assertEquals(10, b.stats().rxFrames(), "nothing moved in the idle window");
        } finally {
            vmm.exit();
        }
    }
}
