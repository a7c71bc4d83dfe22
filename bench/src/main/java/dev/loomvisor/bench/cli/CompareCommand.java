package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.journal.Journal;
import dev.loomvisor.bench.machine.Disturbance;
import dev.loomvisor.bench.machine.MachineState;
import dev.loomvisor.bench.output.Json;
import dev.loomvisor.bench.output.LatencyFiles;
import dev.loomvisor.bench.output.Table;
import dev.loomvisor.bench.scenario.Ceilings;
import dev.loomvisor.bench.scenario.DataPathRun;
import dev.loomvisor.bench.scenario.Floor;
import dev.loomvisor.bench.scenario.JitWarmup;
import dev.loomvisor.bench.scenario.LimitsScenario;
import dev.loomvisor.bench.scenario.WorkerCreateTime;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vmm.virtio.RingLayout;
import java.io.IOException;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.HdrHistogram.Histogram;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * {@code compare}: the main job. Runs the data path under every worker model, interleaving the models in a
 * rotated order each repeat, next to the local ceilings measured in the same repeat, and prints one
 * side-by-side table with each model's ratio to {@code user-worker} and to the ceiling. With {@code --ring
 * split,packed} every model runs on both virtqueue layouts, the two interleaved with the models, and each row
 * also shows its ratio to the split ring of the same model.
 */
@Command(name = "compare", mixinStandardHelpOptions = true,
        description = "Side by side: every worker model on the same virtio-net data path (VM pairs through the L2 "
                + "switch, closed loop), interleaved and repeated, with ratios to user-worker and to the local "
                + "ceilings (Agrona's ring for small frames, a plain copy loop for large ones) measured in the same run.")
public class CompareCommand implements Callable<Integer> {

    /** Frames from this size up are read against the copy loop in Gbit/s, smaller ones against the ring in Mpps. */
    static final int LARGE_FRAME = 512;
    private static final int CREATE_SAMPLES = 200;
    private static final Duration CEILING_TIME = Duration.ofMillis(300);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    CommonOptions common;

    @Mixin
    OpenLoopOptions pacing;

    /** One measured configuration: a worker model on a ring layout. */
    record Variant(WorkerModel model, RingLayout ring) {

        /** "user-worker", or "user-worker packed" off the default layout: progress lines and chart labels. */
        String label() {
            return ring == RingLayout.SPLIT ? model.modelName() : model.modelName() + " " + ring.layoutName();
        }

        /** The file-name form of {@link #label()}. */
        String fileName() {
            return label().replace(' ', '-');
        }
    }

    /** Every model on every layout, model-major: a model's layouts sit next to each other, so a rotation interleaves them. */
    static List<Variant> variants(List<WorkerModel> models, List<RingLayout> rings) {
        List<Variant> variants = new ArrayList<>();
        for (WorkerModel model : models) {
            for (RingLayout ring : rings) {
                variants.add(new Variant(model, ring));
            }
        }
        return variants;
    }

