package dev.loomvisor.vmm.fuzz;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.vmm.virtio.RingError;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

/**
 * Fuzzing the device side of the split ring ({@link SplitRingTarget}: its oracle is in its javadoc).
 *
 * <ul>
 *   <li>{@link #splitRing(byte[])} is the Jazzer target, coverage-guided with {@code JAZZER_FUZZ=1}:
 *       {@code JAZZER_FUZZ=1 scripts/test -pl vmm -am -Dtest='SplitRingFuzzTest#splitRing'
 *       -Dsurefire.failIfNoSpecifiedTests=false -Djazzer.internal.arg.0=fuzz -Djazzer.internal.arg.1=-seed=4242
 *       -Djazzer.internal.arg.2=-runs=1500000} (argument 0 stands for argv[0]; without {@code -runs} the
 *       annotation's 200,000). It starts from the unit tests' rings in {@code SplitRingFuzzTestInputs/splitRing}
 *       (see {@link Corpus}) and keeps what it finds in {@code vmm/.cifuzz-corpus}, from which
 *       {@code corpus/split-ring} was taken.</li>
 *   <li>{@link #fixedSeed()} and {@link #randomSeed()} are the CI-sized runs: the whole corpus replayed, then
 *       a mutational fuzzer over it with a fixed seed, and again with a fresh one (printed on failure, replayed
 *       with {@code -Dloomvisor.seed=N}); {@code -Dloomvisor.soak=full} runs the soak size.</li>
 * </ul>
 */
class SplitRingFuzzTest {

    static final long FIXED_SEED = 0x5eed_f022_2026L;
    static final long CI_INPUTS = 90_000;
    static final long SOAK_INPUTS = 2_500_000;

    private static final SplitRingTarget JAZZER = new SplitRingTarget();
    private static long totalInputs;
    private static long totalDeclared;
    private static long totalPops;
    private static long slowestNanos;
    private static long slowestRerunNanos;
    private static final long[] BY_ERROR = new long[RingError.values().length];

    @FuzzTest(maxExecutions = 200_000)
    @EnabledIf("jazzerRequested")
    void splitRing(byte[] input) {
        JAZZER.run(input);
    }

    /**
     * Jazzer runs only when asked ({@code JAZZER_FUZZ=1} to fuzz, {@code -Dloomvisor.jazzer=true} to replay its
     * corpus): it loads a Java agent that instruments every class loaded after it, which would slow (and
     * hook into) the module's other tests sharing the Surefire JVM, and it costs 5-20 s here to start.
     * {@link #fixedSeed()} replays the same corpus without it.
     */
    static boolean jazzerRequested() {
        String fuzz = System.getenv("JAZZER_FUZZ");
        return (fuzz != null && !fuzz.isEmpty()) || Boolean.getBoolean("loomvisor.jazzer");
    }

    @Test
    void fixedSeed() {
        drive(FIXED_SEED);
    }

    @Test
    void randomSeed() {
        drive(Soak.seed());
    }

    /**
     * A hang guard for a whole run (a chain walk that never ends would otherwise stall the build): the run
     * goes on another thread and fails if it is not done in a generous bound, far above its measured time.
     */
    private static void drive(long seed) {
        Duration bound = Duration.ofMinutes(Soak.full() ? 60 : 5);
        assertTimeoutPreemptively(bound, () -> run(seed), () -> "no end after " + bound + " (seed " + seed + ")");
    }

    private static void run(long seed) {
        long inputs = Soak.size(CI_INPUTS, SOAK_INPUTS);
        List<byte[]> corpus = Corpus.all();
        Mutator mutator = new Mutator(new SplittableRandom(seed), corpus);
        try (SplitRingTarget target = new SplitRingTarget()) {
            FuzzRun.feed(target::run, corpus, mutator, inputs, seed);
            // The generator must reach both outcomes and most rules, or it tests nothing.
            long[] errors = target.errors();
            String missing = FuzzRun.rulesNeverHit(errors, "QUEUE_SIZE.*|.*MISALIGNED|RING_OUTSIDE_MEMORY|RX_.*|PACKED_.*");
            assertTrue(target.pops() > inputs, "chains popped: " + target.pops() + " (seed " + seed + ")");
            assertTrue(errors[0] > inputs / 10, "inputs ending healthy: " + errors[0] + " (seed " + seed + ")");
            assertTrue(target.declaredErrors() > inputs / 10, "broken: " + target.declaredErrors() + " (seed " + seed + ")");
            // Every chain and used rule (the configuration ones are not fuzzed: the rings are placed well; the RX_
            // ones are virtio-net's, which the RX placement checks, not the ring).
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
            // The slowest input once more, a few times: its own cost, without the GC pause or page fault
            // that may have made it the slowest. A walk is bounded by 2N descriptors and the calls by 4N + 64,
            // so a hang would show here (the bound is a hang detector, not a timing target).
            long rerun = Long.MAX_VALUE;
            byte[] slowest = target.slowestInput();
            for (int k = 0; k < 5; k++) {
                long t0 = System.nanoTime();
                target.run(slowest);
                rerun = Math.min(rerun, System.nanoTime() - t0);
            }
            assertTrue(rerun < 1_000_000_000L, "slowest input takes " + rerun / 1000 + " us (seed " + seed + ")\ninput: "
                    + HexFormat.of().formatHex(slowest));
            synchronized (SplitRingFuzzTest.class) {
                slowestRerunNanos = Math.max(slowestRerunNanos, rerun);
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
                + slowestNanos / 1000 + " slowest-input-rerun-us=" + slowestRerunNanos / 1000 + " faults=0");
    }
}
