package dev.loomvisor.bench.cli;

import picocli.CommandLine.Command;

/** {@code throughput}: the closed-loop data-path measurement of {@code compare}, under its own name in the journal. */
@Command(name = "throughput", mixinStandardHelpOptions = true,
        description = "Closed loop: every guest sends to its pair as fast as the path takes frames; Mpps, Gbit/s and "
                + "latency under load per worker model, interleaved and repeated, with ratios.")
public final class ThroughputCommand extends CompareCommand {
}
