package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.journal.Journal;
import dev.loomvisor.bench.machine.MachineState;
import dev.loomvisor.bench.output.Json;
import dev.loomvisor.bench.output.Table;
import dev.loomvisor.bench.scenario.DataPathRun;
import dev.loomvisor.core.worker.WorkerModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code sweep}: how many VMs each worker model holds under a p99 latency target. Adds a VM pair at a time,
 * every model at each step before the next (interleaved), each flow open loop at {@code --rate}; a model
 * drops out at the first step whose p99 (median over repeats) breaks the SLO.
 */
@Command(name = "sweep", mixinStandardHelpOptions = true,
        description = "Adds VM pairs until the p99 one-way latency (open loop at --rate per flow, default 10k) breaks "
                + "--slo-us; reports the VMs each worker model held at the SLO. Uses the first --frame-size.")
public final class SweepCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    CommonOptions common;

    @Option(names = "--slo-us", paramLabel = "MICROS", defaultValue = "1000",
            description = "The p99 latency target in microseconds (default: ${DEFAULT-VALUE}).")
    double sloMicros;

    @Option(names = "--max-vms", paramLabel = "N", defaultValue = "16",
            description = "Stop the sweep at this many VMs (default: ${DEFAULT-VALUE}).")
    int maxVms;

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
        long rate = common.rate == null ? LatencyCommand.DEFAULT_RATE : common.rate;
        int size = common.frameSizes.getFirst();
        List<WorkerModel> models = common.workerModels();
        var config = new LinkedHashMap<String, Object>();
        config.put("models", new ArrayList<Object>(common.models));
        config.put("frameSize", (long) size);
        config.put("ratePerFlow", rate);
        config.put("sloP99Us", sloMicros);
        config.put("maxVms", (long) maxVms);
        config.put("durationMs", common.duration.toMillis());
        config.put("warmupMs", common.warmup.toMillis());
        config.put("repeat", (long) common.repeat);
        var machine = MachineState.begin();
        var machineStart = machine.startRecord();
        int[] held = new int[models.size()];
        double[] heldP99 = new double[models.size()];
        int[] broke = new int[models.size()];
        double[] brokeP99 = new double[models.size()];
        Arrays.fill(heldP99, Double.NaN);
        Arrays.fill(brokeP99, Double.NaN);
        List<Map<String, Object>> steps = new ArrayList<>();
        try (var journal = Journal.open(common.journal); var progress = Progress.forTerminal(common.quiet)) {
            String run = journal.startRun("sweep", config, machineStart);
            for (int vms = 2; vms <= maxVms; vms += 2) {
                for (int m = 0; m < models.size(); m++) {
                    if (broke[m] != 0) {
                        continue;
                    }
                    double[] p99 = new double[common.repeat];
                    double[] mpps = new double[common.repeat];
                    for (int r = 0; r < common.repeat; r++) {
                        int rep = r + 1;
                        int n = vms;
                        WorkerModel model = models.get(m);
                        var x = DataPathRun.run(model, vms, size, common.warmup, common.duration,
                                common.busyPollMicros, rate, (t, cur) -> progress.update(
                                        model.modelName() + " " + n + " VMs", rep, common.repeat,
                                        String.format(Locale.ROOT, "%.3f Mpps", cur)));
                        p99[r] = x.latency().getValueAtPercentile(99) / 1e3;
                        mpps[r] = x.mpps();
                    }
                    double p = CompareCommand.median(p99);
                    var step = new LinkedHashMap<String, Object>();
                    step.put("model", models.get(m).modelName());
                    step.put("vms", (long) vms);
                    step.put("latencyP99Us", p);
                    step.put("mpps", CompareCommand.median(mpps));
                    step.put("withinSlo", p <= sloMicros);
                    journal.result(run, step);
                    steps.add(step);
                    if (p <= sloMicros) {
                        held[m] = vms;
                        heldP99[m] = p;
                    } else {
                        broke[m] = vms;
                        brokeP99[m] = p;
                    }
                }
            }
            var summary = new ArrayList<Map<String, Object>>();
            for (int m = 0; m < models.size(); m++) {
                var s = new LinkedHashMap<String, Object>();
                s.put("model", models.get(m).modelName());
                s.put("vmsHeldAtSlo", (long) held[m]);
                s.put("p99AtHeldUs", heldP99[m]);
                s.put("firstVmsOverSlo", broke[m] == 0 ? null : (long) broke[m]);
                s.put("p99OverSloUs", brokeP99[m]);
                summary.add(s);
            }
            var end = new LinkedHashMap<String, Object>(machineStart);
            end.putAll(machine.endRecord());
            end.put("summary", summary);
            journal.endRun(run, end);
            progress.clear();
            print(run, rate, size, summary, steps);
        }
        return 0;
    }

    private void print(String run, long rate, int size, List<Map<String, Object>> summary,
                       List<Map<String, Object>> steps) {
        var out = spec.commandLine().getOut();
        if (common.json) {
            var m = new LinkedHashMap<String, Object>();
            m.put("run", run);
            m.put("summary", summary);
            m.put("steps", steps);
            out.print(Json.pretty(m));
            out.flush();
            return;
        }
        out.printf(Locale.ROOT, "sweep: p99 SLO %.0f us, %d B frames, %d frames/s per flow, up to %d VMs; run %s%n",
                sloMicros, size, rate, maxVms, run);
        var t = new Table(List.of("model", "VMs held at SLO", "p99 us there", "first VMs over", "p99 us there"));
        for (var s : summary) {
            t.row(List.of((String) s.get("model"), String.valueOf(s.get("vmsHeldAtSlo")), f1(s.get("p99AtHeldUs")),
                    s.get("firstVmsOverSlo") == null ? "-" : String.valueOf(s.get("firstVmsOverSlo")),
                    f1(s.get("p99OverSloUs"))));
        }
        out.print(t.render());
        out.flush();
    }

    private static String f1(Object v) {
        return v instanceof Double d && Double.isFinite(d) ? String.format(Locale.ROOT, "%.1f", d) : "-";
    }
}
