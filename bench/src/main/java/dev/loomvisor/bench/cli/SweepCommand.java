package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.journal.Journal;
import dev.loomvisor.bench.machine.MachineState;
import dev.loomvisor.bench.output.Json;
import dev.loomvisor.bench.output.SweepChart;
import dev.loomvisor.bench.output.Table;
import dev.loomvisor.bench.scenario.DataPathRun;
import dev.loomvisor.bench.machine.Disturbance;
import dev.loomvisor.bench.scenario.Floor;
import dev.loomvisor.bench.scenario.JitWarmup;
import dev.loomvisor.bench.scenario.StepWindow;
import dev.loomvisor.bench.scenario.SweepStep;
import dev.loomvisor.bench.scenario.VmSearch;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vmm.virtio.RingLayout;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Predicate;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code sweep}: how many VMs each worker model holds under a p99 latency target. Per model, doubles the VMs
 * (2, 4, 8, ...) until a step breaks with no headroom left (the CPUs used up or the senders behind their rate),
 * or a limit or memory stops it, then bisects between the most VMs that held and the fewest above them that
 * broke ({@link VmSearch}); each step is the median of the repeats. Next to each model's result, the floor (a
 * bare virtual-thread handoff at the same pacing) at the count it held.
 */
@Command(name = "sweep", mixinStandardHelpOptions = true,
        description = "Per model, doubles the VMs (2, 4, 8, ...) then bisects to the most VMs whose p99 one-way latency "
                + "(open loop at --rate per flow, default 10k; fractions such as 0.5 for mostly idle VMs) stays within "
                + "--slo-us; reports the VMs held, the p99 there, the floor's p99, CPU, threads, RSS per VM, frames/s "
                + "and why the next count broke. Uses the first --frame-size.")
