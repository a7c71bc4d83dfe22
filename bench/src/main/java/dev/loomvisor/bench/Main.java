package dev.loomvisor.bench;

import dev.loomvisor.bench.cli.PcapOptions;
import dev.loomvisor.bench.cli.VersionProvider;
import dev.loomvisor.bench.jfr.FlightRecording;
import dev.loomvisor.vhost.backend.PcapSwitchCapture;
import dev.loomvisor.vhost.backend.PcapWriter;
import java.nio.file.Path;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code loomvisor} command. Owns all output of the tool: nothing in core, vmm or vhost prints.
 */
@Command(name = "loomvisor",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        subcommands = {dev.loomvisor.bench.cli.CompareCommand.class, dev.loomvisor.bench.cli.ThroughputCommand.class,
                dev.loomvisor.bench.cli.LatencyCommand.class, dev.loomvisor.bench.cli.PingpongCommand.class,
                dev.loomvisor.bench.cli.SweepCommand.class,
                dev.loomvisor.bench.cli.LimitsCommand.class, dev.loomvisor.bench.cli.ReportCommand.class,
                dev.loomvisor.bench.cli.VhostUserCommand.class},
        description = {
                "Measures what a vhost threading model costs: virtio-net throughput and latency, "
                        + "VMs held under a latency target, and whether a process's limits hold for its "
                        + "workers, with Linux 6.4 user workers (vhost_task) and pre-6.4 kthreads side by side."
        })
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.Option(names = "--jfr", paramLabel = "FILE", scope = CommandLine.ScopeType.INHERIT,
            description = "Record a JDK Flight Recorder file of the run: the JDK's events and Loomvisor's (workers, "
                    + "owners, ring errors, vhost-user sessions, switch drops); open it in JDK Mission Control.")
    Path jfr;

    /** Top-level options only (no command): the usage and the version. */
    @Override
    public void run() {
        var out = spec.commandLine().getOut();
        spec.commandLine().usage(out);
        out.println();
        out.println(VersionProvider.versionLine());
        out.flush();
    }

    public static CommandLine commandLine() {
        var cmd = new CommandLine(new Main());
        cmd.setParameterExceptionHandler(Main::badArgument);
        cmd.setExecutionStrategy(Main::recorded);
        return cmd;
    }

    /** Runs the command, inside a flight recording when {@code --jfr} was given. */
    private static int recorded(CommandLine.ParseResult parsed) {
        Main main = parsed.commandSpec().commandLine().getCommand();
        CommandLine last = parsed.asCommandLineList().getLast();
        if (main.jfr == null) {
            return captured(last, parsed);
        }
        String problem = FlightRecording.problem(main.jfr);
        if (problem != null) {
            throw new CommandLine.ParameterException(last, "--jfr: " + problem);
        }
        try (var rec = FlightRecording.start(main.jfr)) {
            return captured(last, parsed);
        } catch (java.io.IOException e) {
            throw new CommandLine.ExecutionException(last, "--jfr: cannot record: " + e.getMessage(), e);
        }
    }

    /** Runs the command, with the in-process switch captured when a measuring command got {@code --pcap}. */
    private static int captured(CommandLine last, CommandLine.ParseResult parsed) {
        PcapOptions.Switch pcap = switchPcap(last.getCommandSpec());
        if (pcap == null || pcap.file() == null) {
            return new CommandLine.RunLast().execute(parsed);
        }
        try (PcapWriter w = pcap.open()) {
            PcapSwitchCapture.set(w);
            try {
                return new CommandLine.RunLast().execute(parsed);
            } finally {
                PcapSwitchCapture.set(null);
            }
        } catch (java.io.IOException e) {
            throw new CommandLine.ExecutionException(last, "--pcap: cannot write " + pcap.file() + ": " + e.getMessage(), e);
        }
    }

    private static PcapOptions.Switch switchPcap(CommandLine.Model.CommandSpec spec) {
        for (var m : spec.mixins().values()) {
            if (m.userObject() instanceof PcapOptions.Switch p) {
                return p;
            }
            PcapOptions.Switch nested = switchPcap(m);
            if (nested != null) {
                return nested;
            }
        }
        return null;
    }

    /** A wrong argument gets one line: what is wrong and where to see what is allowed; exit status 2. */
    private static int badArgument(CommandLine.ParameterException e, String[] args) {
        var cmd = e.getCommandLine();
        cmd.getErr().println(cmd.getCommandName() + ": " + e.getMessage()
                + " (see '" + cmd.getCommandSpec().qualifiedName() + " --help')");
        cmd.getErr().flush();
        return cmd.getCommandSpec().exitCodeOnInvalidInput();
    }

    /** With no arguments at all the tool runs its main job, {@code compare} on the built-in scenario. */
    static String[] effectiveArgs(String[] args) {
        return args.length == 0 ? new String[] {"compare"} : args;
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(effectiveArgs(args)));
    }
}
