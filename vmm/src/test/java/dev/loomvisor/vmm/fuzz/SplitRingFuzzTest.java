package dev.loomvisor.vmm.fuzz;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.vmm.virtio.RingError;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Fuzzing the device side of the split ring ({@link SplitRingTarget}: its oracle is in its javadoc).
 *
 * <ul>
 *   <li>{@link #splitRing(byte[])} is the Jazzer target. Under plain Surefire it runs in Jazzer's regression
 *       mode: every file of the corpus in {@code SplitRingFuzzTestInputs/splitRing} (the unit tests' rings,
 *       see {@link Corpus}). With {@code JAZZER_FUZZ=1} it fuzzes coverage-guided.</li>
 *   <li>{@link #fixedSeed()} and {@link #randomSeed()} are the CI-sized runs: a mutational fuzzer over the
 *       same corpus with a fixed seed, and again with a fresh one (printed on failure, replayed with
 *       {@code -Dloomvisor.seed=N}); {@code -Dloomvisor.soak=full} runs the soak size.</li>
 * </ul>
 */
class SplitRingFuzzTest {

    static final long FIXED_SEED = 0x5eed_f022_2026L;
    static final long CI_INPUTS = 100_000;
    static final long SOAK_INPUTS = 2_500_000;

    private static final SplitRingTarget JAZZER = new SplitRingTarget();
    private static long totalInputs;
    private static long totalDeclared;
    private static long totalPops;
    private static long slowestNanos;
    private static final long[] BY_ERROR = new long[RingError.values().length];

    @FuzzTest(maxExecutions = 200_000)
    void splitRing(byte[] input) {
        JAZZER.run(input);
    }

    @Test
    void fixedSeed() {
        drive(FIXED_SEED);
    }

    @Test
    void randomSeed() {
        drive(Soak.seed());
    }

    private static void drive(long seed) {
        long inputs = Soak.size(CI_INPUTS, SOAK_INPUTS);
        List<byte[]> corpus = Corpus.seeds();
        Mutator mutator = new Mutator(new SplittableRandom(seed), corpus);
        try (SplitRingTarget target = new SplitRingTarget()) {
            for (long i = 0; i < inputs; i++) {
                byte[] input = mutator.next();
                try {
                    target.run(input);
                } catch (AssertionError e) {
                    fail("fault on input " + i + " of seed " + seed + " (replay: -Dloomvisor.seed=" + seed + "): "
                            + e.getMessage() + "\ninput: " + HexFormat.of().formatHex(input), e);
                }
            }
            // The generator must reach both outcomes and most rules, or it tests nothing.
            long[] errors = target.errors();
            int rules = 0;
            StringBuilder missing = new StringBuilder();
            for (int i = 1; i < errors.length; i++) {
                rules += errors[i] > 0 ? 1 : 0;
                if (errors[i] == 0 && !RingError.values()[i].name().matches("QUEUE_SIZE.*|.*MISALIGNED|RING_OUTSIDE_MEMORY")) {
                    missing.append(' ').append(RingError.values()[i]);
                }
            }
            assertTrue(target.pops() > inputs, "chains popped: " + target.pops() + " (seed " + seed + ")");
            assertTrue(errors[0] > inputs / 10, "inputs ending healthy: " + errors[0] + " (seed " + seed + ")");
            assertTrue(target.declaredErrors() > inputs / 10, "broken: " + target.declaredErrors() + " (seed " + seed + ")");
            // Every chain and used rule (the configuration ones are not fuzzed: the rings are placed well).
            assertTrue(missing.isEmpty(), "rules never hit:" + missing + " (seed " + seed + ")");
            synchronized (SplitRingFuzzTest.class) {
                totalInputs += target.inputs();
                totalDeclared += target.declaredErrors();
                totalPops += target.pops();
                slowestNanos = Math.max(slowestNanos, target.slowestNanos());
                for (int i = 0; i < errors.length; i++) {
                    BY_ERROR[i] += errors[i];
                }
            }
        }
    }

    @AfterAll
    static void report() {
        if (totalInputs == 0) {
            return;
        }
        int rules = 0;
        for (int i = 1; i < BY_ERROR.length; i++) {
            rules += BY_ERROR[i] > 0 ? 1 : 0;
        }
        Soak.report("fuzz.split-ring", "inputs=" + totalInputs + " pops=" + totalPops + " declared-errors="
                + totalDeclared + " rules-hit=" + rules + "/" + (BY_ERROR.length - 1) + " slowest-input-us="
                + slowestNanos / 1000 + " faults=0");
    }
}