public final class SweepCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    CommonOptions common;

    @Mixin
    OpenLoopOptions pacing;

    @Option(names = "--min-samples", paramLabel = "N", defaultValue = "1000",
            description = "Latencies each step should hold for its p99, all flows together: a step measures longer "
                    + "than --duration until it is expected to hold them, up to --max-duration (default: ${DEFAULT-VALUE}).")
    long minSamples;

    @Option(names = "--max-duration", paramLabel = "TIME", converter = Durations.class, defaultValue = "30s",
            description = "The longest a step measures (and warms up) to reach --min-samples (default: ${DEFAULT-VALUE}).")
    java.time.Duration maxDuration;

    /** Send intervals of each flow every step's warm-up lasts at least: each VM's first frames stay out of its window. */
    static final int MIN_WARMUP_FRAMES = 5;

    @Option(names = "--slo-us", paramLabel = "MICROS", defaultValue = "1000",
            description = "The p99 latency target in microseconds (default: ${DEFAULT-VALUE}).")
    double sloMicros;

    @Option(names = "--max-vms", paramLabel = "N", defaultValue = "16",
            description = "Stop the sweep at this many VMs, an even number up to " + CommonOptions.MAX_VMS
                    + " (default: ${DEFAULT-VALUE}).")
    int maxVms;

    @Option(names = "--floor-search", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Search the floor's count first, the same way: the most VMs a bare virtual-thread handoff "
                    + "(same pacing, recording and SLO, no rings, workers or switch) holds, which is the most this "
                    + "machine carries at this rate; --no-floor-search measures the floor only at each model's count "
                    + "(default: on).")
    boolean floorSearch;

    private final Disturbance disturbance = new Disturbance();
    /** Per step ("model/VMs"): the longest its warm-up was stretched for the start-up backlog to drain. */
    private final Map<String, Double> settleSeconds = new HashMap<>();
    /** Per model/VMs: resident memory per VM of the fleet set up and idle, beyond the baseline (median bytes). */
    private final Map<String, Long> idleRssPerVm = new HashMap<>();
    /** Per model/VMs: the senders' lateness p99 (median over repeats, us), the senders' share of the p99. */
    private final Map<String, Double> sendLateP99 = new HashMap<>();

    /** A step that saw fewer of the sent frames arrive than this broke: latency hides lost frames. */
    private static final double MIN_DELIVERED = 0.9;

    @Override
    public Integer call() throws Exception {
        common.validate();
        if (!(sloMicros > 0 && sloMicros <= 10_000_000)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--slo-us: give a target from above 0 to 10000000 microseconds");
        }
        if (maxVms < 2 || maxVms > CommonOptions.MAX_VMS || maxVms % 2 != 0) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--max-vms: " + maxVms + " is not allowed; give an even number from 2 to " + CommonOptions.MAX_VMS);
        }
        if ((long) maxVms * common.queues > CommonOptions.MAX_VMS) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--queues: " + maxVms + " VMs x "
                    + common.queues + " queue pairs is more than " + CommonOptions.MAX_VMS + " pairs in all");
        }
        if (minSamples < 0 || minSamples > 100_000_000) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--min-samples: " + minSamples + " is not allowed; give 0 to 100000000");
        }
        if (maxDuration.isNegative() || maxDuration.compareTo(java.time.Duration.ofHours(1)) > 0) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--max-duration: " + maxDuration.toMillis() + "ms is not allowed; give 0 to 1h, e.g. 30s");
        }
        long slack = pacing.slackNanos();
        var jit = new JitWarmup(pacing.jitWarmup(), slack);
        double rate = common.rate == null ? LatencyCommand.DEFAULT_RATE : common.rate;
        int size = common.frameSizes.getFirst();
        List<WorkerModel> models = common.workerModels();
        var config = new LinkedHashMap<String, Object>();
        config.put("models", new ArrayList<Object>(common.models));
        config.put("rings", new ArrayList<Object>(common.rings));
        config.put("frameSize", (long) size);
        config.put("ratePerFlow", rate);
        config.put("sloP99Us", sloMicros);
        config.put("maxVms", (long) maxVms);
        config.put("durationMs", common.duration.toMillis());
        config.put("warmupMs", common.warmup.toMillis());
        config.put("repeat", (long) common.repeat);
        config.put("minSamples", minSamples);
        config.put("maxDurationMs", maxDuration.toMillis());
        config.put("minWarmupFrames", (long) MIN_WARMUP_FRAMES);
        config.put("timerSlackUs", slack / 1e3);
        config.put("jitWarmupMs", pacing.jitWarmup.toMillis());
        var scale = common.scale();
        config.put("queueSize", (long) scale.queueSize());
        config.put("rxBuffers", (long) scale.rxBuffers());
        config.put("txBuffers", (long) scale.txBuffers());
        config.put("queues", (long) scale.queues());
        config.put("vringWorkers", common.vringWorkers);
        var machine = MachineState.begin();
        var machineStart = machine.startRecord();
        List<Map<String, Object>> steps = new ArrayList<>();
        var summary = new ArrayList<Map<String, Object>>();
        var chart = new LinkedHashMap<String, List<SweepChart.Point>>();
        var floors = new HashMap<Integer, Floor.Measurement>();
        try (var journal = Journal.open(common.journal); var progress = Progress.forTerminal(common.quiet)) {
            String run = journal.startRun("sweep", config, machineStart);
            // Every JIT warm-up first, so the baseline holds the compiled code and the steps' RSS only the VMs.
            progress.update("JIT warm-up", 1, 1, "");
            jit.floor(DataPathRun.Traffic.BOTH_WAYS);
            for (CompareCommand.Variant variant : CompareCommand.variants(models, common.ringLayouts())) {
                try {
                    jit.model(variant.model(), size, DataPathRun.Traffic.BOTH_WAYS, common.scale(variant.ring()));
                } catch (ErrnoException e) {
                    // The search's first step meets the same limit and reports it.
                }
            }
            System.gc();
            long baselineRss = MachineState.rssBytes();
            int cpus = Runtime.getRuntime().availableProcessors();
            Predicate<SweepStep> spare = s -> headroom(s, s.vms() * (double) common.queues * rate, cpus);
            Long floorHeld = null;
            if (floorSearch) {
                var points = new ArrayList<SweepChart.Point>();
                VmSearch.Result result = VmSearch.search(maxVms, n -> {
                    SweepStep s = measureFloor(n, rate, slack, floors, journal, run, steps, progress);
                    points.add(new SweepChart.Point(n, s.p99Us()));
                    return s;
                }, spare);
                chart.put("floor", points);
                floorHeld = (long) result.held();
                summary.add(floorSummaryMap(result));
            }
            for (CompareCommand.Variant variant : CompareCommand.variants(models, common.ringLayouts())) {
                WorkerModel model = variant.model();
                RingLayout ring = variant.ring();
                var points = new ArrayList<SweepChart.Point>();
                VmSearch.Result result = VmSearch.search(maxVms, n -> {
                    SweepStep s = measure(model, n, size, rate, common.scale(ring), slack, baselineRss, progress);
                    var m = stepMap(model, s);
                    m.put("ring", ring.layoutName());
                    m.put("settleSeconds", settleSeconds.getOrDefault(model.modelName() + "/" + n, 0.0));
                    m.put("idleRssPerVmBytes", idleRssPerVm.get(model.modelName() + "/" + n));
                    m.put("sendLateP99Us", sendLateP99.getOrDefault(model.modelName() + "/" + n, Double.NaN));
                    disturbance.flag(m, null);
                    journal.result(run, m);
                    steps.add(m);
                    points.add(new SweepChart.Point(n, s.p99Us()));
                    return s;
                }, spare);
                chart.put(variant.label(), points);
                int floorVms = Math.max(2, result.held());
                Floor.Measurement floor = floorAt(floorVms, rate, slack, jit, floors, journal, run, steps, progress);
                var sm = summaryMap(model, result, floor);
                sm.put("idleRssPerVmBytes", result.heldStep() == null ? null
                        : idleRssPerVm.get(model.modelName() + "/" + result.held()));
                sm.put("sendLateP99AtHeldUs", result.heldStep() == null ? Double.NaN
                        : sendLateP99.getOrDefault(model.modelName() + "/" + result.held(), Double.NaN));
                sm.put("ring", ring.layoutName());
                sm.put("floorVmsHeldAtSlo", floorHeld);
                sm.put("shareOfFloorVms", floorHeld == null || floorHeld == 0 ? Double.NaN
                        : result.held() / (double) floorHeld);
                summary.add(sm);
            }
            var end = new LinkedHashMap<String, Object>(machineStart);
            end.putAll(machine.endRecord());
            end.put("baselineRssBytes", baselineRss);
            end.put("summary", summary);
            journal.endRun(run, end);
            progress.clear();
            if (common.out != null) {
                SweepChart.write(common.out, String.format(Locale.ROOT, "p99 one-way latency against VMs, %s frames/s "
                        + "per flow, %d B (run %s)", Rates.format(rate), size, run), chart, sloMicros);
                Files.writeString(common.out.resolve("sweep.json"), Json.pretty(report(run, config, summary, steps)));
            }
            print(run, rate, size, config, summary, steps);
        }
        return 0;
    }

    /**
     * The floor at {@code vms} VMs, measured once per count and shared by every model; each measurement is also a
     * row of the steps (model "floor").
     */
    private Floor.Measurement floorAt(int vms, double rate, long slack, JitWarmup jit, Map<Integer, Floor.Measurement> floors,
                                      Journal journal, String run, List<Map<String, Object>> steps, Progress progress) {
        Floor.Measurement floor = floors.get(vms);
        if (floor != null) {
            return floor;
        }
        progress.update("floor " + vms + " VMs", 1, 1, "");
        try {
            jit.floor(DataPathRun.Traffic.BOTH_WAYS);
            // As many flows as the VMs' queue pairs: each pair of a sender is a flow.
            int flows = vms * common.queues;
            StepWindow w = window(flows, rate);
            disturbance.begin();
            floor = Floor.run(flows, rate, DataPathRun.Traffic.BOTH_WAYS, w.warmup(), w.duration(), slack);
            disturbance.end("floor/" + vms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while measuring the floor", e);
        }
        floors.put(vms, floor);
        steps.add(floorRow(vms, floor, journal, run));
        return floor;
    }

    /** A step row (model "floor") of one floor measurement, journalled. */
    private Map<String, Object> floorRow(int vms, Floor.Measurement floor, Journal journal, String run) {
        double p99 = floor.latency().getValueAtPercentile(99) / 1e3;
        double seconds = floor.nanos() / 1e9;
        var m = new LinkedHashMap<String, Object>();
        m.put("model", "floor");
        m.put("ring", "-");
        m.put("vms", (long) vms);
        boolean held = p99 <= sloMicros;
        m.put("outcome", held ? SweepStep.Outcome.HELD.word() : SweepStep.Outcome.LATENCY.word());
        m.put("withinSlo", held);
        m.put("latencyP99Us", p99);
        m.put("cpuSecondsPerSecond", floor.cpuSeconds() / seconds);
        m.put("platformThreads", null);
        m.put("rssPerVmBytes", null);
        m.put("idleRssPerVmBytes", null);
        m.put("sendLateP99Us", CompareCommand.p99Us(floor.sendLateness()));
        m.put("framesPerSecond", floor.framesPerSecond());
        m.put("samples", floor.latency().getTotalCount());
        m.put("windowSeconds", seconds);
        m.put("key", "floor/" + vms);
        m.put("detail", held ? "" : String.format(Locale.ROOT, "p99 %.1f us over the %.0f us SLO", p99, sloMicros));
        disturbance.flag(m, null);
        journal.result(run, m);
        return m;
    }

    /**
     * One step of the floor's own search ({@link #floorSearch}): the floor at {@code vms} VMs over the repeats,
     * judged as a model's step. Each repeat is a step row; the last is kept for the models' summaries.
     */
    private SweepStep measureFloor(int vms, double rate, long slack, Map<Integer, Floor.Measurement> floors,
                                   Journal journal, String run, List<Map<String, Object>> steps, Progress progress) {
        int flows = vms * common.queues;
        StepWindow w = window(flows, rate);
        int n = common.repeat;
        double[] p99 = new double[n];
        double[] cpu = new double[n];
        double[] fps = new double[n];
        double[] late = new double[n];
        long samples = 0;
        for (int r = 0; r < n; r++) {
            progress.update("floor " + vms + " VMs", r + 1, n, "");
            Floor.Measurement floor;
            try {
                disturbance.begin();
                floor = Floor.run(flows, rate, DataPathRun.Traffic.BOTH_WAYS, w.warmup(), w.duration(), slack);
                disturbance.end("floor/" + vms);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while measuring the floor", e);
            } catch (OutOfMemoryError e) {
                System.gc();
                return SweepStep.broken(vms, SweepStep.Outcome.MEMORY, String.valueOf(e.getMessage()));
            }
            floors.put(vms, floor);
            steps.add(floorRow(vms, floor, journal, run));
            double seconds = floor.nanos() / 1e9;
            p99[r] = floor.latency().getValueAtPercentile(99) / 1e3;
            cpu[r] = floor.cpuSeconds() / seconds;
            fps[r] = floor.framesPerSecond();
            late[r] = CompareCommand.p99Us(floor.sendLateness());
            samples += floor.latency().getTotalCount();
        }
        sendLateP99.put("floor/" + vms, CompareCommand.median(late));
        double received = CompareCommand.median(fps);
        var s = new SweepStep(vms, SweepStep.Outcome.HELD, CompareCommand.median(p99), CompareCommand.median(cpu), 0, 0,
                received, "", samples, w.duration().toNanos() / 1e9);
        return judged(s, received / (flows * rate), "offered frames");
    }

    private Map<String, Object> floorSummaryMap(VmSearch.Result r) {
        var s = summaryMap("floor", r);
        s.put("ring", "-");
        s.put("sendLateP99AtHeldUs", r.heldStep() == null ? Double.NaN
                : sendLateP99.getOrDefault("floor/" + r.held(), Double.NaN));
        s.put("platformThreads", null);
        s.put("rssPerVmBytes", null);
        s.put("idleRssPerVmBytes", null);
        return s;
    }

    /**
     * The share of the machine's CPUs below which a step that broke the SLO still had CPU to spare: a busier
     * step can only have less.
     */
    static final double HEADROOM_CPU_SHARE = 0.75;
    /** The share of the offered frames per second a step must have received to count as keeping up. */
    static final double HEADROOM_RATE_SHARE = 0.9;

    /**
     * Whether a step that broke on latency had headroom: the JVM used under {@link #HEADROOM_CPU_SHARE} of the
     * CPUs and received at least {@link #HEADROOM_RATE_SHARE} of what the senders were to send. Such a break is
     * a cold path (sparse frames waking parked threads), not the model's capacity, and the doubling goes on
     * ({@link VmSearch}).
     */
    static boolean headroom(SweepStep s, double offeredFramesPerSecond, int cpus) {
        return s.cpuPerSecond() < HEADROOM_CPU_SHARE * cpus
                && s.framesPerSecond() >= HEADROOM_RATE_SHARE * offeredFramesPerSecond;
    }

    /** The warm-up and window of a step at {@code vms} VMs. */
    private StepWindow window(int vms, double rate) {
        return StepWindow.plan(vms, rate, common.warmup, common.duration, maxDuration, minSamples, MIN_WARMUP_FRAMES);
    }

    private SweepStep measure(WorkerModel model, int vms, int size, double rate, DataPathRun.Scale scale,
                              long slack, long baselineRss, Progress progress) {
        StepWindow w = window(vms, rate);
        int n = common.repeat;
        double[] p99 = new double[n];
        double[] cpu = new double[n];
        double[] fps = new double[n];
        double[] rss = new double[n];
        double[] idleRss = new double[n];
        double[] late = new double[n];
        long threads = 0;
        long sent = 0;
        long received = 0;
        long samples = 0;
        long settle = 0;
        for (int r = 0; r < n; r++) {
            int rep = r + 1;
            DataPathRun.Measurement x;
            try {
                disturbance.begin();
                x = DataPathRun.run(model, vms, size, w.warmup(), w.duration(), common.busyPollMicros, rate,
                        DataPathRun.Traffic.BOTH_WAYS, scale, slack, true, (t, cur) -> progress.update(
                                model.modelName() + " " + vms + " VMs", rep, n, String.format(Locale.ROOT,
                                        "%.3f Mpps, %.0f of %.0f s", cur, t, w.duration().toNanos() / 1e9)));
                disturbance.end(model.modelName() + "/" + vms);
            } catch (ErrnoException e) {
                return SweepStep.broken(vms, SweepStep.Outcome.LIMIT, e.errno() + ": " + e.getMessage());
            } catch (OutOfMemoryError e) {
                System.gc();
                return SweepStep.broken(vms, SweepStep.Outcome.MEMORY, String.valueOf(e.getMessage()));
            } catch (RuntimeException e) {
                return SweepStep.broken(vms, SweepStep.Outcome.FAILED, e.getClass().getSimpleName() + ": " + e.getMessage());
            }
            p99[r] = x.latency().getValueAtPercentile(99) / 1e3;
            double seconds = x.nanos() / 1e9;
            cpu[r] = x.cpuSeconds() / seconds;
            fps[r] = x.frames() / seconds;
            rss[r] = Math.max(0, x.rssBytes() - baselineRss) / (double) vms;
            idleRss[r] = Math.max(0, x.idleRssBytes() - baselineRss) / (double) vms;
            late[r] = CompareCommand.p99Us(x.sendLateness());
            threads = Math.max(threads, x.platformThreads());
            sent += x.sent();
            received += x.frames();
            samples += x.latency().getTotalCount();
            settle = Math.max(settle, x.settleNanos());
        }
        settleSeconds.put(model.modelName() + "/" + vms, settle / 1e9);
        idleRssPerVm.put(model.modelName() + "/" + vms, Math.round(CompareCommand.median(idleRss)));
        sendLateP99.put(model.modelName() + "/" + vms, CompareCommand.median(late));
        var s = new SweepStep(vms, SweepStep.Outcome.HELD, CompareCommand.median(p99), CompareCommand.median(cpu),
                threads, Math.round(CompareCommand.median(rss)), CompareCommand.median(fps), "", samples,
                w.duration().toNanos() / 1e9);
        return judged(s, sent > 100 ? received / (double) sent : 1, "frames sent");
    }

    /**
     * A measured step's outcome: failed if no latency was recorded, broken if under {@link #MIN_DELIVERED} of
     * the frames arrived ({@code arrived} of {@code what}: latency hides lost frames) or the p99 is over the SLO.
     */
    private SweepStep judged(SweepStep s, double arrived, String what) {
        if (s.samples() == 0) {
            return s.withOutcome(SweepStep.Outcome.FAILED,
                    "no frame arrived in the measured window; give a longer --duration for this --rate");
        }
        if (arrived < MIN_DELIVERED) {
            return s.withOutcome(SweepStep.Outcome.LATENCY,
                    String.format(Locale.ROOT, "%.1f%% of the %s arrived", 100.0 * arrived, what));
        }
        if (s.p99Us() > sloMicros) {
            return s.withOutcome(SweepStep.Outcome.LATENCY,
                    String.format(Locale.ROOT, "p99 %.1f us over the %.0f us SLO", s.p99Us(), sloMicros));
        }
        return s;
    }

    private static Map<String, Object> stepMap(WorkerModel model, SweepStep s) {
        var m = new LinkedHashMap<String, Object>();
        m.put("model", model.modelName());
        m.put("vms", (long) s.vms());
        m.put("outcome", s.outcome().word());
        m.put("withinSlo", s.held());
        m.put("latencyP99Us", s.p99Us());
        m.put("cpuSecondsPerSecond", s.cpuPerSecond());
        m.put("platformThreads", s.platformThreads());
        m.put("rssPerVmBytes", s.rssPerVmBytes());
        m.put("framesPerSecond", s.framesPerSecond());
        m.put("samples", s.samples());
        m.put("windowSeconds", s.windowSeconds());
        m.put("key", model.modelName() + "/" + s.vms());
        m.put("detail", s.detail());
        return m;
    }

    private static Map<String, Object> summaryMap(WorkerModel model, VmSearch.Result r, Floor.Measurement floor) {
        var s = summaryMap(model.modelName(), r);
        SweepStep held = r.heldStep();
        s.put("floorVms", (long) floor.vms());
        s.put("floorP99Us", floor.latency().getValueAtPercentile(99) / 1e3);
        s.put("floorSendLateP99Us", CompareCommand.p99Us(floor.sendLateness()));
        s.put("platformThreads", held == null ? null : held.platformThreads());
        s.put("rssPerVmBytes", held == null ? null : held.rssPerVmBytes());
        return s;
    }

    /** A search's result as a summary row: what the model (or the floor) held, and the first count that broke. */
    private static Map<String, Object> summaryMap(String model, VmSearch.Result r) {
        var s = new LinkedHashMap<String, Object>();
        SweepStep held = r.heldStep();
        SweepStep broke = r.firstBroken();
        s.put("model", model);
        s.put("vmsHeldAtSlo", (long) r.held());
        s.put("p99AtHeldUs", held == null ? Double.NaN : held.p99Us());
        s.put("samplesAtHeld", held == null ? null : held.samples());
        s.put("cpuSecondsPerSecond", held == null ? Double.NaN : held.cpuPerSecond());
        s.put("framesPerSecond", held == null ? Double.NaN : held.framesPerSecond());
        s.put("firstVmsOverSlo", broke == null ? null : (long) broke.vms());
        s.put("brokeBy", broke == null ? null : broke.outcome().word());
        s.put("brokeDetail", broke == null ? null : broke.detail());
        s.put("p99OverSloUs", broke == null ? Double.NaN : broke.p99Us());
        s.put("steps", (long) r.steps().size());
        return s;
    }

    private static Map<String, Object> report(String run, Map<String, Object> config, List<Map<String, Object>> summary,
                                              List<Map<String, Object>> steps) {
        var m = new LinkedHashMap<String, Object>();
        m.put("run", run);
        m.put("config", config);
        m.put("summary", summary);
        m.put("steps", steps);
        return m;
    }

    private void print(String run, double rate, int size, Map<String, Object> config, List<Map<String, Object>> summary,
                       List<Map<String, Object>> steps) {
        var out = spec.commandLine().getOut();
        if (common.json) {
            out.print(Json.pretty(report(run, config, summary, steps)));
            out.flush();
            return;
        }
        out.printf(Locale.ROOT, "sweep: p99 SLO %.0f us, %d B frames, %s frames/s per flow, up to %d VMs, %s; run %s%n",
                sloMicros, size, Rates.format(rate), maxVms, CompareCommand.queuesText(common.queues, common.vringWorkers), run);
        out.printf(Locale.ROOT, "each step: warm-up at least %s and %d send intervals per flow, then a window of at least "
                        + "%s, longer (up to %s) until it is expected to hold %d latencies; JIT warm-up %s per model "
                        + "and the floor on 2 VMs at %s frames/s per flow; pacing clock slack %d us%n",
                dur(common.warmup), MIN_WARMUP_FRAMES, dur(common.duration),
                dur(maxDuration), minSamples, dur(pacing.jitWarmup), JitWarmup.RATE_PER_FLOW_TEXT,
                pacing.timerSlack.toNanos() / 1000);
        var st = new Table(List.of("model", "ring", "VMs", "outcome", "p99 us", "late p99 us", "samples", "window s",
                "frames/s", "CPU s/s", "RSS/VM KiB", "idle RSS/VM KiB", "settle s", "other CPU %"));
        for (var m : steps) {
            long n = ((Number) m.get("samples")).longValue();
            st.row(List.of(Disturbance.mark(m), String.valueOf(m.get("ring")), String.valueOf(m.get("vms")), (String) m.get("outcome"),
                    f1(m.get("latencyP99Us")), f1(m.get("sendLateP99Us")), n < minSamples ? n + " (few)" : String.valueOf(n),
                    f1(m.get("windowSeconds")), f0(m.get("framesPerSecond")), f2(m.get("cpuSecondsPerSecond")),
                    kib(m.get("rssPerVmBytes")), kib(m.get("idleRssPerVmBytes")),
                    f1(m.get("settleSeconds")),
                    String.format(Locale.ROOT, "%.0f", 100 * ((Number) m.get("otherCpuShare")).doubleValue())));
        }
        out.print(st.render());
        out.println();
        var t = new Table(List.of("model", "ring", "VMs held", "p99 us", "late p99 us", "floor p99 us", "CPU s/s", "threads",
                "RSS/VM KiB", "idle RSS/VM KiB", "frames/s", "x floor VMs", "first broken", "because", "p99 us there"));
        for (var s : summary) {
            t.row(List.of((String) s.get("model"), (String) s.get("ring"), String.valueOf(s.get("vmsHeldAtSlo")), f1(s.get("p99AtHeldUs")),
                    f1(s.get("sendLateP99AtHeldUs")), f1(s.get("floorP99Us")), f2(s.get("cpuSecondsPerSecond")),
                    s.get("platformThreads") == null ? "-" : String.valueOf(s.get("platformThreads")),
                    kib(s.get("rssPerVmBytes")), kib(s.get("idleRssPerVmBytes")),
                    f0(s.get("framesPerSecond")), f2(s.get("shareOfFloorVms")),
                    s.get("firstVmsOverSlo") == null ? "-" : String.valueOf(s.get("firstVmsOverSlo")),
                    s.get("brokeBy") == null ? "-" : (String) s.get("brokeBy"), f1(s.get("p99OverSloUs"))));
        }
        out.print(t.render());
        for (var s : summary) {
            if (s.get("brokeDetail") != null) {
                out.printf("%s (%s ring) at %s VMs: %s%n", s.get("model"), s.get("ring"), s.get("firstVmsOverSlo"),
                        s.get("brokeDetail"));
            }
        }
        Disturbance.footnote(steps).ifPresent(out::println);
        out.println("late p99: the senders' own lateness, each frame's send time minus the time it was due: the part of the "
                + "p99 before any ring, worker or switch (the pacing clock, the sender's wake-up and its turn on a CPU).");
        out.println("samples: latencies behind a step's p99 over its repeats, '(few)' when the window's cap left fewer "
                + "than --min-samples; settle s: how long the warm-up was stretched until the start-up backlog (every VM's first "
                + "page faults) had drained, up to " + DataPathRun.MAX_SETTLE_NANOS / 1_000_000_000L + " s; other CPU %: the most other processes took of the CPUs during a repeat.");
        out.println("VMs held: most VMs within the SLO (doubling, then bisection to one pair); figures at that count, "
                + "medians over repeats; floor: the same VMs and pacing as a bare virtual-thread handoff; RSS/VM: "
                + "resident memory after a full GC beyond the JVM's after its JIT warm-ups, per VM, after the window (sending) "
                + "and with the VMs set up and started before any frame (idle); a step after a larger one also holds the "
                + "heap that one left committed; frames/s: all flows together.");
        if (floorSearch) {
            out.println("floor row: the most VMs the floor holds within the SLO, searched the same way: what this machine's "
                    + "scheduler and pacing carry at this rate with no rings, workers or switch. A model does more per frame, "
                    + "so it holds no more beyond the run-to-run spread (at a few VMs both are coin tosses on cold "
                    + "wake-ups); x floor VMs: a model's count as a share of it.");
        }
        out.flush();
    }

    private static String dur(java.time.Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + "s" : d.toMillis() + "ms";
    }

    private static String kib(Object bytes) {
        return bytes instanceof Number n ? String.format(Locale.ROOT, "%.1f", n.longValue() / 1024.0) : "-";
    }

    private static String f0(Object v) {
        return v instanceof Double d && Double.isFinite(d) ? String.format(Locale.ROOT, "%.0f", d) : "-";
    }

    private static String f1(Object v) {
        return v instanceof Double d && Double.isFinite(d) ? String.format(Locale.ROOT, "%.1f", d) : "-";
    }

    private static String f2(Object v) {
        return v instanceof Double d && Double.isFinite(d) ? String.format(Locale.ROOT, "%.2f", d) : "-";
    }
}