    /** Checks what this command needs beyond the common options (the latency command needs a rate). */
    protected void checkMode() {
        if (common.rate != null) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--rate: " + spec.name() + " runs closed loop; use 'loomvisor latency --rate FPS' for an open loop");
        }
    }

    /** How the pairs exchange frames; the pingpong command echoes. */
    protected DataPathRun.Traffic traffic() {
        return DataPathRun.Traffic.BOTH_WAYS;
    }

    @Override
    public Integer call() throws Exception {
        common.validate();
        long slack = pacing.slackNanos();
        var jit = new JitWarmup(pacing.jitWarmup(), slack);
        checkMode();
        List<WorkerModel> models = common.workerModels();
        List<RingLayout> rings = common.ringLayouts();
        List<Variant> variants = variants(models, rings);
        var config = config();
        var machine = MachineState.begin();
        var machineStart = machine.startRecord();
        var disturbance = new Disturbance();
        double ratePerFlow = common.rate == null ? 0 : common.rate;
        // Open loop: the floor (a bare virtual-thread handoff at the same pacing) runs in every repeat too.
        var floors = new Floor.Measurement[ratePerFlow > 0 ? common.repeat : 0];

        // measurements[size][variant][repeat], ceilings[size][repeat]
        int sizes = common.frameSizes.size();
        var runs = new DataPathRun.Measurement[sizes][variants.size()][common.repeat];
        var ceilings = new Ceilings.Rate[sizes][common.repeat];
        try (var journal = Journal.open(common.journal); var progress = Progress.forTerminal(common.quiet)) {
            String run = journal.startRun(spec.name(), config, machineStart);
            if (ratePerFlow > 0) {
                progress.update("JIT warm-up", 1, 1, "");
                jit.floor(traffic());
                for (int size : common.frameSizes) {
                    for (Variant variant : variants) {
                        jit.model(variant.model(), size, traffic(), common.scale(variant.ring()));
                    }
                }
            }
            for (int r = 0; r < common.repeat; r++) {
                if (floors.length > 0) {
                    progress.update("floor", r + 1, common.repeat, "");
                    // As many flows as the VMs' queue pairs: each pair of a sender is a flow.
                    floors[r] = Floor.run(common.vms * common.queues, ratePerFlow, traffic(), common.warmup,
                            common.duration, slack);
                }
                for (int s = 0; s < sizes; s++) {
                    int size = common.frameSizes.get(s);
                    ceilings[s][r] = size >= LARGE_FRAME ? Ceilings.copyLoop(size, CEILING_TIME)
                            : Ceilings.agronaRing(size, CEILING_TIME);
                    for (int k = 0; k < variants.size(); k++) {
                        // Rotate the order each repeat so no model (or layout) always runs first or last.
                        int v = (k + r) % variants.size();
                        Variant variant = variants.get(v);
                        int rep = r + 1;
                        disturbance.begin();
                        var meas = DataPathRun.run(variant.model(), common.vms, size, common.warmup, common.duration,
                                common.busyPollMicros, ratePerFlow, traffic(), common.scale(variant.ring()), slack,
                                (t, mpps) -> progress.update(variant.label() + " " + size + "B", rep, common.repeat,
                                        String.format(Locale.ROOT, "%.3f Mpps", mpps)));
                        runs[s][v][r] = meas;
                        String key = key(variant, size);
                        disturbance.end(key);
                        for (Histogram h : meas.intervals()) {
                            journal.interval(run, key, h);
                        }
                    }
                }
            }
            // Per model, independent of frame size: worker creation and the limits check.
            var createMicros = new double[models.size()];
            var overLimit = new long[models.size()];
            for (int m = 0; m < models.size(); m++) {
                createMicros[m] = WorkerCreateTime.medianMicros(models.get(m), CREATE_SAMPLES);
                overLimit[m] = LimitsScenario.run(models.get(m), 8, Long.MAX_VALUE, 0, 16, common.queues,
                        common.vringWorkerLayout()).workersOverLimit();
            }
            List<Map<String, Object>> rows = new ArrayList<>();
            List<Map<String, Object>> ceilingRows = new ArrayList<>();
            Map<String, Object> floor = floors.length == 0 ? null : floorRow(floors);
            for (int s = 0; s < sizes; s++) {
                int size = common.frameSizes.get(s);
                ceilingRows.add(ceilingRow(size, ceilings[s]));
                for (int v = 0; v < variants.size(); v++) {
                    Variant variant = variants.get(v);
                    int m = models.indexOf(variant.model());
                    // Ratios within a layout to user-worker, and within a model to the split ring.
                    int uw = variants.indexOf(new Variant(WorkerModel.USER_WORKER, variant.ring()));
                    int split = variants.indexOf(new Variant(variant.model(), RingLayout.SPLIT));
                    var row = row(variant, size, runs[s][v], uw < 0 ? null : runs[s][uw],
                            rings.size() < 2 || split < 0 ? null : runs[s][split],
                            ratePerFlow > 0 ? null : ceilings[s], createMicros[m], overLimit[m]);
                    if (floor != null) {
                        row.put("xFloorP50", (double) row.get("latencyP50Us") / (double) floor.get("latencyP50Us"));
                        row.put("xFloorP99", (double) row.get("latencyP99Us") / (double) floor.get("latencyP99Us"));
                    }
                    disturbance.flag(row, ratePerFlow > 0 ? null
                            : java.util.Arrays.stream(ceilings[s]).mapToDouble(Ceilings.Rate::framesPerSecond).toArray());
                    journal.result(run, row);
                    rows.add(row);
                }
            }
            var end = new LinkedHashMap<String, Object>(machineStart);
            end.putAll(machine.endRecord());
            end.put("ceilings", ceilingRows);
            if (floor != null) {
                end.put("floor", floor);
            }
            journal.endRun(run, end);
            progress.clear();
            if (common.out != null) {
                writeFiles(run, config, end, rows, runs, variants);
            }
            print(run, config, end, rows, ceilingRows);
        }
        return 0;
    }

    /** The queue pairs of each VM, as the header says them. */
    static String queuesText(int queues, String vringWorkers) {
        String workers = vringWorkers.equals("virtqueue")
                ? "workers per virtqueue where the model allows NEW_WORKER" : "a worker per pair";
        return (queues == 1 ? "1 queue pair per VM" : queues + " queue pairs per VM (MQ; a vCPU and a vhost-net per pair)")
                + ", " + workers;
    }

    /** A result's key: "user-worker/64B" on the split ring (as before packed rings), "user-worker/packed/64B". */
    static String key(Variant v, int size) {
        return v.model().modelName() + (v.ring() == RingLayout.SPLIT ? "" : "/" + v.ring().layoutName()) + "/" + size + "B";
    }

    private Map<String, Object> config() {
        var c = new LinkedHashMap<String, Object>();
        c.put("models", new ArrayList<Object>(common.models));
        c.put("vms", (long) common.vms);
        c.put("queues", (long) common.queues);
        c.put("rings", new ArrayList<Object>(common.rings));
        c.put("vringWorkers", common.vringWorkers);
        c.put("frameSizes", new ArrayList<Object>(common.frameSizes.stream().map(Integer::longValue).toList()));
        c.put("durationMs", common.duration.toMillis());
        c.put("warmupMs", common.warmup.toMillis());
        c.put("repeat", (long) common.repeat);
        c.put("ratePerFlow", common.rate);
        c.put("command", spec.name());
        c.put("busyPollMicros", common.busyPollMicros);
        c.put("loop", common.rate == null ? "closed" : "open");
        c.put("timerSlackUs", pacing.timerSlack.toNanos() / 1e3);
        c.put("jitWarmupMs", common.rate == null ? 0 : pacing.jitWarmup.toMillis());
        c.put("traffic", traffic().name());
        return c;
    }

    /** The floor's figures over all repeats, latencies merged. */
    static Map<String, Object> floorRow(Floor.Measurement[] reps) {
        Histogram latency = new Histogram(3);
        Histogram late = new Histogram(3);
        double[] cpu = new double[reps.length];
        long frames = 0;
        for (int r = 0; r < reps.length; r++) {
            latency.add(reps[r].latency());
            late.add(reps[r].sendLateness());
            cpu[r] = reps[r].cpuSeconds();
            frames += reps[r].frames();
        }
        var m = new LinkedHashMap<String, Object>();
        m.put("model", "floor");
        m.put("latencyP50Us", latency.getValueAtPercentile(50) / 1e3);
        m.put("latencyP99Us", latency.getValueAtPercentile(99) / 1e3);
        m.put("latencyP999Us", latency.getValueAtPercentile(99.9) / 1e3);
        m.put("latencyMaxUs", latency.getMaxValue() / 1e3);
        m.put("latencySamples", latency.getTotalCount());
        m.put("sendLateP99Us", p99Us(late));
        m.put("cpuSeconds", median(cpu));
        m.put("frames", frames);
        return m;
    }

    /** The p99 of {@code h} in microseconds, NaN if it holds nothing (a closed loop has no due times). */
    static double p99Us(Histogram h) {
        return h.getTotalCount() == 0 ? Double.NaN : h.getValueAtPercentile(99) / 1e3;
    }

    private static Map<String, Object> ceilingRow(int size, Ceilings.Rate[] reps) {
        var m = new LinkedHashMap<String, Object>();
        m.put("frameSize", (long) size);
        m.put("ceiling", size >= LARGE_FRAME ? "copy loop" : "agrona OneToOneRingBuffer");
        m.put("mpps", median(Arrays.stream(reps).mapToDouble(r -> r.framesPerSecond() / 1e6).toArray()));
        m.put("gbps", median(Arrays.stream(reps).mapToDouble(Ceilings.Rate::gbitPerSecond).toArray()));
        return m;
    }

    private static Map<String, Object> row(Variant variant, int size, DataPathRun.Measurement[] reps,
                                           DataPathRun.Measurement[] userWorker, DataPathRun.Measurement[] split,
                                           Ceilings.Rate[] ceilings, double createMicros, long overLimit) {
        WorkerModel model = variant.model();
        int n = reps.length;
        double[] mpps = new double[n];
        double[] gbps = new double[n];
        double[] cpu = new double[n];
        double[] vsUser = new double[n];
        double[] vsSplit = new double[n];
        double[] vsCeiling = new double[n];
        Histogram latency = new Histogram(3);
        Histogram late = new Histogram(3);
        long threads = 0;
        long rss = 0;
        long frames = 0;
        long bad = 0;
        long settle = 0;
        for (int r = 0; r < n; r++) {
            var x = reps[r];
            settle = Math.max(settle, x.settleNanos());
            mpps[r] = x.mpps();
            gbps[r] = x.gbps();
            cpu[r] = x.cpuSeconds();
            // Ratios within one repeat: the two ran back to back, so machine drift between repeats cancels.
            vsUser[r] = userWorker == null ? Double.NaN : x.mpps() / userWorker[r].mpps();
            vsSplit[r] = split == null ? Double.NaN : x.mpps() / split[r].mpps();
            // An open loop moves what the rate asks, so a ratio to the ceiling only means something closed loop.
            vsCeiling[r] = ceilings == null ? Double.NaN : size >= LARGE_FRAME ? x.gbps() / ceilings[r].gbitPerSecond()
                    : x.mpps() / (ceilings[r].framesPerSecond() / 1e6);
            latency.add(x.latency());
            late.add(x.sendLateness());
            threads = Math.max(threads, x.platformThreads());
            rss = Math.max(rss, x.rssBytes());
            frames += x.frames();
            bad += x.badFrames();
        }
        var m = new LinkedHashMap<String, Object>();
        m.put("key", key(variant, size));
        m.put("model", model.modelName());
        m.put("ring", variant.ring().layoutName());
        m.put("frameSize", (long) size);
        m.put("repeats", (long) n);
        m.put("mpps", median(mpps));
        m.put("mppsMin", Arrays.stream(mpps).min().orElse(Double.NaN));
        m.put("mppsMax", Arrays.stream(mpps).max().orElse(Double.NaN));
        m.put("gbps", median(gbps));
        m.put("latencyP50Us", latency.getValueAtPercentile(50) / 1e3);
        m.put("latencyP99Us", latency.getValueAtPercentile(99) / 1e3);
        m.put("latencyP999Us", latency.getValueAtPercentile(99.9) / 1e3);
        m.put("latencyMaxUs", latency.getMaxValue() / 1e3);
        m.put("latencySamples", latency.getTotalCount());
        m.put("sendLateP99Us", p99Us(late));
        m.put("cpuSeconds", median(cpu));
        m.put("javaThreads", threads);
        m.put("rssMiB", rss / (1024.0 * 1024.0));
        m.put("workerCreateUs", createMicros);
        m.put("limitViolations", overLimit);
        m.put("vsUserWorker", median(vsUser));
        m.put("vsCeiling", median(vsCeiling));
        m.put("vsSplit", median(vsSplit));
        m.put("frames", frames);
        m.put("badFrames", bad);
        m.put("vhostWorkersPerVm", (long) reps[0].workersPerVm());
        // Open loop: how long the longest warm-up was stretched for the start-up backlog to drain.
        m.put("settleSeconds", settle / 1e9);
        return m;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        if (n == 0) {
            return Double.NaN;
        }
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    private void writeFiles(String run, Map<String, Object> config, Map<String, Object> end,
                            List<Map<String, Object>> rows, DataPathRun.Measurement[][][] runs,
                            List<Variant> variants) throws IOException {
        Files.createDirectories(common.out);
        var byKey = new LinkedHashMap<String, Histogram>();
        for (int s = 0; s < runs.length; s++) {
            int size = common.frameSizes.get(s);
            for (int m = 0; m < variants.size(); m++) {
                String name = variants.get(m).fileName() + "-" + size + "B";
                Histogram all = new Histogram(3);
                List<Histogram> intervals = new ArrayList<>();
                for (var x : runs[s][m]) {
                    all.add(x.latency());
                    intervals.addAll(x.intervals());
                }
                LatencyFiles.writeHgrm(common.out, name, all);
                long start = intervals.isEmpty() ? System.currentTimeMillis() : intervals.getFirst().getStartTimeStamp();
                LatencyFiles.writeIntervalLog(common.out, name, start, intervals);
                byKey.put(variants.get(m).label() + " " + size + "B", all);
            }
        }
        LatencyFiles.writeChart(common.out, "one-way latency by percentile (run " + run + ")", byKey);
        Files.writeString(common.out.resolve("summary.json"), Json.pretty(summary(run, config, end, rows)));
    }

    private Map<String, Object> summary(String run, Map<String, Object> config, Map<String, Object> end,
                                        List<Map<String, Object>> rows) {
        var m = new LinkedHashMap<String, Object>();
        m.put("run", run);
        m.put("config", config);
        m.put("machine", end);
        if (end.get("floor") != null) {
            m.put("floor", end.get("floor"));
        }
        m.put("results", rows);
        return m;
    }

    private void print(String run, Map<String, Object> config, Map<String, Object> end,
                       List<Map<String, Object>> rows, List<Map<String, Object>> ceilings) {
        var out = spec.commandLine().getOut();
        if (common.json) {
            out.print(Json.pretty(summary(run, config, end, rows)));
            out.flush();
            return;
        }
        out.println(VersionProvider.versionLine());
        out.printf(Locale.ROOT, spec.name() + ": %d VMs (%d pairs through the L2 switch), %s, %s loop, %s ring%s, %s per "
                        + "model%s, warm-up %s, %d repeats interleaved; run %s%n",
                common.vms, common.vms / 2, queuesText(common.queues, common.vringWorkers), config.get("loop"),
                String.join(" and ", common.rings), common.rings.size() > 1 ? "s" : "", fmtDuration(common.duration),
                common.rings.size() > 1 ? " and ring" : "", fmtDuration(common.warmup), common.repeat, run);
        if (common.rate != null && !pacing.jitWarmup.isZero()) {
            out.printf(Locale.ROOT, "JIT warm-up: before the first repeat, the floor and each model carried frames for "
                    + "%s on 2 VMs at %s frames/s per flow (unmeasured); pacing clock slack %d us%n",
                    fmtDuration(pacing.jitWarmup), JitWarmup.RATE_PER_FLOW_TEXT, pacing.timerSlack.toNanos() / 1000);
        }
        out.printf(Locale.ROOT, "machine: core-to-core round trip %.0f ns at start, %.0f ns at end; other processes used "
                        + "%.2f CPU s during the run%n",
                ((Number) end.get("coreToCoreNanosStart")).doubleValue(), ((Number) end.get("coreToCoreNanosEnd")).doubleValue(),
                ((Number) end.get("otherCpuSeconds")).doubleValue());
        for (var c : ceilings) {
            long size = (long) c.get("frameSize");
            out.println();
            out.printf(Locale.ROOT, "%d B frames; ceiling (%s, same run): %.3f Mpps, %.2f Gbit/s%n", size,
                    c.get("ceiling"), (double) c.get("mpps"), (double) c.get("gbps"));
            var floor = (Map<?, ?>) end.get("floor");
            var header = new ArrayList<>(List.of("model", "ring", "Mpps", "(min-max)", "Gbit/s", "p50 us", "p99 us", "p99.9 us",
                    "max us", "late p99 us", "CPU s", "threads", "RSS MiB", "create us", "over limit", "x user-worker",
                    "x ceiling"));
            boolean bothRings = common.rings.size() > 1;
            if (bothRings) {
                header.add("x split");
            }
            if (floor != null) {
                header.addAll(List.of("x floor p50", "x floor p99"));
            }
            var t = new Table(header);
            if (floor != null) {
                var cells = new ArrayList<>(List.of("floor", "-", "-", "-", "-", f1(floor.get("latencyP50Us")),
                        f1(floor.get("latencyP99Us")), f1(floor.get("latencyP999Us")), f1(floor.get("latencyMaxUs")),
                        f1(floor.get("sendLateP99Us")), f2(floor.get("cpuSeconds")), "-", "-", "-", "-", "-", "-"));
                if (bothRings) {
                    cells.add("-");
                }
                cells.addAll(List.of("1.00", "1.00"));
                t.row(cells);
            }
            for (var r : rows) {
                if ((long) r.get("frameSize") != size) {
                    continue;
                }
                var cells = new ArrayList<>(List.of(Disturbance.mark(r), String.valueOf(r.get("ring")), f3(r.get("mpps")),
                        f3(r.get("mppsMin")) + "-" + f3(r.get("mppsMax")), f2(r.get("gbps")),
                        f1(r.get("latencyP50Us")), f1(r.get("latencyP99Us")), f1(r.get("latencyP999Us")),
                        f1(r.get("latencyMaxUs")), f1(r.get("sendLateP99Us")), f2(r.get("cpuSeconds")),
                        String.valueOf(r.get("javaThreads")),
                        f1(r.get("rssMiB")), f1(r.get("workerCreateUs")), String.valueOf(r.get("limitViolations")),
                        f2(r.get("vsUserWorker")), f2(r.get("vsCeiling"))));
                if (bothRings) {
                    cells.add(f2(r.get("vsSplit")));
                }
                if (floor != null) {
                    cells.addAll(List.of(f2(r.get("xFloorP50")), f2(r.get("xFloorP99"))));
                }
                t.row(cells);
            }
            out.print(t.render());
        }
        out.println();
        Disturbance.footnote(rows).ifPresent(out::println);
        double settled = rows.stream().mapToDouble(r -> r.get("settleSeconds") instanceof Double d ? d : 0).max().orElse(0);
        if (settled >= 0.1) {
            out.printf(Locale.ROOT, "warm-up stretched by up to %.1f s until the start-up backlog (every VM's first page "
                    + "faults) had drained (at most %d s; settleSeconds in the JSON)%n", settled,
                    DataPathRun.MAX_SETTLE_NANOS / 1_000_000_000L);
        }
        out.println("Mpps, Gbit/s, CPU s: medians over repeats (min-max shown for Mpps); latency: "
                + (traffic() == DataPathRun.Traffic.PING_PONG ? "round trip through the echo guest" : "one-way")
                + ", all repeats merged, from each frame's " + (common.rate == null ? "send time, under closed-loop load"
                        : "intended send time at " + Rates.format(common.rate) + " frames/s per flow") + "; late p99: the senders' own lateness, each frame's send time minus the time it was due (the part of the "
                + "latency before any ring, worker or switch); threads: JVM platform threads during the run; "
                + "over limit: workers beyond RLIMIT_NPROC 8 for 16 devices of " + common.queues + " queue pair"
                + (common.queues == 1 ? "" : "s") + " (the limits command); ratios: medians "
                + "of per-repeat ratios" + (common.rings.size() > 1 ? " (x user-worker on the same ring layout; x split: "
                        + "Mpps against the split ring of the same model)" : "")
                + (common.rate == null ? "" : "; floor: the same VMs, pacing and recording "
                        + "as a bare virtual-thread handoff (no rings, no workers), same run, and each model's p50/p99 "
                        + "as a multiple of it; pacing clock slack " + pacing.timerSlack.toNanos() / 1000 + " us for both") + ". Journal: " + common.journal + " (loomvisor report " + run + ").");
        out.flush();
    }

    private static String fmtDuration(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + "s" : d.toMillis() + "ms";
    }

    private static String f1(Object v) {
        return fmt("%.1f", v);
    }

    private static String f2(Object v) {
        return fmt("%.2f", v);
    }

    private static String f3(Object v) {
        return fmt("%.3f", v);
    }

    private static String fmt(String f, Object v) {
        return v instanceof Double d && Double.isFinite(d) ? String.format(Locale.ROOT, f, d) : "-";
    }
}
