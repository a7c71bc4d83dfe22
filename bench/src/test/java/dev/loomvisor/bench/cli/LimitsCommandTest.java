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
        String[] r = run("limits", "--json", "--journal", dir.toString(), "--nproc", "6", "--vcpus", "0",
                "--devices", "10");
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
        // The default VM has 2 vCPUs: with RLIMIT_NPROC 8 the main task and the vCPUs leave room for 5 workers.
        assertTrue(r[1].contains("ENOMEMx11"), r[1]);
        assertTrue(r[1].contains("1+2+5=8"), r[1]);
        assertTrue(r[1].contains("1+2+0=3"), r[1]);
    }

    @Test
    void jsonCountsVcpuTasksAndWorkersAgainstTheOwnersNprocPerModel() {
        String[] r = run("limits", "--json", "--journal", dir.toString(), "--nproc", "8", "--vcpus", "2",
                "--devices", "10");
        assertEquals("0", r[0], r[2]);
        var results = (List<?>) ((Map<?, ?>) Json.parse(r[1])).get("results");
        assertEquals(5, results.size());
        for (Object o : results) {
            var m = (Map<?, ?>) o;
            String model = (String) m.get("model");
            var counted = (Map<?, ?>) m.get("countedAgainstNproc");
            assertEquals(2L, m.get("vcpuTasks"), model);
            assertEquals(2L, counted.get("vcpuTasks"), model);
            assertEquals(1L, counted.get("mainTask"), model);
            if (model.startsWith("user-worker")) {
                assertEquals(5L, counted.get("workers"), model);
                assertEquals(8L, counted.get("total"), model);
                assertEquals(5L, m.get("devicesCreated"), model);
            } else {
                assertEquals(0L, counted.get("workers"), model + ": kthreads are not the owner's");
                assertEquals(3L, counted.get("total"), model);
                assertEquals(10L, m.get("devicesCreated"), model);
            }
        }
    }

    @Test
    void aBadVcpuCountIsOneLineAndExitTwo() {
        String[] r = run("limits", "--journal", dir.toString(), "--vcpus", "-1");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("--vcpus: -1 is not allowed; give 0 to 1024"), r[2]);
    }
}
