package dev.loomvisor.core;

import static dev.loomvisor.core.KernelFixture.owner;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFactories;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What a ps-like listing shows: user workers are threads of their owner, kthreads processes of their own. */
class TaskStatTest {

    private final Kernel k = new Kernel();

    @Test
    void userWorkersAreThreadsOfTheOwnerWithTheirOwnCommAndKthreadsAreProcesses() throws Exception {
        Process p = owner(k);
        int pid = p.pid();
        Task vcpu = k.copyProcess(p.mainTask(),
                new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS).exitSignal(null).name("vcpu0"));
        // vhost names its workers vhost-<tid of the owner's calling thread>.
        Worker w1 = WorkerFactories.userWorker().create(p.mainTask(), () -> false, () -> { }, null);
        Worker w2 = WorkerFactories.userWorker().create(p.mainTask(), () -> false, () -> { }, null);
        w1.start();
        Worker kw = WorkerFactories.kthread().create(p.mainTask(), () -> false, () -> { }, null);
        kw.start();
        int kpid = kw.task().tid();

        // ps -e: processes only; no user worker has a row of its own.
        assertEquals(List.of(1, 2, pid, kpid), k.processes().stream().map(Process::pid).toList());

        List<TaskStat> mine = p.threads();
        assertEquals(List.of(pid, vcpu.tid(), w1.task().tid(), w2.task().tid()),
                mine.stream().map(TaskStat::tid).toList());
        assertTrue(mine.stream().allMatch(r -> r.pid() == pid), "every row is in the owner's thread group");
        assertEquals(List.of("qemu-system-x86", "vcpu0", "vhost-" + pid, "vhost-" + pid),
                mine.stream().map(TaskStat::comm).toList());
        TaskStat worker = mine.get(2);
        assertTrue(worker.isThread());
        assertTrue(worker.hasFlag(Task.PF_USER_WORKER));
        assertEquals("vhost-" + pid, worker.psName(), "it has the owner's mm, so no brackets");
        assertEquals(p.parent().pid(), worker.ppid());
        assertFalse(mine.get(1).hasFlag(Task.PF_USER_WORKER), "a vCPU is a plain thread");
        assertFalse(mine.get(0).isThread());

        List<TaskStat> all = k.listTasks();
        assertEquals(k.nrThreads(), all.size());
        TaskStat kthread = all.stream().filter(r -> r.tid() == kpid).findFirst().orElseThrow();
        assertEquals(kpid, kthread.pid(), "a kthread leads a process of its own");
        assertEquals(2, kthread.ppid());
        assertTrue(kthread.hasFlag(Task.PF_KTHREAD));
        assertFalse(kthread.hasFlag(Task.PF_USER_WORKER));

        w1.task().sendSignal(Signal.SIGSTOP);
        KernelFixture.awaitTrue("worker stopped", () -> p.threads().get(2).state() == 'T');
        w1.task().sendSignal(Signal.SIGCONT);
        kw.stop();
        w1.stop();
        w2.stop();
        p.exit();
        assertEquals(List.of(1, 2), k.listTasks().stream().map(TaskStat::tid).toList());
    }
}
