package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.IntFunction;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

class VmSearchTest {

    /** A model that holds up to {@code capacity} VMs and then breaks for {@code reason}. */
    private static IntFunction<SweepStep> capacity(int capacity, SweepStep.Outcome reason) {
        return n -> n <= capacity
                ? new SweepStep(n, SweepStep.Outcome.HELD, 100, 0.1, 10, 4096, n * 10.0, "")
                : SweepStep.broken(n, reason, "over " + capacity);
    }

    private static List<Integer> counts(VmSearch.Result r) {
        return r.steps().stream().map(SweepStep::vms).toList();
    }

    @Test
    void doublesThenBisectsBetweenTheLastHeldAndTheFirstBroken() {
        var r = VmSearch.search(20_000, capacity(10_500, SweepStep.Outcome.LATENCY));
        assertEquals(List.of(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
                12288, 10240, 11264, 10752, 10496, 10624, 10560, 10528, 10512, 10504, 10500, 10502), counts(r));
        assertEquals(10_500, r.held());
        assertEquals(10_500, r.heldStep().vms());
        assertEquals(10_502, r.firstBroken().vms());
        assertEquals(SweepStep.Outcome.LATENCY, r.firstBroken().outcome());
    }

    @Test
    void theMaximumIsTriedWhenDoublingWouldPassIt() {
        var r = VmSearch.search(20_000, capacity(1_000_000, SweepStep.Outcome.LATENCY));
        assertEquals(20_000, r.held());
        assertNull(r.firstBroken());
        assertEquals(20_000, counts(r).getLast());
        assertEquals(16_384, counts(r).get(counts(r).size() - 2));
    }

    @Test
    void twoVmsBrokenHoldsNothingAfterOneStep() {
        var r = VmSearch.search(64, capacity(0, SweepStep.Outcome.LIMIT));
        assertEquals(List.of(2), counts(r));
        assertEquals(0, r.held());
        assertNull(r.heldStep());
        assertEquals(SweepStep.Outcome.LIMIT, r.firstBroken().outcome());
        assertEquals("over 0", r.firstBroken().detail());
    }

    /** A step that broke on latency, using {@code cpu} CPU seconds per second. */
    private static SweepStep latencyBreak(int n, double cpu) {
        return new SweepStep(n, SweepStep.Outcome.LATENCY, 2000, cpu, 10, 4096, n * 10.0, "p99 over");
    }

    private static SweepStep heldStep(int n) {
        return new SweepStep(n, SweepStep.Outcome.HELD, 100, n / 1000.0, 10, 4096, n * 10.0, "");
    }

    @Test
    void withoutHeadroomTheFirstLatencyBreakEndsTheDoubling() {
        var r = VmSearch.search(20_000, n -> n == 2 ? latencyBreak(n, 0.01) : heldStep(n));
        assertEquals(List.of(2), counts(r), "2 VMs broke and no headroom is known");
        assertEquals(0, r.held());
        assertEquals(2, r.firstBroken().vms());
    }

    @Test
    void latencyBreaksWithHeadroomDoNotEndTheDoubling() {
        // Sparse frames: up to 512 VMs break on cold wake-ups with CPU to spare; 1024 to 3000 hold; above, the
        // CPU runs out (1 CPU s/s per 1000 VMs, no headroom from 1500 on).
        IntFunction<SweepStep> m = n -> n >= 1024 && n <= 3000 ? heldStep(n) : latencyBreak(n, n / 1000.0);
        var asked = new java.util.ArrayList<Integer>();
        var r = VmSearch.search(20_000, m, s -> {
            asked.add(s.vms());
            return s.cpuPerSecond() < 1.5;
        });
        assertEquals(3000, r.held());
        assertEquals(3002, r.firstBroken().vms());
        assertEquals(List.of(2, 4, 8, 16, 32, 64, 128, 256, 512, 4096), asked,
                "asked only for latency breaks");
        assertEquals(List.of(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 3072, 2560, 2816, 2944, 3008,
                2976, 2992, 3000, 3004, 3002), counts(r));
    }

    @Test
    void aHeldCountBelowABreakWithHeadroomIsNotTheAnswerIfMoreHoldAbove() {
        // Held at 2 by chance, broke at 4 to 64 with headroom, held from 128 to 1000, saturated above.
        IntFunction<SweepStep> m = n -> n == 2 || (n >= 128 && n <= 1000) ? heldStep(n) : latencyBreak(n, n / 1000.0);
        var r = VmSearch.search(20_000, m, s -> s.cpuPerSecond() < 1.5);
        assertEquals(1000, r.held());
        assertEquals(1002, r.firstBroken().vms());
    }

    @Test
    void aLimitEndsTheDoublingEvenWithHeadroom() {
        var r = VmSearch.search(20_000, capacity(40, SweepStep.Outcome.LIMIT), s -> true);
        assertEquals(List.of(2, 4, 8, 16, 32, 64, 48, 40, 44, 42), counts(r));
        assertEquals(40, r.held());
        assertEquals(SweepStep.Outcome.LIMIT, r.firstBroken().outcome());
    }

    @Test
    void afterAHeldStepTheFirstLatencyBreakEndsTheDoubling() {
        var r = VmSearch.search(20_000, capacity(40, SweepStep.Outcome.LATENCY));
        assertEquals(List.of(2, 4, 8, 16, 32, 64, 48, 40, 44, 42), counts(r));
        assertEquals(40, r.held());
    }

    @Test
    void aStepReportingAnotherCountIsRefused() {
        assertThrows(IllegalStateException.class,
                () -> VmSearch.search(8, n -> new SweepStep(n + 2, SweepStep.Outcome.HELD, 1, 0, 0, 0, 0, "")));
        assertThrows(IllegalArgumentException.class, () -> VmSearch.search(7, capacity(8, SweepStep.Outcome.LATENCY)));
    }

    @Property(tries = 500)
    void findsTheCapacityToOnePairInFewSteps(@ForAll @IntRange(min = 1, max = 12_000) int halfMax,
                                              @ForAll @IntRange(min = 0, max = 30_000) int capacity) {
        int max = halfMax * 2;
        var r = VmSearch.search(max, capacity(capacity, SweepStep.Outcome.MEMORY));
        int expected = Math.min(max, capacity & ~1);
        assertEquals(expected, r.held());
        if (expected == max) {
            assertNull(r.firstBroken());
        } else {
            assertEquals(expected + 2, r.firstBroken().vms());
        }
        Set<Integer> seen = new HashSet<>();
        for (int n : counts(r)) {
            assertTrue(n >= 2 && n <= max && n % 2 == 0, "count " + n);
            assertTrue(seen.add(n), n + " measured twice");
        }
        int log2 = 32 - Integer.numberOfLeadingZeros(max);
        assertTrue(r.steps().size() <= 2 * log2 + 1, r.steps().size() + " steps for max " + max);
    }
}
