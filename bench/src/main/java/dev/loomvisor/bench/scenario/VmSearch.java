package dev.loomvisor.bench.scenario;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.IntFunction;
import java.util.function.Predicate;

/**
 * The sweep's search for the most VMs a model holds: doubling from 2 (2, 4, 8, ...; the maximum itself if
 * doubling would pass it), then bisecting between the most VMs that held and the fewest above them that broke,
 * down to one pair.
 *
 * <p>What ends the doubling: a limit, memory or a failure at once; a latency break only when the step had no
 * headroom left (the machine's CPUs used up, or the senders falling behind their rate: more VMs can only do
 * worse). A latency break with headroom does not end it. At sparse rates the p99 of a few VMs is set by cold
 * wake-ups (each frame finds parked carriers and a halted host CPU), which a larger fleet keeps warm: measured,
 * a 1 ms p99 broken at 2 to 256 VMs and held at 1,024 at 10 frames/s per VM, and held at 2 VMs but broken at
 * 4 in the next run. A pure function of the measurements: at most about 2 log2(max) steps, so a sweep to
 * 20,000 VMs takes some 29 measurements, not 10,000.
 */
public final class VmSearch {

    /**
     * The steps in the order they were measured, the most VMs that held (0 if none) and the fewest above it
     * that broke (null if the maximum held).
     */
    public record Result(List<SweepStep> steps, int held, SweepStep heldStep, SweepStep firstBroken) {}

    private VmSearch() {}

    /** The search where every latency break ends the doubling (no headroom is known). */
    public static Result search(int maxVms, IntFunction<SweepStep> measure) {
        return search(maxVms, measure, s -> false);
    }

    /**
     * @param maxVms an even count, at least 2
     * @param measure runs one step; called with even counts in [2, maxVms], never twice with the same count
     * @param headroom whether a step that broke on latency had CPU and rate to spare; asked only for those
     */
    public static Result search(int maxVms, IntFunction<SweepStep> measure, Predicate<SweepStep> headroom) {
        if (maxVms < 2 || maxVms % 2 != 0) {
            throw new IllegalArgumentException("maxVms must be even and at least 2: " + maxVms);
        }
        Objects.requireNonNull(measure, "measure");
        Objects.requireNonNull(headroom, "headroom");
        List<SweepStep> steps = new ArrayList<>();
        SweepStep heldStep = null;
        // The fewest VMs above the most held that broke.
        SweepStep broken = null;
        int held = 0;
        for (int n = 2; ; ) {
            SweepStep s = step(measure, n, steps);
            if (s.held()) {
                held = n;
                heldStep = s;
                broken = null;
            } else {
                if (broken == null) {
                    broken = s;
                }
                if (s.outcome() != SweepStep.Outcome.LATENCY || !headroom.test(s)) {
                    break;
                }
            }
            if (n == maxVms) {
                break;
            }
            n = n > maxVms / 2 ? maxVms : n * 2;
        }
        // Bisect (held, broken) over even counts: every step halves the gap.
        while (broken != null && broken.vms() - held > 2) {
            int mid = ((held + broken.vms()) / 2) & ~1;
            SweepStep s = step(measure, mid, steps);
            if (s.held()) {
                held = mid;
                heldStep = s;
            } else {
                broken = s;
            }
        }
        return new Result(List.copyOf(steps), held, heldStep, broken);
    }

    private static SweepStep step(IntFunction<SweepStep> measure, int n, List<SweepStep> steps) {
        SweepStep s = Objects.requireNonNull(measure.apply(n), "a step's result");
        if (s.vms() != n) {
            throw new IllegalStateException("asked for " + n + " VMs, the step reports " + s.vms());
        }
        steps.add(s);
        return s;
    }
}
