package dev.loomvisor.core;

import dev.loomvisor.core.worker.VhostTask;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_FILES;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_SIGHAND;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_THREAD;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_VM;
import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.owner;
import static dev.loomvisor.core.KernelFixture.plainThread;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Reference section 1: copy_process's checks in order, each failure typed, every charge undone. */
class CopyProcessTest {

    private final Kernel k = new Kernel();

    /** The counts a failed clone must leave as they were. */
    private record Counts(long ucount, int nrThreads, long pids, int tasks) {
        static Counts of(Kernel k, Process p) {
            return new Counts(k.ucounts().count(UID), k.nrThreads(), p.cgroup().pidsCurrent(), p.tasks().size());
        }
    }

    @Test
    void bootHasInitAndKthreaddAsRootInTheRootCgroup() {
        assertEquals(1, k.init().pid());
        Process kthreadd = k.kthreadd().process();
        assertEquals(2, kthreadd.pid());
        assertEquals("kthreadd", kthreadd.comm());
        assertTrue(kthreadd.cred().isRoot());
        assertSame(k.rootCgroup(), kthreadd.cgroup());
        assertTrue(kthreadd.mainTask().hasFlag(Task.PF_KTHREAD | Task.PF_NOFREEZE));
        assertTrue(kthreadd.mainTask().signals().ignoresAll());
        assertEquals(2, k.nrThreads());
        assertEquals(List.of(1, 2), k.processes().stream().map(Process::pid).toList());
    }

    @Test
    void threadWithoutSighandAndSighandWithoutVmAreEinval() throws Exception {
        Process p = owner(k);
        Counts before = Counts.of(k, p);
        var e1 = assertThrows(ErrnoException.class, () -> k.copyProcess(p.mainTask(),
                new KernelCloneArgs().flags(CLONE_THREAD | CLONE_VM)));
        assertEquals(Errno.EINVAL, e1.errno());
        var e2 = assertThrows(ErrnoException.class, () -> k.copyProcess(p.mainTask(),
                new KernelCloneArgs().flags(CLONE_SIGHAND)));
        assertEquals(Errno.EINVAL, e2.errno());
        assertEquals(before, Counts.of(k, p));
    }

    @Test
    void aSignalAlreadyPendingInTheCallerRestartsTheFork() throws Exception {
        Process p = owner(k);
        Counts before = Counts.of(k, p);
        p.mainTask().sendSignal(Signal.SIGUSR1);
        var e = assertThrows(ErrnoException.class, () -> plainThread(p));
        assertEquals(Errno.ERESTARTNOINTR, e.errno());
        assertEquals(before, Counts.of(k, p));
        // Once handled (dequeued) the fork goes through.
        assertEquals(Signal.SIGUSR1, p.mainTask().signals().dequeue());
        assertNotNull(plainThread(p));
    }

    @Test
    void aGroupSignalPendingAlsoRestartsButABlockedOneDoesNot() throws Exception {
        Process p = owner(k);
        p.mainTask().signals().setBlocked(Signal.SIGUSR2.mask());
        p.kill(Signal.SIGUSR2);
        assertNotNull(plainThread(p), "a blocked signal is not pending for the caller");
        p.kill(Signal.SIGTERM);
        assertEquals(Errno.ERESTARTNOINTR, assertThrows(ErrnoException.class, () -> plainThread(p)).errno());
    }

    @Test
    void aFatalSignalDuringTheCloneIsEintrWithEveryChargeUndone() throws Exception {
        Cgroup cg = k.rootCgroup().mkdir("vm");
        cg.setPidsMax(10);
        Process p = owner(k, 10, cg);
        Counts before = Counts.of(k, p);
        long rootPids = k.rootCgroup().pidsCurrent();
        // The probe runs after the early signal check, where the kernel drops the siglock.
        k.copyProcessProbe = () -> p.mainTask().sendSignal(Signal.SIGKILL);
        try {
            var e = assertThrows(ErrnoException.class,
                    () -> VhostTask.create(p.mainTask(), KernelFixture.IDLE, KernelFixture.NO_SIGKILL, "vhost-x"));
            assertEquals(Errno.EINTR, e.errno());
        } finally {
            k.copyProcessProbe = null;
        }
        assertEquals(before, Counts.of(k, p));
        assertEquals(rootPids, k.rootCgroup().pidsCurrent());
        assertTrue(p.mainTask().fatalSignalPending());
    }

