package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.scenario.DataPathRun;
import picocli.CommandLine.Command;

/**
 * {@code pingpong}: in each VM pair one guest sends at {@code --rate} (default 10k frames/s, open loop) and
 * the other echoes every frame back; the latency is the round trip, measured from the intended send time.
 */
@Command(name = "pingpong", mixinStandardHelpOptions = true,
        description = "Round trip through an echo guest: in each VM pair one guest sends at --rate (default 10k, "
                + "open loop) and the other returns every frame; latency from each frame's intended send time.")
public final class PingpongCommand extends CompareCommand {

    @Override
    protected void checkMode() {
        if (common.rate == null) {
            common.rate = LatencyCommand.DEFAULT_RATE;
        }
    }

    @Override
    protected DataPathRun.Traffic traffic() {
        return DataPathRun.Traffic.PING_PONG;
    }
}
