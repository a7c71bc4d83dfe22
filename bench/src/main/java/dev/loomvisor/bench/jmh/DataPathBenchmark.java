package dev.loomvisor.bench.jmh;

import dev.loomvisor.bench.scenario.Ceilings;
import dev.loomvisor.bench.scenario.VmLab;
import dev.loomvisor.bench.scenario.VmPair;
import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vmm.virtio.RingLayout;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;

/**
 * The vhost-net data path end to end, per worker model, next to the local ceilings, in one process run.
 *
 * <p>Not a JMH benchmark: each sample is a whole scenario ({@link VmPair}: two VMs of one emulated VMM process,
 * their vCPUs threads of that process, their NICs served by two vhost-net devices it owns, a switch) streaming frames one way, guest a to guest b, for a fixed window after a
 * warm-up; the figure is what guest b received (frames/s for 64 B frames, Gbit/s of frame bytes for
 * 1,500 B). Configurations (frame size x worker model x busy-poll off/on) run interleaved, one sample each
 * per repeat, so that the machine's drift hits all of them alike; the two ceilings run in every repeat
 * too, right before and right after the configurations of their frame size: Agrona's {@link OneToOneRingBuffer} carrying 64 B messages between two platform threads, and a
 * plain copy loop moving 1,500 B buffers between two platform threads through a ring of slots.
 *
 * <pre>
 * scripts/jmh DataPathBenchmark [--repeats 3] [--warmup-ms 300] [--measure-ms 1000]
 *     [--busy-poll-us 50] [--models user-worker,kthread,...] [--rings split,packed] [--queues 1]
 *     [--sizes 64,1500] [--modes notify,busy-poll] [--busy-idle spin,yield,backoff] [--counters]
 *     [--no-ceilings]
 * </pre>
 *
 * <p>{@code --counters} prints, per configuration, the path's events per 1,000 frames received (handler runs,
 * busy-poll hits and timeouts, interrupts, vCPU halts, kicks and slice yields, worker sleeps and preemptions),
 * the medians over the repeats: where a configuration's wake-ups and carrier hand-overs go. {@code --busy-idle} is
 * what a busy-polling platform worker does between two looks at its ring (Agrona's busy spin, the default;
 * {@code Thread.yield}, a sched_yield; or a backoff from spins to yields to short parks); a virtual worker
 * ignores it. Several, comma-separated, run as configurations of their own (busy-poll only). {@code --no-ceilings}
 * leaves the ceilings out (no ratios): for profiling the path alone ({@code perf stat} CPU per frame, {@code perf
 * record}, JFR).
 *
 * <p>Each ratio is taken per repeat, against the mean of the ceiling's two samples around it, and the median
 * of those is printed next to the target; B/frame is every thread's heap allocation over the window
 * per frame received.
 */
public final class DataPathBenchmark {

    private static final int SMALL = 64;
    private static final int LARGE = 1500;
    private static final String AGRONA = "ceiling 64 B Agrona OneToOneRingBuffer";
    private static final String COPY = "ceiling 1500 B copy loop";

    private DataPathBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int repeats = intArg(args, "--repeats", 3);
        long warmup = TimeUnit.MILLISECONDS.toNanos(intArg(args, "--warmup-ms", 300));
        long measure = TimeUnit.MILLISECONDS.toNanos(intArg(args, "--measure-ms", 1000));
        int busyMicros = intArg(args, "--busy-poll-us", 50);
        int queues = intArg(args, "--queues", 1); // queue pairs per VM, each its vCPU, vhost-net and flow
        boolean counters = Arrays.asList(args).contains("--counters");
        boolean ceilings = !Arrays.asList(args).contains("--no-ceilings");
        List<String> idles = new ArrayList<>();
        for (String z : stringArg(args, "--busy-idle", "spin").split(",")) {
            idleStrategy(z.trim());
            idles.add(z.trim());
        }
        List<Boolean> modes = new ArrayList<>();
        for (String z : stringArg(args, "--modes", "notify,busy-poll").split(",")) {
            switch (z.trim()) {
                case "notify" -> modes.add(false);
                case "busy-poll" -> modes.add(true);
                default -> throw new IllegalArgumentException("--modes: " + z + "; allowed: notify, busy-poll");
            }
        }
        List<Integer> sizes = new ArrayList<>();
        for (String z : stringArg(args, "--sizes", SMALL + "," + LARGE).split(",")) {
            int size = Integer.parseInt(z.trim());
            if (size != SMALL && size != LARGE) {
                throw new IllegalArgumentException("--sizes: " + z + "; allowed: " + SMALL + ", " + LARGE);
            }
            sizes.add(size);
        }
        List<WorkerModel> models = new ArrayList<>();
        for (String m : stringArg(args, "--models", String.join(",", WorkerModel.names())).split(",")) {
            models.add(WorkerModel.byName(m.trim()));
        }
        List<RingLayout> rings = new ArrayList<>();
        for (String r : stringArg(args, "--rings", RingLayout.SPLIT.layoutName()).split(",")) {
            RingLayout l = RingLayout.byName(r.trim());
            if (l == null) {
                throw new IllegalArgumentException("--rings: " + r + "; allowed: " + String.join(", ", RingLayout.names()));
            }
            rings.add(l);
        }
        System.out.printf("DataPathBenchmark %s: %d cores, %s %s; %d repeats, warm-up %d ms, window %d ms, "
                        + "busy-poll %d us, %d queue pair(s) per VM, one-way traffic a -> b%n", Instant.now(),
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.vm.name"),
                System.getProperty("java.version"), repeats, warmup / 1_000_000, measure / 1_000_000, busyMicros,
                queues);

