package dev.loomvisor.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.bench.CliRun;
import dev.loomvisor.bench.output.Json;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LimitsCommandTest {

    @TempDir
    Path dir;

    private static String[] run(String... args) {
        CliRun r = CliRun.of(args);
        return new String[] {String.valueOf(r.status()), r.out(), r.err()};
    }

    @Test
    void userWorkersStopAtTheLimitAndKthreadsExceedItInJson() {
        String[] r = run("limits", "--json", "--journal", dir.toString(), "--nproc", "6", "--devices", "10");
        assertEquals("0", r[0], r[2]);
        var results = (List<?>) ((Map<?, ?>) Json.parse(r[1])).get("results");
        assertEquals(5, results.size(), "one entry per model");
        for (Object o : results) {
            var m = (Map<?, ?>) o;
            String model = (String) m.get("model");
            if (model.startsWith("user-worker")) {
                assertEquals(5L, m.get("devicesCreated"), model);
                assertEquals(Map.of("ENOMEM", 5L), m.get("errors"), model);
                assertEquals(0L, m.get("workersOverLimit"), model);
            } else {
                assertEquals(10L, m.get("devicesCreated"), model);
                assertEquals(1L, m.get("ownerUcount"), model + ": kthreads are not counted against the owner");
            }
        }
        var kthread = (Map<?, ?>) results.stream().filter(o -> "kthread".equals(((Map<?, ?>) o).get("model")))
                .findFirst().orElseThrow();
        assertEquals(1L + 10 - 6, kthread.get("workersOverLimit"));
    }

    @Test
    void tableNamesEveryModel() {
        String[] r = run("limits", "--journal", dir.toString());
        assertEquals("0", r[0], r[2]);
        for (String m : List.of("user-worker", "user-worker-platform", "kthread", "kthread-virtual", "kthread-pool")) {
            assertTrue(r[1].lines().anyMatch(l -> l.startsWith(m + " ")), m + " missing:\n" + r[1]);
        }
        assertTrue(r[1].contains("ENOMEMx9"), r[1]);
    }
}
