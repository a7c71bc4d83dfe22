package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.scenario.JitWarmup;
import dev.loomvisor.core.timer.HrtimerBase;
import java.time.Duration;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * Open-loop measurements: the one pacing clock's timer slack (shared by the models and the floor) and the JIT
 * warm-up that runs before the first measurement of each model, so no model's figures hold its code's
 * compilation (at 10 frames/s per flow a warm-up of a few hundred milliseconds carries a handful of frames).
 */
public final class OpenLoopOptions {

    /** More slack than this would be read as a misunderstanding: the SLOs measured are around a millisecond. */
    static final Duration MAX_SLACK = Duration.ofMillis(100);

    @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
    CommandLine.Model.CommandSpec mixee;

    @Option(names = "--timer-slack", paramLabel = "TIME", converter = Durations.class,
            defaultValue = HrtimerBase.DEFAULT_SLACK_NANOS / 1000 + "us",
            description = "Open loop: how late the pacing clock may wake a sender so that send times close together "
                    + "cost one wake-up (Linux's timer slack; latency still counts from each frame's intended time); "
                    + "0 to 100ms, 0 wakes for every send time (default: ${DEFAULT-VALUE}).")
    Duration timerSlack;

    @Option(names = "--jit-warmup", paramLabel = "TIME", converter = Durations.class, defaultValue = "500ms",
            description = "Open loop: before a model's first measurement (and the floor's), 2 VMs exchange frames at "
                    + JitWarmup.RATE_PER_FLOW_TEXT + " frames/s per flow for this long, unmeasured, so the JIT has "
                    + "compiled the path; 0 to skip (default: ${DEFAULT-VALUE}).")
    Duration jitWarmup;

    /** The JIT warm-up, checked. */
    Duration jitWarmup() {
        if (jitWarmup.isNegative() || jitWarmup.compareTo(Duration.ofMinutes(1)) > 0) {
            throw new CommandLine.ParameterException(mixee.commandLine(),
                    "--jit-warmup: " + jitWarmup.toMillis() + "ms is not allowed; give 0 to 1m, e.g. 500ms");
        }
        return jitWarmup;
    }

    /** The slack in nanoseconds, checked: one line naming the option if it is out of range. */
    long slackNanos() {
        if (timerSlack.isNegative() || timerSlack.compareTo(MAX_SLACK) > 0) {
            throw new CommandLine.ParameterException(mixee.commandLine(),
                    "--timer-slack: " + timerSlack.toNanos() / 1000 + "us is not allowed; give 0 to 100ms, e.g. 50us");
        }
        return timerSlack.toNanos();
    }
}
