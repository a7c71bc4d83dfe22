package dev.loomvisor.bench.scenario;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.IntFunction;
import java.util.function.IntPredicate;

/**
 * The sweep's search for the most VMs a model holds: doubling from 2 (2, 4, 8, ...; the maximum itself
 * if doubling would pass it) until a step breaks, then bisecting between the last count that held and the
 * first that broke above it, down to one pair. Before any step held, only {@link #EARLY_LATENCY_BREAKS}
 * latency breaks in a row stop the doubling, and a break at a count where the floor (a bare hand-off at the same
 * count and pacing) breaks the SLO too does not count towards them: there the machine's own wake-up latency
 * broke it, not the model (a limit, memory or a failure stops it at once). A pure function of the measurements: about 2 log2(max) steps, so a
 * sweep to 20,000 VMs takes some 27 measurements, not 10,000.
 */
public final class VmSearch {

    /**
     * The steps in the order they were measured, the most VMs that held (0 if none) and the fewest above it
     * that broke (null if the maximum held).
     */
    public record Result(List<SweepStep> steps, int held, SweepStep heldStep, SweepStep firstBroken) {}

    /**
     * Latency breaks in a row, before any step held, that stop the doubling; after a step held, the first
     * break stops it.
     */
    public static final int EARLY_LATENCY_BREAKS = 10;

    private VmSearch() {}

    /**
     * @param maxVms an even count, at least 2
     * @param measure runs one step; called with even counts in [2, maxVms], never twice with the same count
     */
    public static Result search(int maxVms, IntFunction<SweepStep> measure) {
        return search(maxVms, measure, n -> false);
    }

    /**
     * @param maxVms an even count, at least 2
     * @param measure runs one step; called with even counts in [2, maxVms], never twice with the same count
     * @param floorBreaks whether the floor breaks the SLO at a count; asked only for a latency break before any
     *     step held
     */
    public static Result search(int maxVms, IntFunction<SweepStep> measure, IntPredicate floorBreaks) {
        if (maxVms < 2 || maxVms % 2 != 0) {
            throw new IllegalArgumentException("maxVms must be even and at least 2: " + maxVms);
        }
        Objects.requireNonNull(measure, "measure");
        List<SweepStep> steps = new ArrayList<>();
        SweepStep heldStep = null;
        SweepStep broken = null;
        int held = 0;
        int earlyBreaks = 0;
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
                // Until a step holds, a latency break need not be the model's limit: each of a few VMs' sparse
                // frames wakes a cold path (parked carriers, a halted host CPU), which a busier fleet keeps warm.
                // At rates of a few frames per second per VM that warm-up can take a thousand VMs (measured: a
                // 1 ms p99 broken at 2 to 256 VMs, held at 1,024): where the floor breaks as well, the doubling
                // goes on without counting the break.
                boolean early = held == 0 && s.outcome() == SweepStep.Outcome.LATENCY
                        && (floorBreaks.test(n) || ++earlyBreaks < EARLY_LATENCY_BREAKS);
                if (!early) {
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
