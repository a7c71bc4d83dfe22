package dev.loomvisor.vmm.fuzz;

import static org.junit.jupiter.api.Assertions.fail;

import dev.loomvisor.vmm.virtio.RingError;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Consumer;

/** What the split- and packed-ring fuzz drivers share: the input loop and the rule-coverage check. */
final class FuzzRun {

    private FuzzRun() {
    }

    /**
     * Feeds {@code inputs} inputs to {@code target}: the corpus as it is first (the regression run), then its
     * mutations. A fault fails the test with the seed to replay it and the input in hex.
     */
    static void feed(Consumer<byte[]> target, List<byte[]> corpus, Mutator mutator, long inputs, long seed) {
        for (long i = 0; i < inputs; i++) {
            byte[] input = i < corpus.size() ? corpus.get((int) i) : mutator.next();
            try {
                target.accept(input);
            } catch (AssertionError e) {
                fail("fault on input " + i + " of seed " + seed + " (replay: -Dloomvisor.seed=" + seed + "): "
                        + e.getMessage() + "\ninput: " + HexFormat.of().formatHex(input), e);
            }
        }
    }

    /** The rules ({@link RingError}s after NONE) never reached, other than those matching {@code notFuzzed}. */
    static String rulesNeverHit(long[] errors, String notFuzzed) {
        StringBuilder missing = new StringBuilder();
        for (int i = 1; i < errors.length; i++) {
            if (errors[i] == 0 && !RingError.values()[i].name().matches(notFuzzed)) {
                missing.append(' ').append(RingError.values()[i].name());
            }
        }
        return missing.toString();
    }
}
