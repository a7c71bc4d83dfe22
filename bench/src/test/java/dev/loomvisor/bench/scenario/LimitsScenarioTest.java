package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loomvisor.core.Errno;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.net.VmmBackend;
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

    @Test
    void vcpusAndUserWorkersShareTheOwnersLimit() throws Exception {
        var r = LimitsScenario.run(WorkerModel.USER_WORKER, 8, Long.MAX_VALUE, 3, 20);
        assertEquals(3, r.vcpuTasks());
        assertEquals(Map.of(), r.vcpuErrors());
        assertEquals(4, r.devicesCreated(), "main task + 3 vCPUs leave room for 4 workers under 8");
        assertEquals(Map.of(Errno.ENOMEM, 16), r.errors());
        assertEquals(8, r.ownerTasks());
        assertEquals(4, r.workersInOwner());
        assertEquals(8, r.ownerCountedTasks());
        assertEquals(0, r.workersOverLimit());
        var counted = (Map<?, ?>) r.toMap().get("countedAgainstNproc");
        assertEquals(Map.of("mainTask", 1L, "vcpuTasks", 3L, "workers", 4L, "total", 8L), counted);
    }

    @Test
    void pidsMaxCountsVcpusNextToUserWorkers() throws Exception {
        var r = LimitsScenario.run(WorkerModel.USER_WORKER_PLATFORM, 100, 4, 2, 10);
        assertEquals(2, r.vcpuTasks());
        assertEquals(1, r.devicesCreated());
        assertEquals(4, r.cgroupPids());
        assertEquals(0, r.workersOverLimit());
    }

    @Test
    void kthreadsLeaveOnlyTheVcpusCountedAndExceedTheLimit() throws Exception {
        var r = LimitsScenario.run(WorkerModel.KTHREAD, 8, 4, 2, 20);
        assertEquals(2, r.vcpuTasks());
        assertEquals(20, r.devicesCreated());
        assertEquals(3, r.ownerCountedTasks(), "the main task and its vCPUs");
        assertEquals(0, r.workersInOwner());
        assertEquals(3, r.cgroupPids());
        assertEquals(20, r.workerThreads());
        assertEquals(3 + 20 - 4, r.workersOverLimit());
    }

    @Test
    void vcpusOverTheLimitFailWithEagainAndLeaveNoRoomForWorkers() throws Exception {
        var r = LimitsScenario.run(WorkerModel.USER_WORKER, 3, Long.MAX_VALUE, 4, 5);
        assertEquals(2, r.vcpuTasks());
        assertEquals(Map.of(Errno.EAGAIN, 2), r.vcpuErrors(), "clone of a vCPU thread: RLIMIT_NPROC");
        assertEquals(0, r.devicesCreated());
        assertEquals(Map.of(Errno.ENOMEM, 5), r.errors());
        assertEquals(3, r.ownerCountedTasks());
    }

    @Test
    void everyQueuePairIsAVhostNetWithItsWorkerCountedExactly() throws Exception {
        // 3 NICs x 4 pairs, no limit in reach: a worker per pair, every one a task of the owner.
        var r = LimitsScenario.run(WorkerModel.USER_WORKER, 1000, Long.MAX_VALUE, 2, 3, 4,
                VmmBackend.VringWorkers.PER_PAIR);
        assertEquals(3, r.devicesCreated());
        assertEquals(12, r.vhostNets());
        assertEquals(12, r.deviceWorkers());
        assertEquals(12, r.workersInOwner());
        assertEquals(1 + 2 + 12, r.ownerCountedTasks());
        assertEquals(1 + 2 + 12, r.ownerTasks());
    }

    @Test
    void perVirtqueueWorkersDoubleTheOwnersCountAndStopAtTheLimitSooner() throws Exception {
        var r = LimitsScenario.run(WorkerModel.USER_WORKER, 1000, Long.MAX_VALUE, 2, 3, 4,
                VmmBackend.VringWorkers.PER_VIRTQUEUE);
        assertEquals(12, r.vhostNets());
        assertEquals(24, r.deviceWorkers(), "NEW_WORKER gave every TX ring its own");
        assertEquals(Map.of(), r.newWorkerErrors());
        assertEquals(1 + 2 + 24, r.ownerCountedTasks());

        // nproc 12: main + 2 vCPUs + NIC 0 (4 workers) + NIC 1 (4) = 11; NIC 2's first pair takes the 12th
        // task, its NEW_WORKER and its second pair's SET_OWNER are refused; NIC 3 gets nothing.
        r = LimitsScenario.run(WorkerModel.USER_WORKER, 12, Long.MAX_VALUE, 2, 4, 2,
                VmmBackend.VringWorkers.PER_VIRTQUEUE);
        assertEquals(2, r.devicesCreated());
        assertEquals(5, r.vhostNets());
        assertEquals(9, r.deviceWorkers());
        assertEquals(Map.of(Errno.ENOMEM, 2), r.errors());
        assertEquals(Map.of(Errno.ENOMEM, 1), r.newWorkerErrors());
        assertEquals(12, r.ownerCountedTasks());
        assertEquals(0, r.workersOverLimit());
    }

    @Test
    void kthreadModelsRefuseNewWorkerAndKeepOnePerPairOutsideTheLimit() throws Exception {
        for (WorkerModel m : new WorkerModel[] {WorkerModel.KTHREAD, WorkerModel.KTHREAD_POOL}) {
            var r = LimitsScenario.run(m, 8, Long.MAX_VALUE, 2, 4, 2, VmmBackend.VringWorkers.PER_VIRTQUEUE);
            assertEquals(4, r.devicesCreated(), m.modelName());
            assertEquals(8, r.deviceWorkers(), m.modelName());
            assertEquals(Map.of(Errno.EFAULT, 8), r.newWorkerErrors(), m.modelName());
            assertEquals(3, r.ownerCountedTasks(), "main task and vCPUs only");
        }
    }
}
