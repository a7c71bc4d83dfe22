package dev.loomvisor.core.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Sizes for the robustness checks: the same test runs small in CI and at full size under
 * {@code scripts/soak}, which sets {@code -Dloomvisor.soak=full}. A check reports its figures with
 * {@link #report}: they go to the file named by {@code -Dloomvisor.soak.report} (scripts/soak prints it),
 * never to standard output, so nothing below the CLI prints.
 */
public final class Soak {
    /** System property: {@code full} selects the soak sizes. */
    public static final String MODE_PROPERTY = "loomvisor.soak";
    /** System property: the file each check appends its one-line figures to. */
    public static final String REPORT_PROPERTY = "loomvisor.soak.report";
    /** System property: a seed to replay a randomised check with (printed by a failing check). */
    public static final String SEED_PROPERTY = "loomvisor.seed";

    private Soak() {
    }

    /** True under scripts/soak. */
    public static boolean full() {
        return "full".equals(System.getProperty(MODE_PROPERTY));
    }

    /** {@code ci} in a normal test run, {@code soak} under scripts/soak. */
    public static long size(long ci, long soak) {
        return full() ? soak : ci;
    }

    /** {@link #size(long, long)} for int sizes. */
    public static int size(int ci, int soak) {
        return full() ? soak : ci;
    }

    /**
     * The seed of a randomised check: {@code -Dloomvisor.seed} when given (to replay a failure), else a fresh
     * random one. A check puts it in its failure messages so that the failure can be replayed.
     */
    public static long seed() {
        String given = System.getProperty(SEED_PROPERTY);
        if (given != null && !given.isBlank()) {
            return Long.parseLong(given.trim());
        }
        return ThreadLocalRandom.current().nextLong();
    }

    /**
     * Records one check's figures, e.g. {@code report("fuzz.split-ring", "inputs=200000 errors=12345 faults=0")}.
     * A no-op unless {@code -Dloomvisor.soak.report} names a file.
     */
    public static synchronized void report(String check, String figures) {
        String file = System.getProperty(REPORT_PROPERTY);
        if (file == null || file.isBlank()) {
            return;
        }
        String line = String.format("%-34s %s%n", check, figures);
        try {
            Files.writeString(Path.of(file), line, StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append soak figures to " + file, e);
        }
    }
}