        Kernel kernel = new Kernel();
        Process vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        Map<WorkerModel, WorkerFactory> factories = new LinkedHashMap<>();
        for (WorkerModel m : models) {
            factories.put(m, m.factory(kernel));
        }
        Map<String, List<Double>> samples = new LinkedHashMap<>();
        Map<String, List<Double>> dropShare = new LinkedHashMap<>();
        Map<String, List<Double>> allocPerFrame = new LinkedHashMap<>();
        Map<String, List<long[]>> events = new LinkedHashMap<>();
        Map<String, List<Double>> cpuPerFrame = new LinkedHashMap<>();
        Map<String, List<Long>> framesSeen = new LinkedHashMap<>();
        long checks = 0;
        // Round 0 warms the JIT on every configuration and is not recorded.
        for (int r = 0; r <= repeats; r++) {
            boolean record = r > 0;
            long window = record ? measure : measure / 3;
            for (int length : sizes) {
                // The ceiling of this frame size runs right before and right after its configurations.
                if (ceilings) {
                    ceiling(length, window, record, samples, cpuPerFrame);
                }
                for (WorkerModel m : models) {
                    for (RingLayout ring : rings) {
                        for (boolean busy : modes) {
                          for (String idleName : busy ? idles : idles.subList(0, 1)) {
                            VmLab.Options d = VmLab.Options.defaults();
                            VmLab.Options o = new VmLab.Options(d.queueSize(), d.eventIdx(), d.mrgRxbuf(),
                                    d.rxBufferSize(), busy ? busyMicros : 0, d.switchQueueBytes(), d.vcpuCarrier(),
                                    idleStrategy(idleName), d.rxBuffers(), d.txBuffers(), ring);
                            VmPair.Measurement x;
                            try (VmPair pair = VmPair.open(vmm, factories.get(m), o, queues)) {
                                x = pair.measure(length, false, record ? warmup : warmup / 3, window);
                            }
                            checks += x.badFrames() + x.reordered();
                            if (record) {
                                String key = key(length, m.modelName(), ring, busy)
                                        + (busy && idles.size() > 1 ? " " + idleName : "");
                                samples.computeIfAbsent(key, k -> new ArrayList<>())
                                        .add(length == SMALL ? x.framesPerSecond() : x.gbitPerSecond());
                                dropShare.computeIfAbsent(key, k -> new ArrayList<>())
                                        .add(x.dropped() / (double) Math.max(1, x.dropped() + x.frames()));
                                allocPerFrame.computeIfAbsent(key, k -> new ArrayList<>())
                                        .add(x.allocatedBytes() / (double) Math.max(1, x.frames()));
                                events.computeIfAbsent(key, k -> new ArrayList<>()).add(x.events());
                                cpuPerFrame.computeIfAbsent(key, k -> new ArrayList<>())
                                        .add(x.cpuNanos() / (double) Math.max(1, x.frames()));
                                framesSeen.computeIfAbsent(key, k -> new ArrayList<>()).add(x.frames());
                            }
                          }
                        }
                    }
                }
                if (r == repeats && length == sizes.get(sizes.size() - 1)) {
                    busyThreads();
                }
                if (ceilings) {
                    ceiling(length, window, record, samples, cpuPerFrame);
                }
            }
            if (record) {
                System.out.printf("repeat %d done%n", r);
            }
        }
        for (WorkerFactory f : factories.values()) {
            f.close();
        }
        vmm.exit();

