package dev.loomvisor.bench.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code latency}: open loop at {@code --rate} frames per second per flow. Each frame carries its intended
 * send time and its latency is measured from it, so a stall anywhere on the path, the sending vCPU
 * included, counts in every frame it delayed (coordinated omission corrected, as wrk2 does).
 */
@Command(name = "latency", mixinStandardHelpOptions = true,
        description = "Open loop at --rate frames per second per flow (default 10k), latency measured from each "
                + "frame's intended send time (coordinated-omission corrected), per worker model.")
public final class LatencyCommand extends CompareCommand {

    static final double DEFAULT_RATE = 10_000;

    @Override
    protected void checkMode() {
        if (common.rate == null) {
            common.rate = DEFAULT_RATE;
        }
        if (common.rate > 10_000_000L) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--rate: " + Rates.format(common.rate) + " is above what an open loop can pace here; give at most 10m");
        }
    }
}