    @Test
    void noFilesLeavesNoFileTableEvenWithCloneFiles() throws Exception {
        Process p = owner(k);
        Task t = k.copyProcess(p.mainTask(), new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS).noFiles(true));
        assertNull(t.files());
        Task shared = k.copyProcess(p.mainTask(), new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS));
        assertSame(p.files(), shared.files());
        assertEquals(2, p.files().users());
        Task copied = k.copyProcess(p.mainTask(),
                new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS & ~CLONE_FILES));
        assertNotNull(copied.files());
        assertNotSame(p.files(), copied.files());
    }

    @Test
    void taskFlagsSignalsAndNameFollowTheArgs() throws Exception {
        Process p = owner(k);
        Task caller = p.mainTask();
        caller.signals().setBlocked(Signal.SIGUSR1.mask());
        Task uw = k.copyProcess(caller, new KernelCloneArgs().flags(KernelCloneArgs.VHOST_TASK_FLAGS)
                .userWorker(true).noFiles(true).name("a-name-longer-than-fifteen"));
        assertEquals(Task.PF_USER_WORKER, uw.flags());
        assertEquals("a-name-longer-t", uw.comm());
        assertEquals(Task.TASK_COMM_LEN - 1, uw.comm().length());
        assertEquals(Signal.ALL & ~Signal.UNBLOCKABLE, uw.signals().blocked(), "all but SIGKILL and SIGSTOP blocked");

        Task io = k.copyProcess(caller, new KernelCloneArgs().flags(KernelCloneArgs.IO_THREAD_FLAGS)
                .ioThread(true).userWorker(true).name("iou-wrk"));
        assertEquals(Task.PF_IO_WORKER | Task.PF_USER_WORKER, io.flags());
        assertSame(p.files(), io.files());

        Task plain = plainThread(p);
        assertEquals(0, plain.flags());
        assertEquals(Signal.SIGUSR1.mask(), plain.signals().blocked(), "an ordinary thread inherits the caller's mask");
        Task unnamed = k.copyProcess(caller, new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS));
        assertEquals(caller.comm(), unnamed.comm(), "no name keeps the caller's comm");
        assertEquals("qemu-system-x86", caller.comm());
    }

    @Test
    void threadsShareTheGroupAndAreListedLikeProcTask() throws Exception {
        Process p = owner(k);
        Task a = plainThread(p);
        Task b = VhostTask.create(p.mainTask(), KernelFixture.IDLE, KernelFixture.NO_SIGKILL, "vhost-1").task();
        assertSame(p, a.process());
        assertSame(p, b.process());
        assertEquals(List.of(p.pid(), a.tid(), b.tid()), p.taskIds());
        assertSame(p.mm(), b.mm());
        assertSame(p.mainTask().fs(), b.fs());
        assertSame(p.mainTask().sighand(), b.sighand());
        assertSame(p.cred(), b.cred());
        assertEquals(3, p.mm().users());
        assertSame(b, k.task(b.tid()));
    }

    @Test
    void withoutCloneThreadTheChildIsANewProcess() throws Exception {
        Process p = owner(k);
        Task child = k.copyProcess(p.mainTask(), new KernelCloneArgs().flags(0).exitSignal(Signal.SIGCHLD).name("child"));
        Process cp = child.process();
        assertNotSame(p, cp);
        assertEquals(child.tid(), cp.pid());
        assertSame(p, cp.parent());
        assertNotSame(p.mm(), child.mm());
        assertNotSame(p.mainTask().fs(), child.fs());
        assertEquals(p.rlimits(), cp.rlimits());
        assertSame(cp, k.process(cp.pid()));
        assertEquals(Signal.SIGCHLD, child.exitSignal());
        cp.exit();
        assertTrue(cp.isDead());
        assertNull(k.process(cp.pid()));
    }

    @Test
    void threadsMaxRefusesWithEagain() throws Exception {
        Kernel small = new Kernel(4);
        Process p = owner(small); // init, kthreadd, the owner: 3
        assertNotNull(plainThread(p));
        int before = small.nrThreads();
        assertEquals(Errno.EAGAIN, assertThrows(ErrnoException.class, () -> plainThread(p)).errno());
        assertEquals(before, small.nrThreads());
        assertEquals(2, small.ucounts().count(UID));
    }

    @Test
    void kthreadsAreForkedByKthreaddAsRootWithoutMm() throws Exception {
        Process p = owner(k);
        Task kt = k.kthreadd().create(arg -> 0, null, "vhost-" + p.pid(), dev.loomvisor.core.Carrier.PLATFORM);
        assertTrue(kt.hasFlag(Task.PF_KTHREAD));
        assertNull(kt.mm());
        assertTrue(kt.cred().isRoot());
        assertSame(k.kthreadd().process(), kt.process().parent());
        assertSame(k.rootCgroup(), kt.cgroup());
        assertTrue(kt.signals().ignoresAll());
        kt.process().kill(Signal.SIGKILL);
        assertFalse(kt.fatalSignalPending(), "kthreads ignore SIGKILL");
        assertEquals(0, k.kthreadd().stop(kt));
        assertTrue(kt.isDead());
    }

    @Test
    void ignoreSignalsDropsEverySignalIncludingSigkill() throws Exception {
        Process p = owner(k);
        Task t = k.copyProcess(p.mainTask(), new KernelCloneArgs().flags(KernelCloneArgs.VHOST_TASK_FLAGS)
                .userWorker(true).noFiles(true).ignoreSignals(true));
        p.kill(Signal.SIGKILL);
        assertFalse(t.fatalSignalPending());
        assertTrue(p.mainTask().fatalSignalPending());
    }

    @Test
    void errnoCarriesTheLinuxNumbers() {
        assertEquals(11, Errno.EAGAIN.number());
        assertEquals(4, Errno.EINTR.number());
        assertEquals(22, Errno.EINVAL.number());
        assertEquals(513, Errno.ERESTARTNOINTR.number());
        assertEquals(105, Errno.ENOBUFS.number());
        assertSame(Errno.EBUSY, Errno.of(16));
        assertEquals(Errno.EPERM, new ErrnoException(Errno.EPERM).errno());
    }
}
