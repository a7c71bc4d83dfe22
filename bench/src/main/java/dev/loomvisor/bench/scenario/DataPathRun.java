package dev.loomvisor.bench.scenario;

import dev.loomvisor.bench.machine.MachineState;
import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.timer.HrtimerBase;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.net.VmmBackend;
import dev.loomvisor.vmm.driver.TrafficSource;
import dev.loomvisor.vmm.virtio.RingLayout;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongConsumer;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * One measurement of the virtio-net data path under one worker model: {@code vms} emulated VMs in pairs
 * ({@link VmLab}), all of one VMM process whose threads their vCPUs are, each NIC served by a vhost-net device
 * that process owns and the model's workers run, joined by the L2 switch. Every guest sends to its pair's
 * other guest, closed loop (as fast as the path takes frames)
 * or open loop at a rate per flow; each received frame's one-way latency goes into an HdrHistogram
 * {@link Recorder}. A warm-up runs first and is not counted.
 */
public final class DataPathRun {

    /**
     * What one measurement saw. Latencies in nanoseconds. {@code workersPerVm}: vhost workers serving one
     * VM's NIC (the first VM's), as the model and the vring-worker layout give them. {@code rssBytes}: the JVM's
     * resident memory after the window, {@code idleRssBytes} after the VMs were set up and started and before
     * any frame was sent (open loop, when asked; else -1), both after a full collection. {@code sendLateness}: each
     * open-loop frame's send time minus its due time, over the window (empty closed loop): the senders' share of
     * {@code latency}.
     */
    public record Measurement(String model, int frameSize, long frames, long bytes, long nanos, long sent,
                              Histogram latency, List<Histogram> intervals, double cpuSeconds,
                              int platformThreads, long rssBytes, long setupNanos, long badFrames,
                              int workersPerVm, long settleNanos, long idleRssBytes, Histogram sendLateness) {

        public double mpps() {
            return frames * 1e3 / nanos;
        }

        public double gbps() {
            return bytes * 8.0 / nanos;
        }
    }

    /** Called between slices of the measured window, for a progress line. */
    @FunctionalInterface
    public interface Progress {
        void update(double elapsedSeconds, double currentMpps);
    }

    private static final long SLICE_NANOS = 250_000_000L;
    /**
     * Open loop: the longest the warm-up is stretched while the start-up backlog drains (see {@link #settle}); a
     * run still backlogged then is measured backlogged, as it is saturated.
     */
    public static final long MAX_SETTLE_NANOS = 20_000_000_000L;
    /** How often the settling warm-up looks at the latency of what arrived. */
    private static final long SETTLE_CHECK_NANOS = 200_000_000L;
    /** Fewer latencies than this in a check: too few to tell a trend, and no backlog worth waiting for. */
    private static final long SETTLE_MIN_SAMPLES = 50;
    /** A median latency under this is no start-up backlog (the SLOs this tool is asked about start at 1 ms). */
    private static final long SETTLED_P50_NANOS = 1_000_000L;
    /** A check whose median is within this share of the previous one's ends the settling: it stopped moving. */
    private static final double SETTLE_CHANGE = 0.2;
    /** Frames per flow in a closed-loop run: more than any run can send. */
    private static final long UNBOUNDED = Long.MAX_VALUE / 4;

    private DataPathRun() {}

    /** How the guests of a pair use each other. */
    public enum Traffic {
        /** Both guests of a pair send to each other; latency is one-way. */
        BOTH_WAYS,
        /** The first guest of a pair sends, the second echoes every PING back as a PONG; latency is the round trip. */
        PING_PONG
    }

