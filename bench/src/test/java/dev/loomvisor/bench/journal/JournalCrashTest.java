package dev.loomvisor.bench.journal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.loomvisor.bench.CliRun;
import dev.loomvisor.core.testing.Soak;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Journal crashes: child JVMs append runs to one journal ({@link JournalCrashChild}) and are killed with
 * SIGKILL at random points, one after another; after every kill the journal is reopened and read back.
 * Every run a child saw completed is there, complete, with every record as written and an end record
 * that matches them; no run is shown complete without all of its records; an incomplete run shows a
 * readable prefix of its records and is listed as incomplete by {@code report}; the next child appends to
 * the same journal after the crash. CI: 10 kills; {@code -Dloomvisor.soak=full}: 50. Kill points come
 * from {@link Soak#seed()} (replay with {@code -Dloomvisor.seed=N}).
 */
class JournalCrashTest {

    @TempDir
    Path dir;
    @TempDir
    Path logs;
    private Path stderr;

    /** What the children reported, over all kills: facts, each printed after its append returned. */
    private final Map<String, Integer> completed = new LinkedHashMap<>();
    private final Map<String, Integer> recordsSeen = new HashMap<>();
    private final Set<String> started = new HashSet<>();

    @Test
    void sigkillAtRandomPointsNeverLosesACompletedRunNorShowsAHalfRunAsComplete() throws Exception {
        long seed = Soak.seed();
        int kills = Soak.size(10, 50);
        var rnd = new SplittableRandom(seed);
        String where = " (seed " + seed + "; replay with -Dloomvisor.seed=" + seed + ")";
        long t0 = System.nanoTime();
        int incompleteNow = 0;
        int runsNow = 0;
        long recordsNow = 0;
        for (int k = 0; k < kills; k++) {
            // Kill after a random number of reported appends plus a random delay, so that the kill lands
            // anywhere: between documents, inside one, inside a run, between an end record and the next start.
            int killAfterLines = rnd.nextInt(1, 300);
            long extraMicros = rnd.nextLong(0, 3000);
            stderr = logs.resolve("child-" + k + ".err");
            Process child = startChild(rnd.nextLong());
            try (var in = new BufferedReader(new InputStreamReader(child.getInputStream()))) {
                int lines = 0;
                String line;
                while (lines < killAfterLines && (line = in.readLine()) != null) {
                    note(line);
                    lines++;
                }
                LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(extraMicros));
                // SIGKILL (through the handle: Process.destroyForcibly would also close the pipe, losing
                // the lines the child printed before it died): no shutdown hook, no close, maybe mid-document.
                child.toHandle().destroyForcibly();
                assertTrue(child.waitFor(30, TimeUnit.SECONDS), "child did not die" + where);
                assertTrue(lines == killAfterLines, "child ended by itself after " + lines + " lines" + where
                        + ": " + drain(in));
                while ((line = in.readLine()) != null) {
                    note(line); // printed before the kill: also facts
                }
            }
            String at = " after kill " + (k + 1) + " (" + killAfterLines + " lines + " + extraMicros + " us)" + where
                    + "; child stderr: " + java.nio.file.Files.readString(stderr);
            List<RunRecord> runs;
            try (var j = Journal.open(dir)) {
                runs = j.runs();
            }
            incompleteNow = check(runs, at);
            runsNow = runs.size();
            recordsNow = runs.stream().mapToLong(r -> r.results().size()).sum();
            checkListing(runs, at);
        }
        // The journal still takes runs after all those crashes.
        String after;
        try (var j = Journal.open(dir)) {
            after = j.startRun("limits", Map.of(), Map.of());
            j.endRun(after, Map.of("results", 0L, "digest", 0L));
        }
        try (var j = Journal.open(dir)) {
            var last = j.runs().getLast();
            assertEquals(after, last.id(), where);
            assertTrue(last.complete(), where);
        }
        long elapsed = System.nanoTime() - t0;
        Soak.report("journal.crash", String.format("kills=%d runs=%d complete-seen-by-child=%d incomplete=%d"
                + " results=%d lost=0 half-shown=0 seed=%d %.1fs", kills, runsNow, completed.size(), incompleteNow,
                recordsNow, seed, elapsed / 1e9));
    }

    /** Checks every run read back; returns how many are incomplete. */
    private int check(List<RunRecord> runs, String at) {
        Map<String, RunRecord> byId = new HashMap<>();
        int incomplete = 0;
        for (RunRecord r : runs) {
            byId.put(r.id(), r);
            assertEquals("crash", r.command(), r.id() + at);
            int n = r.results().size();
            // Whatever is there is the run's records in order, complete or not: a readable prefix.
            for (int i = 0; i < n; i++) {
                assertEquals(JournalCrashChild.result(r.id(), i), r.results().get(i), r.id() + " result " + i + at);
                Map<String, Object> interval = r.intervals().get(i);
                assertEquals(1, Journal.decode(interval).getTotalCount(), r.id() + " interval " + i + at);
            }
            assertTrue(r.intervals().size() == n || r.intervals().size() == n + 1,
                    r.id() + ": " + r.intervals().size() + " intervals, " + n + " results" + at);
            if (r.complete()) {
                // Complete means all of it: the end record's count and digest match what is readable.
                assertEquals(((Number) r.end().get("results")).longValue(), n, r.id() + " is shown complete" + at);
                assertEquals(r.intervals().size(), n, r.id() + at);
                long digest = 0;
                for (int i = 0; i < n; i++) {
                    digest = JournalCrashChild.digest(digest, JournalCrashChild.result(r.id(), i));
                }
                assertEquals(((Number) r.end().get("digest")).longValue(), digest, r.id() + " digest" + at);
            } else {
                incomplete++;
            }
        }
        for (var e : completed.entrySet()) {
            RunRecord r = byId.get(e.getKey());
            assertNotNull(r, "completed run " + e.getKey() + " lost" + at);
            assertTrue(r.complete(), "completed run " + e.getKey() + " shown incomplete" + at);
            assertEquals((int) e.getValue(), r.results().size(), e.getKey() + at);
        }
        for (var e : recordsSeen.entrySet()) {
            RunRecord r = byId.get(e.getKey());
            assertTrue(r != null && r.results().size() > e.getValue(), "record " + e.getValue() + " of "
                    + e.getKey() + " lost" + at);
        }
        for (String id : started) {
            assertTrue(byId.containsKey(id), "started run " + id + " lost" + at);
        }
        return incomplete;
    }

    /** {@code report}'s listing marks exactly the complete runs complete. */
    private void checkListing(List<RunRecord> runs, String at) {
        CliRun listing = CliRun.of("report", "--journal", dir.toString());
        assertEquals(0, listing.status(), listing.err() + at);
        List<String> lines = listing.out().lines().toList();
        assertEquals(runs.size() + 2, lines.size(), listing.out() + at); // header, rule, a line per run
        for (int i = 0; i < runs.size(); i++) {
            RunRecord r = runs.get(i);
            String l = lines.get(i + 2);
            assertTrue(l.startsWith(r.id() + " "), l + at);
            String[] cols = l.trim().split("\\s+");
            assertEquals(r.complete() ? "complete" : "incomplete", cols[cols.length - 2], l + at);
        }
    }

    private void note(String line) {
        String[] f = line.split(" ");
        switch (f[0]) {
            case "start" -> assertTrue(started.add(f[1]), "two runs started as " + f[1]);
            case "record" -> recordsSeen.merge(f[1], Integer.parseInt(f[2]), Math::max);
            case "complete" -> completed.put(f[1], Integer.parseInt(f[2]));
            default -> fail("child said: " + line);
        }
    }

    private static String drain(BufferedReader in) throws IOException {
        var sb = new StringBuilder();
        String l;
        while ((l = in.readLine()) != null) {
            sb.append(l).append('\n');
        }
        return sb.toString();
    }

    private Process startChild(long childSeed) throws IOException {
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
        cmd.add(Long.toString(childSeed));
        // Chronicle's warnings (e.g. about recovering a lock the killed child held) go to a file, apart
        // from the protocol on standard output.
        return new ProcessBuilder(cmd).redirectError(stderr.toFile()).start();
    }
}
