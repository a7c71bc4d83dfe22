package dev.loomvisor.bench.jfr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.bench.CliRun;
import java.nio.file.Path;
import java.util.List;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --jfr FILE} on a command: the file holds the JDK's events and Loomvisor's, with their fields. */
class JfrOptionTest {

    @TempDir
    Path dir;

    @Test
    void limitsRunRecordsWorkersRefusedAndOwnersNextToTheJdksEvents() throws Exception {
        Path file = dir.resolve("limits.jfr");
        CliRun r = CliRun.of("limits", "--jfr", file.toString(), "--journal", dir.toString(), "--nproc", "6",
                "--devices", "10", "--models", "user-worker,kthread", "--quiet");
        assertEquals(0, r.status(), r.err());
        List<RecordedEvent> events = RecordingFile.readAllEvents(file);

        var created = events.stream().filter(e -> e.getEventType().getName().equals("dev.loomvisor.WorkerCreated")).toList();
        assertTrue(created.stream().anyMatch(e -> e.getString("model").equals("user-worker")
                && e.getString("errno").isEmpty() && e.getInt("ownerPid") > 0 && e.getInt("workerTid") > 0), "made user workers");
        // Over RLIMIT_NPROC the clone fails with EAGAIN (the device then reports ENOMEM): of 6, the main task and
        // the 2 vCPU threads (limits --vcpus default) leave 3 workers, so 7 of the 10 devices are refused.
        assertEquals(7, created.stream().filter(e -> e.getString("model").equals("user-worker")
                && e.getString("errno").equals("EAGAIN")).count(), "refused user workers with their errno");
        assertTrue(created.stream().anyMatch(e -> e.getString("model").equals("kthread") && e.getString("errno").isEmpty()));
        assertTrue(created.stream().allMatch(e -> e.getEventType().getCategoryNames().equals(List.of("Loomvisor"))));

        var owners = events.stream().filter(e -> e.getEventType().getName().equals("dev.loomvisor.DeviceOwner")).toList();
        assertTrue(owners.stream().anyMatch(e -> e.getString("action").equals("set")));
        assertEquals(7, owners.stream().filter(e -> e.getString("action").equals("set-refused")).count());
        assertTrue(events.stream().anyMatch(e -> e.getEventType().getName().equals("dev.loomvisor.WorkerExited")
                && e.getString("cause").equals("stopped")));
        assertTrue(events.stream().anyMatch(e -> e.getEventType().getName().startsWith("jdk.")), "the JDK's own events");
    }

    @Test
    void aRecordingInAMissingDirectoryIsABadArgument() {
        CliRun r = CliRun.of("limits", "--jfr", dir.resolve("no/such/dir/x.jfr").toString(), "--quiet");
        assertEquals(2, r.status());
        assertTrue(r.err().contains("--jfr: directory") && r.err().strip().lines().count() == 1, r.err());
    }
}
