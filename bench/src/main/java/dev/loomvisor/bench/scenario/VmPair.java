package dev.loomvisor.bench.scenario;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.WorkerFactory;
import java.util.concurrent.locks.LockSupport;

/**
 * Two VMs of one VMM process on a {@link VmLab}'s switch, streaming to each other: the data path of the
 * JMH-style {@code DataPathBenchmark}.
 */
public final class VmPair implements AutoCloseable {

    /** What a timed run measured: frames and bytes the receiving guests got, and drops, in the window. */
    /**
     * @param allocatedBytes heap bytes every thread of the JVM allocated during the window
     * @param events         the counters of {@link #EVENTS} over the window
     * @param cpuNanos       CPU time the whole JVM used during the window (all threads, user and system)
     */
    public record Measurement(long elapsedNanos, long frames, long bytes, long dropped, long badFrames,
                              long reordered, long allocatedBytes, long[] events, long cpuNanos) {

        public double framesPerSecond() {
            return frames * 1e9 / elapsedNanos;
        }

        public double gbitPerSecond() {
            return bytes * 8.0 / elapsedNanos;
        }
    }

    private final VmLab lab;
    private final VmLab.Vm[] vms = new VmLab.Vm[2];

    private VmPair(VmLab lab) {
        this.lab = lab;
    }

    /** Two VMs of {@code vmm}, served by {@code factory}'s worker model; on failure all is closed again. */
    public static VmPair open(Process vmm, WorkerFactory factory, VmLab.Options options) throws ErrnoException {
        return open(vmm, factory, options, 1);
    }

    /** As {@link #open(Process, WorkerFactory, VmLab.Options)}, each NIC with {@code queues} queue pairs. */
    public static VmPair open(Process vmm, WorkerFactory factory, VmLab.Options options, int queues)
            throws ErrnoException {
        VmPair p = new VmPair(new VmLab(vmm, factory, options, queues));
        try {
            p.vms[0] = p.lab.addVm("vm0");
            p.vms[1] = p.lab.addVm("vm1");
            return p;
        } catch (ErrnoException | RuntimeException e) {
            p.close();
            throw e;
        }
    }

    public VmLab.Vm vm(int i) {
        return vms[i];
    }

    public VmLab lab() {
        return lab;
    }

    /**
     * Streams {@code length}-byte frames from VM 0 to VM 1 (and back if {@code bothWays}) without end, lets it
     * settle for {@code warmupNanos}, counts what arrives during {@code measureNanos}, then stops the vCPUs.
     * For benchmarks: the guests check lightly and nothing is asserted; their checks are reported.
     */
    public Measurement measure(int length, boolean bothWays, long warmupNanos, long measureNanos)
            throws ErrnoException {
        for (VmLab.Vm v : vms) {
            for (int k = 0; k < v.queues(); k++) {
                v.driver(k).verifyPayload(false);
            }
        }
        vms[0].send(vms[1].mac(), length, Long.MAX_VALUE, 0, false);
        if (bothWays) {
            vms[1].send(vms[0].mac(), length, Long.MAX_VALUE, 0, false);
        }
        for (VmLab.Vm v : vms) {
            v.start();
        }
        LockSupport.parkNanos(warmupNanos);
        long f0 = received();
        long b0 = receivedBytes();
        long d0 = VmLab.dropped(vms[0], vms[1]) + VmLab.dropped(vms[1], vms[0]);
        var threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long a0 = threads.getTotalThreadAllocatedBytes();
        long[] e0 = events();
        var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        long c0 = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        long end = t0 + measureNanos;
        while (System.nanoTime() - end < 0) {
            LockSupport.parkNanos(end - System.nanoTime());
        }
        long t1 = System.nanoTime();
        long a1 = threads.getTotalThreadAllocatedBytes();
        long f1 = received();
        long b1 = receivedBytes();
        long d1 = VmLab.dropped(vms[0], vms[1]) + VmLab.dropped(vms[1], vms[0]);
        long[] e1 = events();
        long c1 = os.getProcessCpuTime();
        for (int i = 0; i < e1.length; i++) {
            e1[i] -= e0[i];
        }
        lab.stopVcpus();
        long bad = 0;
        long reordered = 0;
        for (VmLab.Vm v : vms) {
            for (int k = 0; k < v.queues(); k++) {
                bad += v.driver(k).stats().rxCorrupt();
                reordered += v.driver(k).stats().rxOutOfOrder();
            }
        }
        return new Measurement(t1 - t0, f1 - f0, b1 - b0, d1 - d0, bad, reordered, a1 - a0, e1, c1 - c0);
    }

    /** What {@link Measurement#events()} counts, in order: for the sender (a) and the receiver (b) each. */
    public static final java.util.List<String> EVENTS = java.util.List.of(
            "a.txRuns", "a.txPollHits", "a.txPollTimeouts", "a.txPollResched", "a.txIrqs", "a.rxRuns", "a.vcpuHalts", "a.vcpuKicks",
            "a.vcpuSlices", "a.workerSleeps", "a.workerPreempts",
            "b.rxRuns", "b.rxPollHits", "b.rxPollTimeouts", "b.rxPollResched", "b.rxIrqs", "b.txRuns", "b.vcpuHalts", "b.vcpuKicks",
            "b.vcpuSlices", "b.workerSleeps", "b.workerPreempts");

    /** The counters of {@link #EVENTS} now, over every queue pair. */
    private long[] events() {
        long[] e = new long[EVENTS.size()];
        for (int side = 0; side < 2; side++) {
            VmLab.Vm v = vms[side];
            int o = side * 11;
            for (int k = 0; k < v.queues(); k++) {
                var net = v.net(k);
                var busy = side == 0 ? net.tx() : net.rx();
                var other = side == 0 ? net.rx() : net.tx();
                e[o] += busy.counters().get(dev.loomvisor.vhost.RingCounter.RUNS);
                e[o + 1] += busy.counters().get(dev.loomvisor.vhost.RingCounter.BUSY_POLL_HITS);
                e[o + 2] += busy.counters().get(dev.loomvisor.vhost.RingCounter.BUSY_POLL_TIMEOUTS);
                e[o + 3] += busy.counters().get(dev.loomvisor.vhost.RingCounter.BUSY_POLL_RESCHEDS);
                e[o + 4] += busy.counters().get(dev.loomvisor.vhost.RingCounter.INTERRUPTS);
                e[o + 5] += other.counters().get(dev.loomvisor.vhost.RingCounter.RUNS);
                var st = v.driver(k).stats();
                e[o + 6] += st.halts();
                e[o + 7] += st.kicks();
                e[o + 8] += st.sliceYields();
                for (var w : net.device().workers()) {
                    var t = w.thread();
                    e[o + 9] += t == null || t.task() == null ? 0 : t.task().voluntarySwitches();
                    e[o + 10] += w.preemptions();
                }
            }
        }
        return e;
    }

    private long received() {
        return vms[0].rxFrames() + vms[1].rxFrames();
    }

    private long receivedBytes() {
        return vms[0].rxBytes() + vms[1].rxBytes();
    }

    @Override
    public void close() {
        lab.close();
    }
}
