package dev.loomvisor.bench.journal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.loomvisor.bench.CliRun;
import dev.loomvisor.core.testing.Soak;
import java.nio.file.Path;
import java.time.Duration;
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
 * the same journal after the crash. Sometimes two children write at once and are killed one after the
 * other: the survivor goes on appending. CI: 10 kills; {@code -Dloomvisor.soak=full}: 50. Kill points come
 * from {@link Soak#seed()} (replay with {@code -Dloomvisor.seed=N}).
 */
class JournalCrashTest {

    @TempDir
    Path dir;
    @TempDir
    Path logs;

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
        int killed = 0;
        int together = 0;
        long slowestOpen = 0;
        long slowestFirstAppend = 0;
        long slowestAfterPeerKill = 0;
        for (int cycle = 0; killed < kills; cycle++) {
            // Mostly one writer; sometimes two at once into the same journal (parallel benchmarks), killed one
            // after the other: the survivor must go on appending past the other's death.
            int writers = rnd.nextInt(4) == 0 ? 2 : 1;
            together += writers - 1;
            List<CrashingWriter> children = new ArrayList<>();
            StringBuilder plan = new StringBuilder();
            for (int w = 0; w < writers; w++) {
                children.add(new CrashingWriter(dir, rnd.nextLong(), logs.resolve("child-" + cycle + "-" + w + ".err")));
            }
            for (CrashingWriter child : children) {
                // Kill after a random number of appends plus a random delay, so that the kill lands anywhere:
                // between documents, inside one, inside a run, between an end record and the next start.
                int target = child.lines().size() + rnd.nextInt(1, 300);
                long extraMicros = rnd.nextLong(0, 3000);
                plan.append(' ').append(target).append(" lines + ").append(extraMicros).append(" us;");
                long waitFrom = System.nanoTime();
                assertTrue(child.awaitLines(target, Duration.ofSeconds(60)), "a writer stalled or ended at "
                        + child.lines().size() + " of " + target + " lines (alive " + child.alive() + ")" + where
                        + "; stderr: " + child.stderr());
                if (child != children.getFirst()) {
                    slowestAfterPeerKill = Math.max(slowestAfterPeerKill,
                            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - waitFrom));
                }
                LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(extraMicros));
                child.kill();
                killed++;
                slowestOpen = Math.max(slowestOpen, child.openMillis());
                slowestFirstAppend = Math.max(slowestFirstAppend, child.firstAppendMillis());
            }
            StringBuilder errs = new StringBuilder();
            for (CrashingWriter child : children) {
                child.lines().forEach(this::note);
                errs.append(child.stderr());
            }
            String at = " after kill " + killed + " (" + writers + " writer(s):" + plan + ")" + where
                    + "; children's stderr: " + errs;
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
        Soak.report("journal.crash", String.format("kills=%d (%d beside a live writer) runs=%d complete-seen-by-child=%d"
                + " incomplete=%d results=%d lost=0 half-shown=0 slowest-jvm-to-open=%dms"
                + " slowest-open-to-first-append=%dms slowest-survivor-progress=%dms seed=%d %.1fs", killed, together,
                runsNow, completed.size(), incompleteNow, recordsNow, slowestOpen, slowestFirstAppend,
                slowestAfterPeerKill, seed, elapsed / 1e9));
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
}
