package dev.loomvisor.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.bench.CliRun;
import dev.loomvisor.bench.output.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SweepCommandTest {

    @TempDir
    Path dir;

    @Test
    void aLatencyBreakHasHeadroomOnlyWithCpuToSpareAndTheFramesArriving() {
        var cold = new dev.loomvisor.bench.scenario.SweepStep(256, dev.loomvisor.bench.scenario.SweepStep.Outcome.LATENCY,
                2500, 0.2, 10, 4096, 2560, "p99 over");
        assertTrue(SweepCommand.headroom(cold, 2560, 2));
        var busy = new dev.loomvisor.bench.scenario.SweepStep(4096, dev.loomvisor.bench.scenario.SweepStep.Outcome.LATENCY,
                2500, 1.6, 10, 4096, 40960, "p99 over");
        assertTrue(!SweepCommand.headroom(busy, 40960, 2), "1.6 of 2 CPUs used");
        var behind = new dev.loomvisor.bench.scenario.SweepStep(4096, dev.loomvisor.bench.scenario.SweepStep.Outcome.LATENCY,
                2500, 0.5, 10, 4096, 30000, "p99 over");
        assertTrue(!SweepCommand.headroom(behind, 40960, 2), "a quarter of the offered frames missing");
    }

    @Test
    void jsonHoldsEveryStepAndTheSummaryPerModel() throws Exception {
        Path out = dir.resolve("out");
        // An SLO no step can break: the search doubles to the maximum (2, 4) and holds it.
        CliRun r = CliRun.of("sweep", "--json", "--quiet", "--journal", dir.resolve("j").toString(), "--out",
                out.toString(), "--models", "user-worker", "--max-vms", "4", "--rate", "500", "--slo-us", "10000000",
                "--duration", "200ms", "--warmup", "50ms", "--repeat", "1", "--frame-size", "64");
        assertEquals(0, r.status(), r.err());
        var json = (Map<?, ?>) Json.parse(r.out());
        var steps = (List<?>) json.get("steps");
        assertEquals(List.of(2L, 4L), steps.stream().filter(s -> "user-worker".equals(((Map<?, ?>) s).get("model")))
                .map(s -> ((Map<?, ?>) s).get("vms")).toList(), r.out());
        // The floor's own search comes first, with a step row per count; the model's count reuses its 4-VM run.
        assertEquals(List.of(2L, 4L), steps.stream().filter(s -> "floor".equals(((Map<?, ?>) s).get("model")))
                .map(s -> ((Map<?, ?>) s).get("vms")).toList(), r.out());
        for (Object s : steps) {
            for (String field : List.of("model", "vms", "outcome", "latencyP99Us", "cpuSecondsPerSecond",
                    "platformThreads", "rssPerVmBytes", "idleRssPerVmBytes", "sendLateP99Us", "framesPerSecond", "samples", "windowSeconds",
                    "otherCpuShare", "disturbed")) {
                assertTrue(((Map<?, ?>) s).containsKey(field), field + " missing in " + s);
            }
        }
        // 2 VMs at 500 frames/s hold 1,000 samples (the default --min-samples) in 1 s, longer than the 200 ms asked.
        var firstModelStep = (Map<?, ?>) steps.stream().filter(s -> "user-worker".equals(((Map<?, ?>) s).get("model")))
                .findFirst().orElseThrow();
        assertEquals(1.0, (double) firstModelStep.get("windowSeconds"), 1e-9);
        var summaries = (List<?>) json.get("summary");
        assertEquals(List.of("floor", "user-worker"), summaries.stream().map(s -> ((Map<?, ?>) s).get("model")).toList());
        var floor = (Map<?, ?>) summaries.getFirst();
        assertEquals(4L, floor.get("vmsHeldAtSlo"), "the floor's search held the maximum: " + floor);
        assertTrue((double) floor.get("framesPerSecond") > 0, "the floor's held step is reported: " + floor);
        var summary = (Map<?, ?>) summaries.get(1);
        assertEquals(4L, summary.get("vmsHeldAtSlo"));
        assertEquals(4L, summary.get("floorVmsHeldAtSlo"));
        assertEquals(1.0, (double) summary.get("shareOfFloorVms"), 1e-9);
        assertEquals(null, summary.get("firstVmsOverSlo"));
        assertTrue((double) summary.get("floorP99Us") > 0, "the floor ran: " + summary);
        assertTrue((double) summary.get("framesPerSecond") > 0);
        assertTrue(summary.get("idleRssPerVmBytes") instanceof Long, "the idle fleet's memory is reported: " + summary);
        assertTrue((double) summary.get("sendLateP99AtHeldUs") >= 0, "the senders' lateness is reported: " + summary);
        assertTrue(Files.size(out.resolve("sweep.png")) > 0);
        assertTrue(Files.exists(out.resolve("sweep.json")));
    }

    @Test
    void withoutTheFloorSearchTheFloorRunsOnlyAtTheModelsCount() throws Exception {
        CliRun r = CliRun.of("sweep", "--json", "--quiet", "--no-floor-search", "--journal", dir.resolve("j").toString(),
                "--models", "user-worker", "--max-vms", "2", "--rate", "500", "--slo-us", "10000000",
                "--duration", "100ms", "--warmup", "50ms", "--repeat", "1", "--frame-size", "64", "--min-samples", "0");
        assertEquals(0, r.status(), r.err());
        var json = (Map<?, ?>) Json.parse(r.out());
        assertEquals(List.of("user-worker", "floor"), ((List<?>) json.get("steps")).stream()
                .map(s -> ((Map<?, ?>) s).get("model")).toList(), r.out());
        var summaries = (List<?>) json.get("summary");
        assertEquals(1, summaries.size(), r.out());
        assertEquals(null, ((Map<?, ?>) summaries.getFirst()).get("floorVmsHeldAtSlo"));
    }

    @Test
    void twentyThousandVmsAndFractionalRatesAreAccepted() {
        // Only the validation: --help after valid options would not check them, so use a bad SLO to stop early.
        CliRun r = CliRun.of("sweep", "--journal", dir.toString(), "--max-vms", "20000", "--rate", "0.5", "--slo-us", "0");
        assertEquals(2, r.status());
        assertTrue(r.err().contains("--slo-us"), "max-vms and rate passed, the SLO did not: " + r.err());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "--max-vms|65536|--max-vms: 65536 is not allowed",
            "--max-vms|3|--max-vms: 3 is not allowed",
            "--rate|0|--rate: 0 is not allowed",
            "--rate|fast|'fast' is not a rate",
            "--queue-size|300|--queue-size: 300 is not allowed",
            "--rx-buffers|512|--rx-buffers: 512 is not allowed"})
    void badOptionsGiveOneLineAndStatus2(String option, String value, String message) {
        CliRun r = CliRun.of("sweep", "--journal", dir.toString(), option, value);
        assertEquals(2, r.status());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains(message), r.err());
    }
}
