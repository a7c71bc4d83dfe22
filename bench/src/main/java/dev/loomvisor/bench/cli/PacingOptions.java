package dev.loomvisor.bench.cli;

import dev.loomvisor.core.timer.HrtimerBase;
import java.time.Duration;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** How open-loop senders are paced: the one pacing clock's timer slack, shared by the models and the floor. */
public final class PacingOptions {

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

    /** The slack in nanoseconds, checked: one line naming the option if it is out of range. */
    long slackNanos() {
        if (timerSlack.isNegative() || timerSlack.compareTo(MAX_SLACK) > 0) {
            throw new CommandLine.ParameterException(mixee.commandLine(),
                    "--timer-slack: " + timerSlack.toNanos() / 1000 + "us is not allowed; give 0 to 100ms, e.g. 50us");
        }
        return timerSlack.toNanos();
    }
}
