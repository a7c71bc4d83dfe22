package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loomvisor.core.Errno;
import dev.loomvisor.core.worker.WorkerModel;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LimitsScenarioTest {

    @Test
    void userWorkersStopAtTheLimitWithEnomem() throws Exception {
        var r = LimitsScenario.run(WorkerModel.USER_WORKER, 8, Long.MAX_VALUE, 20);
        assertEquals(7, r.devicesCreated(), "the owner's own task counts, so 7 workers fit under 8");
        assertEquals(Map.of(Errno.ENOMEM, 13), r.errors());
        assertEquals(8, r.ownerTasks());
        assertEquals(8, r.ownerCountedTasks());
        assertEquals(0, r.workersOverLimit());
    }

    @Test
    void pidsMaxStopsUserWorkersToo() throws Exception {
        var r = LimitsScenario.run(WorkerModel.USER_WORKER_PLATFORM, 100, 4, 10);
        assertEquals(3, r.devicesCreated());
        assertEquals(4, r.cgroupPids());
        assertEquals(0, r.workersOverLimit());
    }

    @Test
    void kthreadsExceedTheLimitAndTheOwnersCountNeverMoves() throws Exception {
        var r = LimitsScenario.run(WorkerModel.KTHREAD, 8, 4, 20);
        assertEquals(20, r.devicesCreated());
        assertEquals(Map.of(), r.errors());
        assertEquals(1, r.ownerCountedTasks(), "only the owner's main task is counted");
        assertEquals(1, r.cgroupPids(), "kthreads land in the root cgroup");
        assertEquals(20, r.workerThreads());
        assertEquals(1 + 20 - 4, r.workersOverLimit());
    }
}
