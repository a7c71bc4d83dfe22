package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;

/**
 * Finds the real vhost-user peers (DPDK's testpmd, QEMU, a Debian kernel, busybox) that `.ci/run`
 * installs. A missing peer fails the test that needs it, naming the packages. Only an explicit
 * {@code -Dloomvisor.peers=off} (for a developer without DPDK or QEMU; CI never sets it) skips the
 * real-peer tests, all of them, whether the peers are there or not.
 */
public final class Peers {

    /** The property that opts out of the real-peer tests; CI never sets it. */
    public static final String OPT_OUT = "loomvisor.peers";

    private static final AtomicInteger UNIQUE = new AtomicInteger();

    private Peers() {
    }

    /** True when the run opted out of real peers. */
    public static boolean optedOut() {
        return "off".equals(System.getProperty(OPT_OUT));
    }

    /**
     * The executable {@code name} on PATH. Missing: the test fails naming {@code debianPackages}. Under the
     * opt-out the test is skipped before anything is looked up.
     */
    public static Path require(String name, String debianPackages) {
        Assumptions.assumeFalse(optedOut(), "real-peer tests are off (-D" + OPT_OUT + "=off)");
        Path found = which(name);
        if (found == null) {
            missing(name, debianPackages);
        }
        return found;
    }

    /** Fails because {@code what} is missing (skips under the opt-out). Never returns normally. */
    static void missing(String what, String debianPackages) {
        Assumptions.assumeFalse(optedOut(), "real-peer tests are off (-D" + OPT_OUT + "=off)");
        fail(what + " not found: install the Debian packages " + debianPackages
                + " (.ci/run does), or run with -D" + OPT_OUT + "=off to skip the real-peer tests");
    }

    static Path which(String name) {
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        for (String dir : path.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path p = Path.of(dir, name);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    /** A name no other peer of this machine uses at the same time (DPDK file prefixes, sockets). */
    public static String uniqueName(String stem) {
        return stem + ProcessHandle.current().pid() + "-" + UNIQUE.incrementAndGet();
    }

    /** A fresh directory for sockets and images, short enough for a UNIX socket path (108 bytes). */
    public static Path tempDir() throws IOException {
        return Files.createTempDirectory(Path.of("/tmp"), "lv-peer");
    }

    /** Deletes a directory tree made by {@link #tempDir}; best effort (sockets may already be gone). */
    public static void deleteTree(Path dir) {
        if (dir == null) {
            return;
        }
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // A leftover temp file is not a test failure.
                }
            });
        } catch (IOException ignored) {
            // Same.
        }
    }

    /** Polls {@code value} (every 20 ms) until it reaches {@code target} or the wait ends; returns the last value. */
    public static long awaitAtLeast(java.util.function.LongSupplier value, long target, java.time.Duration wait)
            throws InterruptedException {
        long deadline = System.nanoTime() + wait.toNanos();
        long v = value.getAsLong();
        while (v < target && System.nanoTime() < deadline) {
            Thread.sleep(20);
            v = value.getAsLong();
        }
        return v;
    }
}