    /**
     * The guests' rings and buffers; 0 leaves the guest driver's default.
     *
     * @param queueSize entries of each virtqueue
     * @param rxBuffers RX buffers each guest keeps posted (per queue pair)
     * @param txBuffers TX buffers each guest keeps in flight (per queue pair)
     * @param ring      the virtqueue layout the guests negotiate
     * @param queues    queue pairs per NIC, each with its vCPU and vhost-net (1: no MQ)
     * @param vringWorkers the workers of each pair's rings
     */
    public record Scale(int queueSize, int rxBuffers, int txBuffers, RingLayout ring, int queues,
                        VmmBackend.VringWorkers vringWorkers) {

        /** The guest driver's ring size when none is asked for. */
        public static final int DEFAULT_QUEUE_SIZE = 256;

        public Scale(int queueSize, int rxBuffers, int txBuffers) {
            this(queueSize, rxBuffers, txBuffers, RingLayout.SPLIT);
        }

        public Scale(int queueSize, int rxBuffers, int txBuffers, RingLayout ring) {
            this(queueSize, rxBuffers, txBuffers, ring, 1, VmmBackend.VringWorkers.PER_PAIR);
        }

        public static Scale defaults() {
            return new Scale(0, 0, 0);
        }

        /** Whether a ring or buffer count differs from the driver's defaults. */
        public boolean sized() {
            return queueSize != 0 || rxBuffers != 0 || txBuffers != 0;
        }
    }

    /**
     * @param ratePerFlow frames per second each sending guest sends (fractions too), or 0 for closed loop
     */
    public static Measurement run(WorkerModel model, int vms, int frameSize, Duration warmup, Duration duration,
                                  long busyPollMicros, double ratePerFlow, Progress progress) throws ErrnoException {
        return run(model, vms, frameSize, warmup, duration, busyPollMicros, ratePerFlow, Traffic.BOTH_WAYS, progress);
    }

    public static Measurement run(WorkerModel model, int vms, int frameSize, Duration warmup, Duration duration,
                                  long busyPollMicros, double ratePerFlow, Traffic traffic, Progress progress)
            throws ErrnoException {
        return run(model, vms, frameSize, warmup, duration, busyPollMicros, ratePerFlow, traffic, Scale.defaults(),
                progress);
    }

    public static Measurement run(WorkerModel model, int vms, int frameSize, Duration warmup, Duration duration,
                                  long busyPollMicros, double ratePerFlow, Traffic traffic, Scale scale,
                                  Progress progress) throws ErrnoException {
        return run(model, vms, frameSize, warmup, duration, busyPollMicros, ratePerFlow, traffic, scale,
                HrtimerBase.DEFAULT_SLACK_NANOS, progress);
    }

    /** @param timerSlackNanos the pacing clock's slack ({@link HrtimerBase}); the floor takes the same */
    public static Measurement run(WorkerModel model, int vms, int frameSize, Duration warmup, Duration duration,
                                  long busyPollMicros, double ratePerFlow, Traffic traffic, Scale scale,
                                  long timerSlackNanos, Progress progress) throws ErrnoException {
        return run(model, vms, frameSize, warmup, duration, busyPollMicros, ratePerFlow, traffic, scale,
                timerSlackNanos, false, progress);
    }

