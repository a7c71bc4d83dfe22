package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.journal.Journal;
import dev.loomvisor.bench.machine.MachineState;
import dev.loomvisor.bench.output.Json;
import dev.loomvisor.bench.output.Table;
import dev.loomvisor.bench.scenario.LimitsScenario;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.net.VmmBackend.VringWorkers;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code limits}: whether an owner's RLIMIT_NPROC and pids.max hold for the threads that serve its VM (vCPUs
 * and vhost workers together), per model.
 */
@Command(name = "limits", mixinStandardHelpOptions = true,
        description = "An unprivileged VMM with RLIMIT_NPROC and a pids cgroup starts its vCPU threads, then asks for "
                + "vhost-net devices under each worker model: vCPUs and user workers share the limit and the workers "
                + "stop at it (SET_OWNER fails, ENOMEM); kthreads exceed it.")
public final class LimitsCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    CommonOptions common;

    @Option(names = "--nproc", paramLabel = "N", defaultValue = "8",
            description = "The owner's RLIMIT_NPROC; its own main task counts (default: ${DEFAULT-VALUE}).")
    long nproc;

    @Option(names = "--pids-max", paramLabel = "N",
            description = "pids.max of the owner's cgroup (default: none).")
    Long pidsMax;

    @Option(names = "--vcpus", paramLabel = "N", defaultValue = "2",
            description = "vCPU threads the VMM starts before its devices (default: ${DEFAULT-VALUE}).")
    int vcpus;

    @Option(names = "--devices", paramLabel = "N", defaultValue = "16",
            description = "Devices the owner asks for, each with --queues queue pairs: a vhost-net per pair "
                    + "(default: ${DEFAULT-VALUE}).")
    int devices;

    @Override
    public Integer call() throws Exception {
        common.validate();
        if (nproc < 1 || nproc > 100_000) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--nproc: " + nproc + " is not allowed; give 1 to 100000");
        }
        if (pidsMax != null && (pidsMax < 1 || pidsMax > 100_000)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--pids-max: " + pidsMax + " is not allowed; give 1 to 100000");
        }
        if (vcpus < 0 || vcpus > 1024) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--vcpus: " + vcpus + " is not allowed; give 0 to 1024");
        }
        if (devices < 1 || devices > 4096) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--devices: " + devices + " is not allowed; give 1 to 4096");
        }
        if ((long) devices * common.queues > 4096) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--queues: " + devices + " devices x "
                    + common.queues + " queue pairs is more than 4096 vhost-net devices");
        }
        VringWorkers layout = common.vringWorkerLayout();
        var config = new LinkedHashMap<String, Object>();
        config.put("models", new ArrayList<Object>(common.models));
        config.put("nproc", nproc);
        config.put("pidsMax", pidsMax);
        config.put("vcpus", (long) vcpus);
        config.put("devices", (long) devices);
        config.put("queues", (long) common.queues);
        config.put("vringWorkers", common.vringWorkers);
        var machine = MachineState.begin();
        List<Map<String, Object>> results = new ArrayList<>();
        try (var journal = Journal.open(common.journal)) {
            String run = journal.startRun("limits", config, machine.startRecord());
            for (WorkerModel m : common.workerModels()) {
                var r = LimitsScenario.run(m, nproc, pidsMax == null ? Long.MAX_VALUE : pidsMax, vcpus, devices,
                        common.queues, layout);
                var map = r.toMap();
                journal.result(run, map);
                results.add(map);
            }
            journal.endRun(run, machine.endRecord());
            print(run, results);
        }
        return 0;
    }

    private void print(String run, List<Map<String, Object>> results) {
        var out = spec.commandLine().getOut();
        if (common.json) {
            var m = new LinkedHashMap<String, Object>();
            m.put("run", run);
            m.put("results", results);
            out.print(Json.pretty(m));
        } else {
            out.printf("limits: uid %d, RLIMIT_NPROC %d, pids.max %s, %d vCPUs, %d devices asked, %d queue pair%s "
                            + "each, workers per %s (run %s)%n",
                    1000, nproc, pidsMax == null ? "max" : pidsMax, vcpus, devices, common.queues,
                    common.queues == 1 ? "" : "s", common.vringWorkers, run);
            var t = new Table(List.of("model", "vcpus", "created", "errors", "vhost-nets", "NEW_WORKER errors",
                    "device workers", "owner tasks", "worker threads", "nproc: main+vcpus+workers", "pids.current",
                    "over limit"));
            for (var r : results) {
                var counted = (Map<?, ?>) r.get("countedAgainstNproc");
                t.row(List.of(String.valueOf(r.get("model")), r.get("vcpuTasks") + "/" + r.get("vcpusAsked")
                                + (((Map<?, ?>) r.get("vcpuErrors")).isEmpty() ? "" : " " + errors(r.get("vcpuErrors"))),
                        String.valueOf(r.get("devicesCreated")), errors(r.get("errors")),
                        String.valueOf(r.get("vhostNets")), errors(r.get("newWorkerErrors")),
                        String.valueOf(r.get("deviceWorkers")),
                        String.valueOf(r.get("ownerTasks")), String.valueOf(r.get("workerThreads")),
                        counted.get("mainTask") + "+" + counted.get("vcpuTasks") + "+" + counted.get("workers") + "="
                                + counted.get("total"),
                        String.valueOf(r.get("cgroupPidsCurrent")), String.valueOf(r.get("workersOverLimit"))));
            }
            out.print(t.render());
            out.println("nproc: the owner's tasks counted against its RLIMIT_NPROC (vCPUs always; workers only as "
                    + "user workers).");
            out.println("device workers: vhost workers of the owner's devices (a pool thread may run several); "
                    + "worker threads: distinct threads running them.");
            out.println("over limit: threads serving the owner (its own tasks, vCPUs included, plus workers cloned "
                    + "elsewhere) beyond min(RLIMIT_NPROC, pids.max).");
        }
        out.flush();
    }

    private static String errors(Object e) {
        var m = (Map<?, ?>) e;
        if (m.isEmpty()) {
            return "-";
        }
        var sb = new StringBuilder();
        m.forEach((k, v) -> sb.append(sb.isEmpty() ? "" : " ").append(k).append('x').append(v));
        return sb.toString();
    }
}
