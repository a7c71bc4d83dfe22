package dev.loomvisor.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class MainTest {

    private record Result(int status, String out, String err) {}

    private static Result run(String... args) {
        var out = new StringWriter();
        var err = new StringWriter();
        var cmd = Main.commandLine();
        cmd.setOut(new PrintWriter(out));
        cmd.setErr(new PrintWriter(err));
        int status = cmd.execute(args);
        return new Result(status, out.toString(), err.toString());
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
