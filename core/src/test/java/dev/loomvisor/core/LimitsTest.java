package dev.loomvisor.core;

import dev.loomvisor.core.worker.VhostTask;
import static dev.loomvisor.core.KernelFixture.IDLE;
import static dev.loomvisor.core.KernelFixture.NO_SIGKILL;
import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.owner;
import static dev.loomvisor.core.KernelFixture.plainThread;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.KthreadWorker;
import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFactories;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Reference section 1 steps 6 and 8, and section 2: user workers inside the owner's limits, kthreads outside. */
class LimitsTest {

    private final Kernel k = new Kernel();

    @Test
    void rlimitNprocAdmitsFiveVhostTasksThenEagainAndKthreadsEscape() throws Exception {
        Process p = owner(k, 8, k.rootCgroup());
        plainThread(p);
        plainThread(p);
        assertEquals(3, k.ucounts().count(UID), "owner with 3 tasks");
        List<VhostTask> workers = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            workers.add(VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, "vhost-" + p.pid()));
        }
        assertEquals(8, k.ucounts().count(UID));
        int nr = k.nrThreads();
        long pids = k.rootCgroup().pidsCurrent();
        var e = assertThrows(ErrnoException.class, () -> VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, "vhost-x"));
        assertEquals(Errno.EAGAIN, e.errno());
        assertEquals(8, k.ucounts().count(UID), "the failed clone left the count unchanged");
        assertEquals(nr, k.nrThreads());
        assertEquals(pids, k.rootCgroup().pidsCurrent());
        assertEquals(8, p.tasks().size());

        List<Worker> kthreads = new ArrayList<>();
        var factory = WorkerFactories.kthread();
        for (int i = 0; i < 20; i++) {
            Worker w = factory.create(p.mainTask(), IDLE, NO_SIGKILL, null);
            w.start();
            kthreads.add(w);
        }
        assertEquals(8, k.ucounts().count(UID), "kthread workers are not the owner's");
        assertEquals(20, k.ucounts().count(Credentials.ROOT_UID) - 2, "they are root's (besides init, kthreadd)");
        kthreads.forEach(Worker::stop);
        workers.forEach(VhostTask::stop);
        assertEquals(3, k.ucounts().count(UID));
    }

    @Test
    void rootCapSysResourceAndCapSysAdminAreExempt() throws Exception {
        for (Credentials cred : List.of(Credentials.root(),
                Credentials.user(UID, UID).withCapability(Capability.CAP_SYS_RESOURCE),
                Credentials.user(UID, UID).withCapability(Capability.CAP_SYS_ADMIN))) {
            Kernel kk = new Kernel();
            Process p = kk.spawn("vmm", cred, Rlimits.nproc(1), kk.rootCgroup());
            for (int i = 0; i < 5; i++) {
                VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null);
            }
            assertEquals(6, p.tasks().size(), cred.toString());
            p.exit();
        }
        // Without the capability the same owner stops at its limit.
        Process p = owner(k, 1, k.rootCgroup());
        assertEquals(Errno.EAGAIN,
                assertThrows(ErrnoException.class, () -> VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null)).errno());
    }

    @Test
    void theCallersLimitCountsNotTheChilds() throws Exception {
        Process a = owner(k, 100, k.rootCgroup());
        Process b = owner(k, 2, k.rootCgroup());
        assertEquals(2, k.ucounts().count(UID));
        // Same user: b's limit is already reached by the user's two tasks, a's is not.
        assertEquals(Errno.EAGAIN, assertThrows(ErrnoException.class, () -> plainThread(b)).errno());
        plainThread(a);
        assertEquals(3, k.ucounts().count(UID));
    }

    @Test
    void pidsMaxOnTheCgroupAdmitsThreeUserWorkersThenEagainAndCountsAnEvent() throws Exception {
        Cgroup vm = k.rootCgroup().mkdir("machine").mkdir("vm1");
        vm.setPidsMax(4);
        pidsScenario(vm, vm);
    }

    @Test
    void pidsMaxOnAParentCgroupLimitsTheSame() throws Exception {
        Cgroup machine = k.rootCgroup().mkdir("machine");
        Cgroup vm = machine.mkdir("vm1");
        machine.setPidsMax(4);
        pidsScenario(vm, machine);
    }

    private void pidsScenario(Cgroup vm, Cgroup limited) throws Exception {
        Process p = owner(k, Rlimits.INFINITY, vm);
        assertEquals(1, limited.pidsCurrent());
        for (int i = 0; i < 3; i++) {
            VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null);
        }
        assertEquals(4, limited.pidsCurrent());
        long rootBefore = k.rootCgroup().pidsCurrent();
        var e = assertThrows(ErrnoException.class, () -> VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null));
        assertEquals(Errno.EAGAIN, e.errno());
        assertEquals(4, limited.pidsCurrent());
        assertEquals(4, vm.pidsCurrent());
        assertEquals(rootBefore, k.rootCgroup().pidsCurrent(), "the partial charge up the tree was reverted");
        assertEquals(1, vm.pidsEventsMax(), "pids.events max of the forking cgroup");
        assertEquals(1, limited.pidsEventsMaxLocal());
        assertEquals(4, k.ucounts().count(UID), "ucounts charge undone too");

        // kthread workers land in the root cgroup and succeed.
        List<KthreadWorker> kthreads = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            KthreadWorker w = KthreadWorker.create(p.mainTask(), IDLE, "vhost-" + p.pid(), Carrier.PLATFORM);
            assertSame(k.rootCgroup(), w.task().cgroup());
            kthreads.add(w);
        }
        assertEquals(4, limited.pidsCurrent());
        assertEquals(rootBefore + 10, k.rootCgroup().pidsCurrent());
        kthreads.forEach(KthreadWorker::stop);
        p.exit();
        assertEquals(0, vm.pidsCurrent());
        assertEquals(0, limited.pidsCurrent());
        assertEquals(2, k.rootCgroup().pidsCurrent());
    }

    @Test
    void migratingAKthreadIntoTheOwnersCgroupChargesPastPidsMax() throws Exception {
        Cgroup vm = k.rootCgroup().mkdir("vm");
        vm.setPidsMax(1);
        Process p = owner(k, Rlimits.INFINITY, vm);
        KthreadWorker w = KthreadWorker.create(p.mainTask(), IDLE, "vhost-" + p.pid(), Carrier.PLATFORM);
        // vhost_attach_cgroups before 6.4: cgroup_attach_task_all does not enforce pids.max.
        k.attachTask(w.task(), vm);
        assertEquals(2, vm.pidsCurrent());
        assertTrue(vm.pidsCurrent() > vm.pidsMax(), "the pre-6.4 excess, reproduced");
        w.stop();
        assertEquals(1, vm.pidsCurrent());
    }

    @Test
    void spawnIsSubjectToTheLimitsToo() throws Exception {
        Cgroup vm = k.rootCgroup().mkdir("vm");
        vm.setPidsMax(1);
        owner(k, Rlimits.INFINITY, vm);
        assertEquals(Errno.EAGAIN, assertThrows(ErrnoException.class,
                () -> owner(k, Rlimits.INFINITY, vm)).errno());
        assertEquals(Errno.EAGAIN, assertThrows(ErrnoException.class,
                () -> owner(k, 1, k.rootCgroup())).errno());
        assertEquals(1, k.ucounts().count(UID));
        assertEquals(1, vm.pidsCurrent());
    }
}
