package dev.loomvisor.bench.journal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.bench.CliRun;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run killed with SIGKILL midway: every earlier run stays readable and complete, the killed one is listed
 * as incomplete, and the journal takes new runs afterwards. The child is a real JVM, killed at a random
 * point while it appends.
 */
class JournalCrashTest {

    @TempDir
    Path dir;

    @RepeatedTest(3)
    void sigkillMidRunLeavesEarlierRunsIntactAndMarksTheKilledOneIncomplete() throws Exception {
        String javaBin = ProcessHandle.current().info().command().orElseThrow();
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBin);
        // The same JVM flags as this test JVM (Chronicle's exports and opens), minus debugger agents.
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (!a.startsWith("-agentlib") && !a.startsWith("-javaagent")) {
                cmd.add(a);
            }
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(JournalCrashChild.class.getName());
        cmd.add(dir.toString());
        Process child = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String complete = null;
        String killed = null;
        int killAfter = ThreadLocalRandom.current().nextInt(1, 20);
        try (var in = new BufferedReader(new InputStreamReader(child.getInputStream()))) {
            String line;
            int results = 0;
            while ((line = in.readLine()) != null) {
                if (line.startsWith("complete ")) {
                    complete = line.substring(9);
                } else if (line.startsWith("started ")) {
                    killed = line.substring(8);
                } else if (line.startsWith("result ") && ++results >= killAfter) {
                    break;
                }
            }
            // SIGKILL: no shutdown hook, no close, possibly mid-document.
            child.destroyForcibly();
            assertTrue(child.waitFor(30, TimeUnit.SECONDS), "child did not die");
        }
        assertTrue(complete != null && killed != null, "child did not get far enough");

        try (var j = Journal.open(dir)) {
            var runs = j.runs();
            assertEquals(2, runs.size());
            assertEquals(complete, runs.get(0).id());
            assertTrue(runs.get(0).complete());
            assertEquals(1, runs.get(0).results().size());
            assertEquals(killed, runs.get(1).id());
            assertFalse(runs.get(1).complete());
            assertTrue(runs.get(1).results().size() >= 100L * (killAfter - 1), "records before the kill are there");
            // The journal takes a new run after the crash.
            String after = j.startRun("limits", Map.of(), Map.of());
            j.endRun(after, Map.of());
        }
        CliRun listing = CliRun.of("report", "--journal", dir.toString());
        assertEquals(0, listing.status(), listing.err());
        String report = listing.out();
        String c = complete;
        String k = killed;
        assertTrue(report.lines().anyMatch(l -> l.startsWith(c) && l.contains(" complete")), report);
        assertTrue(report.lines().anyMatch(l -> l.startsWith(k) && l.contains("incomplete")), report);
        assertEquals(3, report.lines().count() - 2, report);
    }
}