    /**
     * @param idleRss open loop: also measure {@link Measurement#idleRssBytes()}, at the price of a full collection
     *                before the traffic starts (the sweep's RSS per idle VM)
     */
    public static Measurement run(WorkerModel model, int vms, int frameSize, Duration warmup, Duration duration,
                                  long busyPollMicros, double ratePerFlow, Traffic traffic, Scale scale,
                                  long timerSlackNanos, boolean idleRss, Progress progress) throws ErrnoException {
        if (vms < 2 || vms % 2 != 0) {
            throw new IllegalArgumentException("vms must be even and at least 2: " + vms);
        }
        Kernel kernel = new Kernel();
        Process vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        var options = VmLab.Options.defaults().withBusyPoll(busyPollMicros);
        if (scale.queueSize() != 0) {
            options = options.withQueueSize(scale.queueSize());
        }
        options = options.withBuffers(scale.rxBuffers(), scale.txBuffers()).withRing(scale.ring());
        if (scale.sized()) {
            // A small guest gets a port queue to match: as many frames as its RX ring takes (a switch record is
            // the frame plus 8 header bytes, rounded to 8), not 256 KiB of direct memory per VM.
            int rxCount = scale.rxBuffers() != 0 ? scale.rxBuffers() : options.queueSize();
            int bytes = Integer.highestOneBit(Math.max(4096, rxCount * (frameSize + 16)) * 2 - 1);
            options = options.withSwitchQueueBytes(Math.min(bytes, options.switchQueueBytes()));
        }
        var recorder = new Recorder(3);
        var lateRecorder = new Recorder(3);
        var recording = new java.util.concurrent.atomic.AtomicBoolean();
        // Created once per run; the guests call it per frame without allocating.
        LongConsumer sink = latency -> {
            if (recording.getOpaque()) { // opaque: never hoisted out of the vCPU loop, no fence per frame
                recorder.recordValue(Math.max(0, latency));
            }
        };
        LongConsumer lateSink = late -> {
            if (recording.getOpaque()) {
                lateRecorder.recordValue(Math.max(0, late));
            }
        };
        try (WorkerFactory factory = model.factory(kernel); VmLab lab = new VmLab(vmm, factory, options, scale.queues(),
                scale.vringWorkers())) {
            if (ratePerFlow > 0) {
                lab.pacingClock(timerSlackNanos); // one clock thread wakes every paced sender
            }
            long setupStart = System.nanoTime();
            lab.addVms("vm", vms);
            long setupNanos = System.nanoTime() - setupStart;
            var all = lab.vms();
            double interval = ratePerFlow > 0 ? 1e9 / ratePerFlow : 0;
            for (int i = 0; i < vms; i++) {
                for (int k = 0; k < all.get(i).queues(); k++) {
                    if (traffic == Traffic.PING_PONG && (i & 1) == 1) {
                        all.get(i).driver(k).setEcho(true); // before any sender starts: no ping finds it unset
                    } else {
                        all.get(i).driver(k).setLatencySink(sink);
                        all.get(i).driver(k).setLatenessSink(lateSink);
                    }
                }
            }
            for (var vm : all) {
                vm.start();
            }
            long idleRssBytes = -1;
            if (idleRss && ratePerFlow > 0) {
                // The fleet booted and idle: what its VMs hold before any frame moves (not the garbage of the
                // set-up), as the sweep's RSS per idle VM.
                System.gc();
                idleRssBytes = MachineState.rssBytes();
            }
            // Every queue pair of a sender is a flow of its own (its vCPU, its vhost-net). The flows' first frames
            // are due spread evenly over one interval from now, as the floor's senders are, and as guests booted
            // at different moments would send: left to their vCPUs' start-up, thousands of senders would share
            // one phase and send in bursts.
            int flows = vms * all.getFirst().queues();
            long start = System.nanoTime();
            for (int i = 0; i < vms; i++) {
                var me = all.get(i);
                var peer = all.get(i ^ 1);
                for (int k = 0; k < me.queues(); k++) {
                    if (traffic == Traffic.PING_PONG && (i & 1) == 1) {
                        continue;
                    }
                    // Open loop: each frame stamped with the time it was due (coordinated omission corrected).
                    long first = start + (long) (interval * ((double) i * me.queues() + k) / flows);
                    TrafficSource source = TrafficSource.paced(frameSize, interval, UNBOUNDED,
                            VmLab.macBytes(peer.mac())).stampIntended().startingAt(first);
                    me.driver(k).transmit(traffic == Traffic.PING_PONG ? source.pings() : source);
                }
            }
            sleep(warmup.toNanos());
            long settleNanos = ratePerFlow > 0 ? settle(recorder, recording) : 0;
            recording.set(true);
            recorder.getIntervalHistogram(); // drop what the warm-up recorded
            lateRecorder.getIntervalHistogram();
            long frames0 = received(all);
            long bytes0 = receivedBytes(all);
            long sent0 = sent(all);
            double cpu0 = MachineState.processCpuSeconds();
            long t0 = System.nanoTime();
            long end = t0 + duration.toNanos();
            List<Histogram> intervals = new ArrayList<>();
            Histogram total = new Histogram(3);
            Histogram reuse = null;
            long lastFrames = frames0;
            long lastT = t0;
            long now;
            while ((now = System.nanoTime()) < end) {
                sleep(Math.min(SLICE_NANOS, end - now));
                long t = System.nanoTime();
                Histogram h = recorder.getIntervalHistogram(reuse);
                h.setStartTimeStamp(System.currentTimeMillis() - (t - lastT) / 1_000_000);
                h.setEndTimeStamp(System.currentTimeMillis());
                total.add(h);
                intervals.add(h.copy());
                reuse = h;
                long f = received(all);
                if (progress != null) {
                    progress.update((t - t0) / 1e9, (f - lastFrames) * 1e3 / Math.max(1, t - lastT));
                }
                lastFrames = f;
                lastT = t;
            }
            long nanos = System.nanoTime() - t0;
            long frames = received(all) - frames0;
            long bytes = receivedBytes(all) - bytes0;
            long sent = sent(all) - sent0;
            double cpu = MachineState.processCpuSeconds() - cpu0;
            int threads = ManagementFactory.getThreadMXBean().getThreadCount();
            recording.set(false);
            // Resident memory of what the VMs hold, not of garbage the collector has not taken yet (set-up
            // garbage would make the heap grow with the count of VMs): after a full collection, outside the window.
            System.gc();
            long rss = MachineState.rssBytes();
            Histogram last = recorder.getIntervalHistogram();
            total.add(last);
            long bad = 0;
            int workersPerVm = all.getFirst().workers();
            for (var vm : all) {
                bad += vm.rxBad();
                for (int k = 0; k < vm.queues(); k++) {
                    vm.driver(k).setLatencySink(null);
                    vm.driver(k).setLatenessSink(null);
                    if (vm.driver(k).failure() != null) {
                        throw new IllegalStateException("guest " + vm.name() + " pair " + k + " failed",
                                vm.driver(k).failure());
                    }
                }
            }
            return new Measurement(model.modelName(), frameSize, frames, bytes, nanos, sent, total, intervals, cpu,
                    threads, rss, setupNanos, bad, workersPerVm, settleNanos, idleRssBytes,
                    lateRecorder.getIntervalHistogram());
        } finally {
            vmm.exit();
        }
    }

