package dev.loomvisor.bench.scenario;

/**
 * What one step of a sweep measured at {@code vms} VMs, and whether it held.
 *
 * @param p99Us the p99 latency (median over repeats), NaN if the step did not run to the end
 * @param cpuPerSecond CPU seconds the JVM used per second of the measured window
 * @param platformThreads JVM platform threads during the step
 * @param rssPerVmBytes resident memory beyond the JVM's baseline, per VM
 * @param framesPerSecond frames per second received, all flows together
 * @param detail why a broken step broke, in a few words (empty if held)
 * @param samples latencies recorded over all repeats (the p99's sample count)
 * @param windowSeconds the measured window of each repeat ({@link StepWindow})
 */
public record SweepStep(int vms, Outcome outcome, double p99Us, double cpuPerSecond, long platformThreads,
                        long rssPerVmBytes, double framesPerSecond, String detail, long samples, double windowSeconds) {

    public SweepStep(int vms, Outcome outcome, double p99Us, double cpuPerSecond, long platformThreads,
                     long rssPerVmBytes, double framesPerSecond, String detail) {
        this(vms, outcome, p99Us, cpuPerSecond, platformThreads, rssPerVmBytes, framesPerSecond, detail, 0, Double.NaN);
    }

    /** The same step with another outcome and reason. */
    public SweepStep withOutcome(Outcome o, String why) {
        return new SweepStep(vms, o, p99Us, cpuPerSecond, platformThreads, rssPerVmBytes, framesPerSecond, why,
                samples, windowSeconds);
    }

    /** How a step ended. */
    public enum Outcome {
        /** Within the SLO. */
        HELD,
        /** Ran, but the p99 broke the SLO. */
        LATENCY,
        /** A limit refused the setup (an errno: EAGAIN from RLIMIT_NPROC, ENOMEM from a pool, a host limit). */
        LIMIT,
        /** The JVM or the host ran out of memory. */
        MEMORY,
        /** Anything else that stopped the step (a guest failed). */
        FAILED;

        /** The word a table shows. */
        public String word() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public boolean held() {
        return outcome == Outcome.HELD;
    }

    /** A step that did not run to a measurement. */
    public static SweepStep broken(int vms, Outcome outcome, String detail) {
        return new SweepStep(vms, outcome, Double.NaN, Double.NaN, 0, 0, Double.NaN, detail);
    }
}
