package dev.loomvisor.bench.journal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JournalTest {

    @TempDir
    Path dir;

    @Test
    void runsReadBackWithResultsIntervalsAndCompletion() {
        String complete;
        String open;
        var h = new Histogram(3);
        h.setStartTimeStamp(1000);
        h.setEndTimeStamp(2000);
        for (int i = 1; i <= 1000; i++) {
            h.recordValue(i * 1000L);
        }
        try (var j = Journal.open(dir)) {
            complete = j.startRun("compare", Map.of("vms", 2L), Map.of("cpus", 2L));
            j.interval(complete, "user-worker", h);
            var r = new LinkedHashMap<String, Object>();
            r.put("model", "user-worker");
            r.put("mpps", 1.5);
            j.result(complete, r);
            j.endRun(complete, Map.of("models", 1L));
            open = j.startRun("latency", Map.of(), Map.of());
        }
        try (var j = Journal.open(dir)) {
            var runs = j.runs();
            assertEquals(2, runs.size());
            var first = runs.get(0);
            assertEquals(complete, first.id());
            assertTrue(first.complete());
            assertEquals("compare", first.command());
            assertEquals(2L, ((Map<?, ?>) first.start().get("config")).get("vms"));
            assertEquals(1.5, first.results().get(0).get("mpps"));
            Histogram back = Journal.decode(first.intervals().get(0));
            assertEquals(h.getTotalCount(), back.getTotalCount());
            assertEquals(h.getValueAtPercentile(99), back.getValueAtPercentile(99));
            assertEquals(1000, back.getStartTimeStamp());
            var second = runs.get(1);
            assertEquals(open, second.id());
            assertFalse(second.complete());
            assertNull(second.end());
        }
    }
}
