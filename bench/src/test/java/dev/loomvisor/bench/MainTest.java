package dev.loomvisor.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class MainTest {

    private static CliRun run(String... args) {
        return CliRun.of(args);
    }

    @Test
    void noArgumentsRunTheMainJob() {
        org.junit.jupiter.api.Assertions.assertArrayEquals(new String[] {"compare"}, Main.effectiveArgs(new String[0]));
        org.junit.jupiter.api.Assertions.assertArrayEquals(new String[] {"limits"}, Main.effectiveArgs(new String[] {"limits"}));
    }

    @Test
    void noCommandPrintsUsageAndTheBuiltVersion() {
        var r = run();
        assertEquals(0, r.status());
        assertTrue(r.out().contains("Usage: loomvisor"), r.out());
        assertTrue(r.out().contains("loomvisor 0.") && !r.out().contains("${project.version}"), r.out());
    }

    @Test
    void versionRunsOnJava25OrLater() {
        var r = run("--version");
        assertEquals(0, r.status());
        assertTrue(Runtime.version().feature() >= 25, "tests must run on JDK 25+, ran on " + Runtime.version());
        assertTrue(r.out().startsWith("loomvisor "), r.out());
    }

    @Test
    void unknownOptionIsAnErrorWithStatus2() {
        var r = run("--no-such-option");
        assertEquals(2, r.status());
        assertTrue(r.err().contains("--no-such-option"), r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line, not a usage wall: " + r.err());
    }
}