    /**
     * Stretches an open loop's warm-up until the backlog of its start has drained: every VM's first frames touch
     * guest pages (rings, buffers) for the first time, and at thousands of VMs those page faults come together,
     * so vCPUs and workers start far behind the offered rate. A window opened then would measure that transient,
     * not the steady state the user asked about. The latency of the frames received (from their intended send
     * times, so a sender's own lateness counts too) is looked at every {@link #SETTLE_CHECK_NANOS}: the warm-up
     * goes on while its median keeps moving (a backlog building up or draining), and ends once it holds still
     * (steady), once it is under {@link #SETTLED_P50_NANOS}, or when too few frames came to tell; a run whose
     * latency grows for {@link #MAX_SETTLE_NANOS} is saturated and is measured as it is.
     *
     * @return how long the warm-up was stretched
     */
    private static long settle(Recorder recorder, java.util.concurrent.atomic.AtomicBoolean recording) {
        long start = System.nanoTime();
        recording.set(true);
        recorder.getIntervalHistogram();
        Histogram h = null;
        long previous = -1;
        try {
            while (System.nanoTime() - start < MAX_SETTLE_NANOS) {
                sleep(SETTLE_CHECK_NANOS);
                h = recorder.getIntervalHistogram(h);
                if (h.getTotalCount() < SETTLE_MIN_SAMPLES) {
                    break;
                }
                long p50 = h.getValueAtPercentile(50);
                if (p50 <= SETTLED_P50_NANOS || (previous >= 0 && Math.abs(p50 - previous) <= previous * SETTLE_CHANGE)) {
                    break;
                }
                previous = p50;
            }
        } finally {
            recording.set(false);
        }
        return System.nanoTime() - start;
    }

    private static long received(List<VmLab.Vm> vms) {
        long n = 0;
        for (var vm : vms) {
            n += vm.rxFrames();
        }
        return n;
    }

    private static long receivedBytes(List<VmLab.Vm> vms) {
        long n = 0;
        for (var vm : vms) {
            n += vm.rxBytes();
        }
        return n;
    }

    private static long sent(List<VmLab.Vm> vms) {
        long n = 0;
        for (var vm : vms) {
            n += vm.txFrames();
        }
        return n;
    }

    /** The measuring thread's own wait: a timed park, repeated until the time is up. */
    private static void sleep(long nanos) {
        long end = System.nanoTime() + nanos;
        long left;
        while ((left = end - System.nanoTime()) > 0) {
            LockSupport.parkNanos(left);
        }
    }
}
