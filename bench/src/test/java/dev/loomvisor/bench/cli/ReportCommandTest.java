package dev.loomvisor.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.bench.CliRun;
import dev.loomvisor.bench.journal.Journal;
import dev.loomvisor.bench.output.Json;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReportCommandTest {

    @TempDir
    Path dir;

    private static String[] run(String... args) {
        CliRun r = CliRun.of(args);
        return new String[] {String.valueOf(r.status()), r.out(), r.err()};
    }

    private static Map<String, Object> result(String model, double mpps) {
        var m = new LinkedHashMap<String, Object>();
        m.put("model", model);
        m.put("mpps", mpps);
        return m;
    }

    @Test
    void listsShowsAndDiffsRuns() {
        String a;
        String b;
        try (var j = Journal.open(dir)) {
            a = j.startRun("compare", Map.of(), Map.of());
            j.result(a, result("user-worker", 2.0));
            j.endRun(a, Map.of());
            b = j.startRun("compare", Map.of(), Map.of());
            j.result(b, result("user-worker", 3.0));
        }
        String[] list = run("report", "--journal", dir.toString());
        assertEquals("0", list[0], list[2]);
        assertTrue(list[1].contains(a) && list[1].contains(b), list[1]);
        assertTrue(list[1].lines().anyMatch(l -> l.startsWith(b) && l.contains("incomplete")), list[1]);

        String[] diff = run("report", "--journal", dir.toString(), "--json", a, b);
        assertEquals("0", diff[0], diff[2]);
        var rows = (List<?>) Json.parse(diff[1]);
        var mpps = (Map<?, ?>) rows.getFirst();
        assertEquals("mpps", mpps.get("field"));
        assertEquals(1.5, (double) mpps.get("ratio"), 1e-12);
    }

    @Test
    void unknownRunIsOneLineAndStatus2() {
        try (var j = Journal.open(dir)) {
            j.startRun("compare", Map.of(), Map.of());
        }
        String[] r = run("report", "--journal", dir.toString(), "nosuch");
        assertEquals("2", r[0]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
        assertTrue(r[2].contains("no run 'nosuch'"), r[2]);
    }
}
