package dev.loomvisor.bench.journal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Found while writing the crash test, whose children start many runs a second: a run id was the start
 * second plus 16 random bits, so runs started in the same second (a fast scripted loop, parallel
 * benchmarks into one journal) collided after a few hundred, and {@link Journal#runs()}, which groups
 * records by id, then showed two runs as one: the records of both, complete when either had ended.
 */
class RunIdCollisionTest {

    @TempDir
    Path dir;

    @Test
    void runIdsStartedInTheSameSecondNeverCollide() {
        int n = 20_000; // with 16 random bits: about 3,000 collisions expected; with 48, about 1 in a million
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < n; i++) {
            assertTrue(ids.add(Journal.newRunId()), "run id collided after " + i + " ids");
        }
    }

    @Test
    void twoRunsStartedTogetherReadBackAsTwo() {
        try (var j = Journal.open(dir)) {
            String a = j.startRun("compare", Map.of(), Map.of());
            String b = j.startRun("compare", Map.of(), Map.of());
            j.endRun(a, Map.of());
            assertEquals(2, j.runs().size());
            assertTrue(j.runs().get(0).complete());
            assertEquals(b, j.runs().get(1).id());
            assertTrue(!j.runs().get(1).complete());
        }
    }
}
