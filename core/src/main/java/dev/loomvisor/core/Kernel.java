package dev.loomvisor.core;

import static dev.loomvisor.core.KernelCloneArgs.CLONE_FILES;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_FS;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_PARENT;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_SIGHAND;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_THREAD;
import static dev.loomvisor.core.KernelCloneArgs.CLONE_VM;

import dev.loomvisor.core.inject.Delays;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One emulated kernel: the process table, init (pid 1) and {@link Kthreadd} (pid 2), the root cgroup, the
 * per-user task counts and the system-wide threads-max. Instances are independent; tests make their own.
 *
 * <p>{@link #copyProcess} is the only way a task is born, and it follows reference section 1 step by step.
 */
public final class Kernel {

    /** The default of kernel.threads-max when none is given (the kernel derives it from RAM). */
    public static final int DEFAULT_THREADS_MAX = 1 << 20;

    /** pid_max's default: pids wrap here (the emulation never reuses a pid still in the table). */
    private static final int PID_MAX = 4 * 1024 * 1024;

    private final AtomicInteger lastPid = new AtomicInteger();
    private final ConcurrentSkipListMap<Integer, Process> processes = new ConcurrentSkipListMap<>();
    private final ConcurrentHashMap<Integer, Task> tasks = new ConcurrentHashMap<>();
    private final UCounts ucounts = new UCounts();
    private final Cgroup rootCgroup = Cgroup.newRoot();
    private final AtomicInteger nrThreads = new AtomicInteger();
    private volatile int threadsMax;
    private final AtomicInteger liveVirtual = new AtomicInteger();
    private final AtomicInteger livePlatform = new AtomicInteger();
    private final Process init;
    private final Kthreadd kthreadd;
    private final Freezer freezer = new Freezer(this);

    /**
     * Test probe: runs inside copyProcess between the early signal check and the late one, where a real
     * fork can be hit by a signal (reference section 1, steps 2 and 9).
     */
    volatile Runnable copyProcessProbe;

    public Kernel() {
        this(DEFAULT_THREADS_MAX);
    }

    public Kernel(int threadsMax) {
        if (threadsMax < 1) {
            throw new IllegalArgumentException("threads-max " + threadsMax);
        }
        this.threadsMax = threadsMax;
        this.init = bootProcess("init", false);
        // kthreadd: root, every signal ignored, never frozen, the root cgroup (reference section 2).
        this.kthreadd = new Kthreadd(this, bootProcess("kthreadd", true));
    }

    private Process bootProcess(String comm, boolean kthread) {
        int pid = allocPid();
        Process p = new Process(this, pid, null, Rlimits.unlimited());
        Credentials root = Credentials.root();
        Mm mm = kthread ? null : new Mm();
        Task t = new Task(this, pid, comm, kthread ? Task.PF_KTHREAD | Task.PF_NOFREEZE : 0, p, root, rootCgroup,
                mm, new FsStruct("/"), new FileTable(), new SigHand(kthread), 0L, false, null,
                Carrier.PLATFORM, null, null);
        charge(t);
        attach(t, p, true);
        return p;
    }

    // ---- accessors ----

    /** pid 1. */
    public Process init() {
        return init;
    }

    /** pid 2 with kernel/kthread.c: forks, stops and lends an mm to every kthread. */
    public Kthreadd kthreadd() {
        return kthreadd;
    }

    /** The system freezer (suspend's freeze_processes / thaw_processes). */
    public Freezer freezer() {
        return freezer;
    }

    public Cgroup rootCgroup() {
        return rootCgroup;
    }

    public UCounts ucounts() {
        return ucounts;
    }

    /** nr_threads: tasks alive in the whole kernel. */
    public int nrThreads() {
        return nrThreads.get();
    }

    public int threadsMax() {
        return threadsMax;
    }

    /** sysctl kernel.threads-max. */
    public void setThreadsMax(int max) {
        if (max < 1) {
            throw new IllegalArgumentException("threads-max " + max);
        }
        threadsMax = max;
    }

    public Process process(int pid) {
        return processes.get(pid);
    }

    /** The process table by ascending pid, as {@code ls /proc} lists it. */
    public List<Process> processes() {
        return new ArrayList<>(processes.values());
    }

    /**
     * ps -eL: every live task by process, then tid. User workers are listed as threads of their owner, never
     * as processes ({@link #processes()} has no row for them); kthreads are processes under kthreadd.
     */
    public List<TaskStat> listTasks() {
        List<TaskStat> rows = new ArrayList<>();
        for (Process p : processes.values()) {
            rows.addAll(p.threads());
        }
        return rows;
    }

    public Task task(int tid) {
        return tasks.get(tid);
    }

    /** Java threads of started tasks still running their body, by carrier. */
    public int liveThreads(Carrier carrier) {
        return carrier == Carrier.VIRTUAL ? liveVirtual.get() : livePlatform.get();
    }

    void threadStarted(Carrier c) {
        (c == Carrier.VIRTUAL ? liveVirtual : livePlatform).incrementAndGet();
    }

    void threadEnded(Carrier c) {
        (c == Carrier.VIRTUAL ? liveVirtual : livePlatform).decrementAndGet();
    }

    private int allocPid() {
        for (;;) {
            int pid = lastPid.updateAndGet(p -> p >= PID_MAX ? 300 : p + 1);
            if (!tasks.containsKey(pid)) {
                return pid;
            }
        }
    }

    // ---- process creation ----

    /**
     * A user process: what fork from init, setuid, setrlimit, a move into {@code cgroup} and execve would
     * leave behind. Its main task has no thread of its own: it stands for the calling thread ("current").
     * The same limits as for a fork apply (execve after setuid checks RLIMIT_NPROC, the fork itself
     * pids.max and threads-max), so spawning can fail with EAGAIN.
     */
    public Process spawn(String comm, Credentials cred, Rlimits rlimits, Cgroup cgroup) throws ErrnoException {
        int charged = 0;
        long count = ucounts.increment(cred.uid());
        charged = 1;
        try {
            if (count > rlimits.nproc() && !exemptFromNproc(cred)) {
                throw new ErrnoException(Errno.EAGAIN, "RLIMIT_NPROC " + rlimits.nproc() + " of uid " + cred.uid());
            }
            if (nrThreads.incrementAndGet() > threadsMax) {
                charged = 2;
                throw new ErrnoException(Errno.EAGAIN, "threads-max " + threadsMax);
            }
            charged = 2;
            if (!cgroup.tryChargePid()) {
                throw new ErrnoException(Errno.EAGAIN, "pids.max of " + cgroup.path());
            }
            charged = 3;
            int pid = allocPid();
            Process p = new Process(this, pid, init, rlimits);
            Task t = new Task(this, pid, Task.comm(comm), 0, p, cred, cgroup, new Mm(), new FsStruct("/"),
                    new FileTable(), new SigHand(false), 0L, false, Signal.SIGCHLD, Carrier.PLATFORM, null, null);
            attach(t, p, true);
            return p;
        } catch (ErrnoException e) {
            undo(charged, cred.uid(), cgroup);
            throw e;
        }
    }

    private static boolean exemptFromNproc(Credentials cred) {
        // Reference section 1, step 6: INIT_USER, CAP_SYS_RESOURCE and CAP_SYS_ADMIN pass.
        return cred.isRoot() || cred.capable(Capability.CAP_SYS_RESOURCE) || cred.capable(Capability.CAP_SYS_ADMIN);
    }

    /**
     * copy_process: creates a task from {@code caller} as {@code args} say, not yet running (start it with
     * {@link Task#start()}). Every check of reference section 1, in the kernel's order; every charge is
     * undone when a later step fails, so a failed clone leaves no count changed.
     *
     * @throws ErrnoException EINVAL (flags), ERESTARTNOINTR (a signal pending in the caller), EAGAIN
     *     (RLIMIT_NPROC, threads-max, pids.max), EINTR (a fatal signal arrived during the clone)
     */
    public Task copyProcess(Task caller, KernelCloneArgs args) throws ErrnoException {
        if (caller.kernel() != this) {
            throw new IllegalArgumentException(caller + " belongs to another kernel");
        }
        long flags = args.flags();
        // Step 1: flag sanity. Thread groups share signal handlers, shared handlers need a shared mm.
        if ((flags & CLONE_THREAD) != 0 && (flags & CLONE_SIGHAND) == 0) {
            throw new ErrnoException(Errno.EINVAL, "CLONE_THREAD without CLONE_SIGHAND");
        }
        if ((flags & CLONE_SIGHAND) != 0 && (flags & CLONE_VM) == 0) {
            throw new ErrnoException(Errno.EINVAL, "CLONE_SIGHAND without CLONE_VM");
        }
        // Step 2: a signal already pending restarts the fork after it is handled (task_sigpending).
        if (caller.signalPending()) {
            throw new ErrnoException(Errno.ERESTARTNOINTR, "signal pending in " + caller);
        }
        Runnable probe = copyProcessProbe;
        if (probe != null) {
            probe.run();
        }
        // Step 3: task flags. PF_KTHREAD is never inherited; a user worker blocks all but SIGKILL/SIGSTOP.
        // PF_NOFREEZE is inherited (kthreadd's children are not freezable unless they opt in).
        int pf = caller.flags() & Task.PF_NOFREEZE;
        if (args.kthread()) {
            pf |= Task.PF_KTHREAD;
        }
        long blocked = caller.signals().blocked();
        if (args.userWorker()) {
            pf |= Task.PF_USER_WORKER;
            blocked = Signal.ALL & ~Signal.UNBLOCKABLE;
        }
        if (args.ioThread()) {
            pf |= Task.PF_IO_WORKER;
        }
        // Step 4: the name, truncated to TASK_COMM_LEN - 1.
        String comm = Task.comm(args.name() != null ? args.name() : caller.comm());
        // Step 5: credentials (CLONE_THREAD shares the caller's; they are immutable, so a copy is the same
        // value), and one more task for the user.
        Credentials cred = caller.cred();
        Process callerProcess = caller.process();
        Cgroup cgroup = caller.cgroup();
        long count = ucounts.increment(cred.uid());
        int charged = 1;
        try {
            // Step 6: RLIMIT_NPROC of the caller, on the value this clone produced, then threads-max.
            long nproc = callerProcess.rlimits().nproc();
            if (count > nproc && !exemptFromNproc(cred)) {
                throw new ErrnoException(Errno.EAGAIN, "RLIMIT_NPROC " + nproc + " of uid " + cred.uid());
            }
            charged = 2;
            if (nrThreads.incrementAndGet() > threadsMax) {
                throw new ErrnoException(Errno.EAGAIN, "threads-max " + threadsMax);
            }
            // Step 7: files, fs, signal handlers, signal struct + rlimits, mm, each by its flag.
            FileTable files;
            if (args.noFiles()) {
                files = null; // no table at all, whatever CLONE_FILES says
            } else if ((flags & CLONE_FILES) != 0 || caller.files() == null) {
                files = caller.files() != null ? caller.files() : new FileTable();
            } else {
                files = caller.files().copy();
            }
            FsStruct fs = (flags & CLONE_FS) != 0 ? caller.fs() : caller.fs().copy();
            SigHand sighand = (flags & CLONE_SIGHAND) != 0 ? caller.sighand() : caller.sighand().copy();
            Mm mm;
            if (args.kthread()) {
                mm = null; // a kthread has no mm of its own
            } else if ((flags & CLONE_VM) != 0) {
                mm = caller.ownMm();
            } else {
                mm = new Mm();
            }
            // Step 8: the pids controller of the caller's cgroup, checked up the hierarchy.
            if (!cgroup.tryChargePid()) {
                throw new ErrnoException(Errno.EAGAIN, "pids.max of " + cgroup.path());
            }
            charged = 3;
            int tid = allocPid();
            boolean thread = (flags & CLONE_THREAD) != 0;
            Process group = thread ? callerProcess
                    : new Process(this, tid, (flags & CLONE_PARENT) != 0 ? callerProcess.parent() : callerProcess,
                            callerProcess.rlimits());
            Task child = new Task(this, tid, comm, pf, group, cred, cgroup, mm, fs, files, sighand, blocked,
                    args.ignoreSignals(), args.exitSignal(), args.carrier(), args.fn(), args.fnArg());
            // Step 9: "Let kill terminate clone/fork in the middle": under the siglock, a fatal signal that
            // came after step 2 fails the clone (EINTR); a group already exiting takes no new thread.
            callerProcess.siglock.lock();
            try {
                if (caller.fatalSignalPending() || (thread && callerProcess.isExiting())) {
                    throw new ErrnoException(Errno.EINTR, "fatal signal during clone from " + caller);
                }
                attach(child, group, !thread);
            } finally {
                callerProcess.siglock.unlock();
            }
            return child;
        } catch (ErrnoException e) {
            undo(charged, cred.uid(), cgroup);
            throw e;
        }
    }

    private void undo(int charged, int uid, Cgroup cgroup) {
        if (charged >= 3) {
            cgroup.unchargePid();
        }
        if (charged >= 2) {
            nrThreads.decrementAndGet();
        }
        ucounts.decrement(uid);
    }

    /** The charges of a boot task (init, kthreadd), which no limit refuses. */
    private void charge(Task t) {
        ucounts.increment(t.cred().uid());
        nrThreads.incrementAndGet();
        t.cgroup().chargePid();
    }

    private void attach(Task t, Process group, boolean leader) {
        if (t.ownMm() != null) {
            t.ownMm().get();
        }
        if (t.files() != null) {
            t.files().get();
        }
        if (leader) {
            group.setLeader(t);
            processes.put(group.pid(), group);
        }
        group.addTask(t);
        tasks.put(t.tid(), t);
    }

    /**
     * cgroup_attach_task: moves a task to another cgroup. Migration charges pids without enforcing pids.max
     * (pids_can_attach), which is how the pre-6.4 vhost worker could push its owner's cgroup over the limit.
     */
    public void attachTask(Task t, Cgroup to) {
        Cgroup from = t.cgroup();
        if (from == to) {
            return;
        }
        to.chargePid();
        t.setCgroup(to);
        from.unchargePid();
    }

    // ---- release ----

    /** release_task for a task whose body returned. */
    void releaseTask(Task t) {
        if (t.markDead()) {
            Delays.at(Delays.Point.RELEASE_AFTER_MARK_DEAD);
            doRelease(t);
        }
    }

    /** At process exit: a task never started is released without running; a started one is waited for. */
    void releaseUnstarted(Task t) {
        if (t.markDeadIfUnstarted()) {
            doRelease(t);
        } else {
            t.awaitExit();
        }
    }

    private void doRelease(Task t) {
        Process group = t.process();
        boolean last;
        group.siglock.lock();
        try {
            group.removeTask(t);
            last = !group.hasTasks();
            if (last) {
                processes.remove(group.pid(), group);
            }
        } finally {
            group.siglock.unlock();
        }
        tasks.remove(t.tid(), t);
        if (t.ownMm() != null) {
            t.ownMm().put();
        }
        ucounts.decrement(t.cred().uid());
        nrThreads.decrementAndGet();
        t.cgroup().unchargePid();
        if (t.files() != null) {
            t.files().put();
        }
        // Dead only now that every charge is back (and the last task's files are closed): whoever waits for
        // a dead task or process may read the counts at once.
        t.markReleased();
        if (last) {
            group.markDead();
        }
    }
}
