package dev.loomvisor.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.bench.CliRun;
import dev.loomvisor.bench.journal.Journal;
import dev.loomvisor.bench.output.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class CompareCommandTest {

    @TempDir
    Path dir;

    private static String[] run(String... args) {
        CliRun r = CliRun.of(args);
        return new String[] {String.valueOf(r.status()), r.out(), r.err()};
    }

    @Test
    void jsonHoldsOneEntryPerModelAndEqualsTheJournal() throws Exception {
        Path journal = dir.resolve("journal");
        Path out = dir.resolve("out");
        String[] r = run("compare", "--json", "--quiet", "--journal", journal.toString(), "--out", out.toString(),
                "--models", "user-worker,kthread", "--vms", "2", "--frame-size", "64",
                "--duration", "200ms", "--warmup", "50ms", "--repeat", "2");
        assertEquals("0", r[0], r[2]);
        var json = (Map<?, ?>) Json.parse(r[1]);
        var results = (List<?>) json.get("results");
        assertEquals(2, results.size());
        for (String field : List.of("model", "mpps", "gbps", "latencyP50Us", "latencyP99Us", "latencyP999Us",
                "latencyMaxUs", "cpuSeconds", "javaThreads", "rssMiB", "workerCreateUs", "limitViolations",
                "vsUserWorker", "vsCeiling")) {
            for (Object e : results) {
                assertTrue(((Map<?, ?>) e).containsKey(field), field + " missing in " + e);
            }
        }
        var first = (Map<?, ?>) results.get(0);
        assertEquals("user-worker", first.get("model"));
        assertEquals(1.0, (double) first.get("vsUserWorker"), 1e-12);
        assertTrue((double) first.get("mpps") > 0, "frames moved: " + first);
        assertEquals(0L, first.get("limitViolations"));
        assertTrue((long) ((Map<?, ?>) results.get(1)).get("limitViolations") > 0, "kthreads exceed the limit");

        try (var j = Journal.open(journal)) {
            var runs = j.runs();
            assertEquals(1, runs.size());
            var rec = runs.getFirst();
            assertTrue(rec.complete());
            assertEquals(json.get("run"), rec.id());
            assertEquals(results, rec.results(), "the printed numbers are the journal's");
            assertTrue(rec.intervals().size() >= 2, "interval histograms journaled");
        }
        assertTrue(Files.exists(out.resolve("summary.json")));
        assertTrue(Files.exists(out.resolve("user-worker-64B.hgrm")));
        assertTrue(Files.exists(out.resolve("kthread-64B.hlog")));
        assertTrue(Files.exists(out.resolve("latency.png")));
    }

    @Test
    void pingpongMeasuresRoundTripsThroughTheEchoGuest() {
        String[] r = run("pingpong", "--json", "--quiet", "--journal", dir.toString(), "--models", "user-worker",
                "--vms", "2", "--frame-size", "64", "--rate", "1k", "--duration", "300ms", "--warmup", "100ms",
                "--repeat", "1");
        assertEquals("0", r[0], r[2]);
        var json = (Map<?, ?>) Json.parse(r[1]);
        assertEquals("PING_PONG", ((Map<?, ?>) json.get("config")).get("traffic"));
        var row = (Map<?, ?>) ((List<?>) json.get("results")).getFirst();
        // The pinger sends 1,000 frames/s: about 300 round trips in 300 ms, each seen by the echo guest too.
        long samples = (long) row.get("latencySamples");
        assertTrue(samples >= 100 && samples <= 400, "round trips measured: " + samples);
        assertTrue((double) row.get("latencyP50Us") > 0);
        assertEquals(0L, row.get("badFrames"));
    }

    @Test
    void latencyMeasuresTheFloorInTheSameRunAndRatiosToIt() {
        String[] r = run("latency", "--json", "--quiet", "--journal", dir.toString(), "--models", "user-worker",
                "--vms", "2", "--frame-size", "64", "--rate", "1k", "--duration", "300ms", "--warmup", "100ms",
                "--repeat", "1");
        assertEquals("0", r[0], r[2]);
        var json = (Map<?, ?>) Json.parse(r[1]);
        var floor = (Map<?, ?>) json.get("floor");
        assertTrue((long) floor.get("latencySamples") > 0, "the floor recorded: " + floor);
        var row = (Map<?, ?>) ((List<?>) json.get("results")).getFirst();
        assertEquals((double) row.get("latencyP99Us") / (double) floor.get("latencyP99Us"), (double) row.get("xFloorP99"), 1e-9);
        assertTrue((double) row.get("xFloorP50") > 0);
        // The senders' own lateness, for the model and the floor alike: recorded, and never above the latency it
        // is part of by more than a histogram bucket (both are from the due time; the send comes first).
        for (var m : List.of(row, floor)) {
            double late = (double) m.get("sendLateP99Us");
            assertTrue(late >= 0 && late <= (double) m.get("latencyP99Us") * 1.01, "late p99 " + late + " in " + m);
        }
    }

    @Test
    void queuesRunEveryPairAndGoIntoTheHeaderJsonAndJournal() throws Exception {
        Path journal = dir.resolve("journal");
        String[] r = run("throughput", "--json", "--quiet", "--journal", journal.toString(), "--models", "kthread",
                "--vms", "2", "--queues", "4", "--vring-workers", "virtqueue", "--frame-size", "64",
                "--duration", "200ms", "--warmup", "50ms", "--repeat", "1");
        assertEquals("0", r[0], r[2]);
        var json = (Map<?, ?>) Json.parse(r[1]);
        var config = (Map<?, ?>) json.get("config");
        assertEquals(4L, config.get("queues"));
        assertEquals("virtqueue", config.get("vringWorkers"));
        var row = (Map<?, ?>) ((List<?>) json.get("results")).getFirst();
        assertTrue((double) row.get("mpps") > 0, "frames moved: " + row);
        assertEquals(0L, row.get("badFrames"), "every pair's flow in order");
        assertEquals(4L, row.get("vhostWorkersPerVm"), "kthread: NEW_WORKER refused, one worker per pair");
        try (var j = Journal.open(journal)) {
            assertEquals(4L, ((Map<?, ?>) j.runs().getFirst().start().get("config")).get("queues"));
        }
        String[] table = run("compare", "--quiet", "--journal", journal.toString(), "--models", "user-worker",
                "--vms", "2", "--queues", "2", "--frame-size", "64", "--duration", "100ms", "--warmup", "50ms",
                "--repeat", "1");
        assertEquals("0", table[0], table[2]);
        assertTrue(table[1].contains("2 queue pairs per VM"), table[1]);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "--vms|0|--vms: 0 is not allowed",
            "--models|nosuch|--models: unknown model 'nosuch'",
            "--frame-size|70000|--frame-size: 70000 is out of range",
            "--duration|soon|'soon' is not a duration",
            "--repeat|0|--repeat: 0 is not allowed",
            "--ring|ring|--ring: unknown layout 'ring'; allowed: split, packed, or both as split,packed",
            "--ring|split,packed,split|--ring: a layout is named twice; allowed: split, packed",
            "--queues|0|--queues: 0 is not allowed; give 1 to 256 queue pairs per VM",
            "--queues|257|--queues: 257 is not allowed; give 1 to 256",
            "--vring-workers|ring|--vring-workers: 'ring' is not allowed; give pair or virtqueue"})
    void badOptionsGiveOneLineAndStatus2(String option, String value, String message) {
        String[] r = run("compare", "--journal", dir.toString(), option, value);
        assertEquals("2", r[0]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
        assertTrue(r[2].contains(message), r[2]);
        assertEquals("", r[1]);
    }

    @ParameterizedTest
    @CsvSource({"compare", "throughput", "latency", "pingpong", "sweep"})
    void everyMeasuringCommandTakesTheRingOptionAndRejectsABadOne(String command) {
        String[] bad = run(command, "--journal", dir.toString(), "--ring", "spilt");
        assertEquals("2", bad[0]);
        assertEquals(1, bad[2].strip().lines().count(), bad[2]);
        assertTrue(bad[2].contains("--ring: unknown layout 'spilt'; allowed: split, packed"), bad[2]);
        String[] help = run(command, "--help");
        assertEquals("0", help[0], help[2]);
        assertTrue(help[1].contains("--ring=LAYOUT"), help[1]);
    }

    @Test
    void compareWithBothRingsPrintsBothLayoutsPerModelInOneRun() throws Exception {
        Path journal = dir.resolve("journal");
        String[] r = run("compare", "--json", "--quiet", "--journal", journal.toString(), "--ring", "split,packed",
                "--models", "user-worker,kthread", "--vms", "2", "--frame-size", "64",
                "--duration", "200ms", "--warmup", "50ms", "--repeat", "2");
        assertEquals("0", r[0], r[2]);
        var json = (Map<?, ?>) Json.parse(r[1]);
        assertEquals(List.of("split", "packed"), ((Map<?, ?>) json.get("config")).get("rings"));
        var results = (List<?>) json.get("results");
        assertEquals(4, results.size());
        List<String> seen = results.stream().map(e -> (Map<?, ?>) e)
                .map(e -> e.get("model") + " " + e.get("ring")).toList();
        assertEquals(List.of("user-worker split", "user-worker packed", "kthread split", "kthread packed"), seen);
        for (Object e : results) {
            var row = (Map<?, ?>) e;
            assertTrue((double) row.get("mpps") > 0, "frames moved: " + row);
            assertEquals(0L, row.get("badFrames"), "the guests' checks held: " + row);
            if ("split".equals(row.get("ring"))) {
                assertEquals(1.0, (double) row.get("vsSplit"), 1e-12);
            } else {
                assertTrue((double) row.get("vsSplit") > 0, "packed against split: " + row);
                assertTrue(((String) row.get("key")).contains("/packed/"), row.toString());
            }
        }
        try (var j = Journal.open(journal)) {
            var rec = j.runs().getFirst();
            assertEquals(results, rec.results(), "the journal carries both layouts");
        }

        String[] table = run("compare", "--quiet", "--journal", journal.toString(), "--ring", "split,packed",
                "--models", "user-worker", "--vms", "2", "--frame-size", "64",
                "--duration", "100ms", "--warmup", "50ms", "--repeat", "1");
        assertEquals("0", table[0], table[2]);
        assertTrue(table[1].contains("x split"), table[1]);
        assertTrue(table[1].lines().anyMatch(l -> l.startsWith("user-worker") && l.contains(" split ")), table[1]);
        assertTrue(table[1].lines().anyMatch(l -> l.startsWith("user-worker") && l.contains(" packed ")), table[1]);
    }

    @ParameterizedTest
    @CsvSource({"latency", "pingpong"})
    void openLoopAndEchoRunOnPackedRings(String command) {
        String[] r = run(command, "--json", "--quiet", "--journal", dir.toString(), "--ring", "packed",
                "--models", "user-worker", "--vms", "2", "--frame-size", "1500", "--rate", "1k",
                "--duration", "300ms", "--warmup", "100ms", "--repeat", "1");
        assertEquals("0", r[0], r[2]);
        var row = (Map<?, ?>) ((List<?>) ((Map<?, ?>) Json.parse(r[1])).get("results")).getFirst();
        assertEquals("packed", row.get("ring"));
        assertTrue((long) row.get("latencySamples") >= 100, "frames measured: " + row);
        assertEquals(0L, row.get("badFrames"));
    }
}