        System.out.printf("%n%-46s %12s %12s %12s %8s %8s %8s %9s %8s %17s %8s %s%n", "configuration", "median", "min",
                "max", "drops", "B/frame", "CPU ns/f", "CPU bound", "ratio", "ratio min..max", "target", "");
        for (Map.Entry<String, List<Double>> e : samples.entrySet()) {
            String k = e.getKey();
            boolean small = k.startsWith("64 B") || k.startsWith("ceiling 64");
            double scale = small ? 1e-6 : 1;
            String unit = small ? " Mfps" : " Gb/s";
            List<Double> v = e.getValue();
            double med = median(v);
            List<Double> d = dropShare.get(k);
            String drops = d == null ? "" : String.format("%.1f%%", 100 * median(d));
            List<Double> a = allocPerFrame.get(k);
            String alloc = a == null ? "" : String.format("%.3f", max(a));
            String ratio = "";
            String spread = "";
            String target = "";
            String verdict = "";
            List<Double> r = k.startsWith("ceiling") ? List.of()
                    : pairRatios(v, samples.getOrDefault(small ? AGRONA : COPY, List.of()));
            if (!r.isEmpty()) {
                double t = small ? (k.contains(" busy-poll") ? 1.0 : 0.5) : 0.7;
                double mr = median(r);
                ratio = String.format("%.3f", mr);
                spread = String.format("%.3f..%.3f", min(r), max(r));
                target = String.format(">= %.1f", t);
                verdict = mr >= t ? "met" : "below";
            }
            List<Double> c = cpuPerFrame.get(k);
            String cpu = c == null ? "" : String.format("%.0f", median(c));
            List<Double> cc = k.startsWith("ceiling") || c == null ? null : cpuPerFrame.get(small ? AGRONA : COPY);
            String bound = cc == null ? "" : String.format("%.3f", median(cc) / median(c));
            System.out.printf("%-46s %12s %12s %12s %8s %8s %8s %9s %8s %17s %8s %s%n", k, fmt(med * scale) + unit,
                    fmt(min(v) * scale), fmt(max(v) * scale), drops, alloc, cpu, bound, ratio, spread, target, verdict);
        }
        if (counters) {
            printEvents(events, framesSeen);
        }
        System.out.printf("%nratio = median over the repeats of (the configuration's sample / the mean of the two"
                + " samples of its ceiling taken right before and right after it in the same repeat), all in this"
                + " run; 64 B against Agrona's ring (frames/s), 1500 B against the copy loop (Gb/s)."
                + "%ntargets (issue 16): 64 B / Agrona >= 0.5 with notifications, >= 1.0 with busy-poll;"
                + " 1500 B / copy loop >= 0.7.%n");
        System.out.printf("CPU ns/f = the JVM's CPU time over the window (every thread) per frame received, median"
                + " over the repeats: what a frame costs, less moved by other load on the machine than the rate. A"
                + " ceiling's two threads spin, so its figure is its CPUs over its rate.%n");
        int cpus = Runtime.getRuntime().availableProcessors();
        System.out.printf("CPU bound = the ceiling's CPU ns/f over the configuration's. ratio = CPU bound x (CPUs the"
                + " configuration kept busy / CPUs the ceiling kept busy), and the ceiling's two threads spin: %s%n",
                cpus <= 2 ? "on this " + cpus + "-CPU machine they keep every CPU busy, so no way of waiting takes a"
                        + " configuration above its CPU bound; only a path that costs less per frame does."
                        : "with " + cpus + " CPUs here, a configuration that keeps more than two busy can pass it.");
        System.out.printf("B/frame = the most heap bytes any repeat's window allocated, all threads of the JVM,"
                + " per frame received (one object per frame would be 16 or more).%n");
        System.out.printf("drops = median share of frames the switch dropped (its port queue full: the open-loop"
                + " sender outran the receiver).%nguest checks: %d corrupt or reordered frames%n", checks);
    }

    private static void ceiling(int length, long window, boolean record, Map<String, List<Double>> samples,
                                Map<String, List<Double>> cpuPerFrame) throws InterruptedException {
        var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        long c0 = os.getProcessCpuTime();
        Ceilings.Rate rate = length == SMALL ? Ceilings.agronaRing(SMALL, Duration.ofNanos(window))
                : Ceilings.copyLoop(LARGE, Duration.ofNanos(window));
        long cpu = os.getProcessCpuTime() - c0;
        if (record) {
            String key = length == SMALL ? AGRONA : COPY;
            samples.computeIfAbsent(key, k -> new ArrayList<>())
                    .add(length == SMALL ? rate.framesPerSecond() : rate.gbitPerSecond());
            cpuPerFrame.computeIfAbsent(key, k -> new ArrayList<>()).add(cpu / (double) Math.max(1, rate.frames()));
        }
    }

    /** Threads other than this one that are runnable while the ceilings run: they would share the cores. */
    private static void busyThreads() {
        List<String> busy = new ArrayList<>();
        for (var e : Thread.getAllStackTraces().entrySet()) {
            Thread t = e.getKey();
            if (t != Thread.currentThread() && t.getState() == Thread.State.RUNNABLE
                    && !t.getName().startsWith("Reference") && !t.getName().startsWith("Signal")
                    && !t.getName().startsWith("Attach") && !t.getName().startsWith("Common-Cleaner")) {
                busy.add(t.getName() + (e.getValue().length > 0 ? " at " + e.getValue()[0] : ""));
            }
        }
        System.out.println("runnable threads before the ceilings: " + busy);
    }

    /**
     * Each repeat's sample over its ceiling: the ceiling list holds two samples per repeat (before and after the
     * configurations), the configuration list one, in repeat order; so drift between repeats cancels out.
     */
    private static List<Double> pairRatios(List<Double> config, List<Double> ceiling) {
        List<Double> r = new ArrayList<>();
        for (int i = 0; i < config.size() && 2 * i + 1 < ceiling.size(); i++) {
            r.add(config.get(i) / ((ceiling.get(2 * i) + ceiling.get(2 * i + 1)) / 2));
        }
        return r;
    }

    /** Each configuration's events per 1,000 frames received: the median over its repeats, one line per side. */
    private static void printEvents(Map<String, List<long[]>> events, Map<String, List<Long>> frames) {
        List<String> names = VmPair.EVENTS;
        int half = names.size() / 2;
        System.out.printf("%nevents per 1,000 frames received (median over the repeats)%n");
        for (Map.Entry<String, List<long[]>> e : events.entrySet()) {
            List<Long> f = frames.get(e.getKey());
            StringBuilder line = new StringBuilder(String.format("%-40s", e.getKey()));
            for (int i = 0; i < names.size(); i++) {
                if (i == half) {
                    line.append(String.format("%n%-40s", ""));
                }
                List<Double> per = new ArrayList<>();
                for (int r = 0; r < e.getValue().size(); r++) {
                    per.add(1000.0 * e.getValue().get(r)[i] / Math.max(1, f.get(r)));
                }
                line.append(String.format(" %s=%s", names.get(i), fmt(median(per))));
            }
            System.out.println(line);
        }
    }

    /** The idle strategy of a busy-polling platform worker, by its {@code --busy-idle} name (null: busy spin). */
    private static org.agrona.concurrent.IdleStrategy idleStrategy(String name) {
        return switch (name) {
            case "spin" -> null;
            case "yield" -> new org.agrona.concurrent.YieldingIdleStrategy();
            case "backoff" -> new org.agrona.concurrent.BackoffIdleStrategy(64, 16, 1_000, 20_000);
            default -> throw new IllegalArgumentException("--busy-idle: " + name + "; allowed: spin, yield, backoff");
        };
    }

    private static String key(int length, String model, RingLayout ring, boolean busy) {
        return length + " B " + model + (ring == RingLayout.SPLIT ? "" : " " + ring.layoutName())
                + (busy ? " busy-poll" : " notify");
    }




    private static double median(List<Double> v) {
        double[] a = v.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(a);
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    private static double min(List<Double> v) {
        return v.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
    }

    private static double max(List<Double> v) {
        return v.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
    }

    private static String fmt(double d) {
        return String.format(d >= 100 ? "%.1f" : "%.3f", d);
    }

    private static int intArg(String[] args, String name, int dflt) {
        String s = stringArg(args, name, null);
        return s == null ? dflt : Integer.parseInt(s);
    }

    private static String stringArg(String[] args, String name, String dflt) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return dflt;
    }
}
