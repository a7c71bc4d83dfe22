package dev.loomvisor.bench.scenario;

import java.time.Duration;

/**
 * How long one sweep step warms up and measures, so that its p99 rests on enough samples. A p99 of 20 samples
 * is their maximum; at 10 frames/s per flow, 2 VMs give 20 samples a second. So the measured window grows
 * until it is expected to hold {@code minSamples} latencies (all flows together), up to {@code maxDuration};
 * and the warm-up lasts at least {@code minWarmupFrames} send intervals of each flow, so every VM's first
 * frames (first touches of its buffers, the switch learning its MAC) fall before the window. A pure function
 * of its inputs; what it chose is reported with the step.
 *
 * @param warmup the unmeasured warm-up of the step
 * @param duration the measured window
 * @param expectedSamples latencies the window should hold at the offered rate
 * @param capped true if {@code maxDuration} stopped the window short of the samples asked for
 */
public record StepWindow(Duration warmup, Duration duration, long expectedSamples, boolean capped) {

    /**
     * @param vms VMs of the step, each sending one flow at {@code ratePerFlow} frames per second (above 0)
     * @param warmup the warm-up asked for (the least it lasts)
     * @param minDuration the window asked for (the least it lasts)
     * @param maxDuration the longest window and warm-up; below {@code minDuration} it is raised to it
     */
    public static StepWindow plan(int vms, double ratePerFlow, Duration warmup, Duration minDuration,
                                  Duration maxDuration, long minSamples, int minWarmupFrames) {
        if (vms < 1 || !(ratePerFlow > 0) || minSamples < 0 || minWarmupFrames < 0) {
            throw new IllegalArgumentException("vms " + vms + ", rate " + ratePerFlow + ", samples " + minSamples
                    + ", warm-up frames " + minWarmupFrames);
        }
        long max = Math.max(minDuration.toNanos(), maxDuration.toNanos());
        double totalRate = vms * ratePerFlow;
        long forSamples = (long) Math.ceil(minSamples / totalRate * 1e9);
        long window = Math.min(max, Math.max(minDuration.toNanos(), forSamples));
        long expected = (long) Math.floor(totalRate * window / 1e9);
        long forWarmup = (long) Math.ceil(minWarmupFrames / ratePerFlow * 1e9);
        long warm = Math.min(Math.max(max, warmup.toNanos()), Math.max(warmup.toNanos(), forWarmup));
        return new StepWindow(Duration.ofNanos(warm), Duration.ofNanos(window), expected, expected < minSamples);
    }
}
