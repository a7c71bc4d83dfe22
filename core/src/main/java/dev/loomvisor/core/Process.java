package dev.loomvisor.core;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A thread group (struct signal_struct with its tasks): pid, credentials, rlimits, cgroup, mm, file table,
 * shared signal state, and the tasks listed the way {@code /proc/<pid>/task} lists them.
 *
 * <p>The process's credentials, cgroup, mm and files are those of its main task (the group leader); the
 * other tasks share them when cloned with the matching CLONE_* flag.
 */
public final class Process {

    private final Kernel kernel;
    private final int pid;
    private final Process parent;
    private volatile Rlimits rlimits;
    private final AtomicLong sharedPending = new AtomicLong();
    private final ConcurrentSkipListMap<Integer, Task> tasks = new ConcurrentSkipListMap<>();
    /** siglock: orders the late fatal-signal check and the attach of a new thread against group exit. */
    final ReentrantLock siglock = new ReentrantLock();
    private volatile Task leader;
    private volatile boolean exiting;
    private volatile boolean dead;

    Process(Kernel kernel, int pid, Process parent, Rlimits rlimits) {
        this.kernel = kernel;
        this.pid = pid;
        this.parent = parent;
        this.rlimits = rlimits;
    }

    void setLeader(Task t) {
        this.leader = t;
    }

    public Kernel kernel() {
        return kernel;
    }

    /** The thread-group id, which is the tid of the main task. */
    public int pid() {
        return pid;
    }

    public Process parent() {
        return parent;
    }

    /** The main task (group leader): for a spawned process it stands for the calling thread, "current". */
    public Task mainTask() {
        return leader;
    }

    public Credentials cred() {
        return leader.cred();
    }

    public Rlimits rlimits() {
        return rlimits;
    }

    /** setrlimit for the whole thread group (the limits live in signal_struct, shared by its threads). */
    public void setRlimits(Rlimits r) {
        this.rlimits = java.util.Objects.requireNonNull(r);
    }

    public Cgroup cgroup() {
        return leader.cgroup();
    }

    public Mm mm() {
        return leader.ownMm();
    }

    public FileTable files() {
        return leader.files();
    }

    public String comm() {
        return leader.comm();
    }

    /** The live tasks by ascending tid, as {@code ls /proc/<pid>/task} shows them. */
    public List<Task> tasks() {
        return new ArrayList<>(tasks.values());
    }

    /** The tids of {@link #tasks()}. */
    public List<Integer> taskIds() {
        return new ArrayList<>(tasks.keySet());
    }

    public Task task(int tid) {
        return tasks.get(tid);
    }

    public boolean isExiting() {
        return exiting;
    }

    /** True once every task was released and the pid left the process table. */
    public boolean isDead() {
        return dead;
    }

    // ---- signal state ----

    void queueShared(Signal sig) {
        sharedPending.getAndUpdate(p -> p | sig.mask());
    }

    long sharedPending() {
        return sharedPending.get();
    }

    Signal dequeueShared(long blocked) {
        for (;;) {
            long p = sharedPending.get();
            long deliverable = p & ~blocked;
            if (deliverable == 0) {
                return null;
            }
            Signal s = Signal.first(deliverable);
            if (sharedPending.compareAndSet(p, p & ~s.mask())) {
                return s;
            }
        }
    }

    /**
     * kill(pid, sig): a signal to the whole thread group, delivered to each task as {@link Signals} says
     * (SIGKILL reaches every thread, user workers included: reference section 3).
     */
    public void kill(Signal sig) {
        Signals.killGroup(this, sig);
    }

    /**
     * exit_group: SIGKILL to every other task (zap_other_threads, past any disposition), wait until each
     * has left (a user worker runs its SIGKILL path), reap the ones never started, then release the main
     * task, which drops the last reference to the file table and so closes the process's files. Afterwards
     * every ucounts, threads and pids charge of the process is returned. Unlike exec and a coredump, the
     * group's exit waits for its user workers too: the process is gone only when its last thread is.
     * Idempotent; must not be called from one of the process's own task threads other than the main one.
     */
    public void exit() {
        List<Task> members;
        siglock.lock();
        try {
            if (exiting) {
                return;
            }
            exiting = true;
            // A snapshot: a killed worker leaves the table on its own before its thread has ended, and
            // it is the thread we must wait for.
            members = tasks();
            Signals.zapOtherThreads(this, leader);
            leader.signals().force(Signal.SIGKILL);
        } finally {
            siglock.unlock();
        }
        reapAll(members);
    }

    private void reapAll(List<Task> members) {
        Task main = leader;
        for (Task t : members) {
            if (t != main) {
                reap(t);
            }
        }
        reap(main);
    }

    /**
     * execve from the main task (de_thread): every other thread is killed and waited for, except user
     * workers, which are killed but left to leave by their own SIGKILL path ("Don't require de_thread to
     * wait for the vhost_worker"); the process keeps its pid and takes the new name.
     *
     * @throws ErrnoException EAGAIN if the group is already exiting (another exit or dump won)
     */
    public void execve(String comm) throws ErrnoException {
        List<Task> waitFor;
        List<Task> workers = new ArrayList<>();
        siglock.lock();
        try {
            if (exiting) {
                throw new ErrnoException(Errno.EAGAIN, this + " is exiting");
            }
            waitFor = Signals.zapOtherThreads(this, leader);
            for (Task t : tasks.values()) {
                if (t != leader && !waitFor.contains(t)) {
                    workers.add(t);
                }
            }
        } finally {
            siglock.unlock();
        }
        for (Task t : waitFor) {
            reap(t);
        }
        // A worker that never started would never see its SIGKILL; no one else releases it.
        for (Task t : workers) {
            if (t.thread() == null || !t.isStarted()) {
                kernel.releaseUnstarted(t);
            }
        }
        leader.setComm(Task.comm(comm));
    }

    /**
     * do_coredump after the main task took {@code sig} (zap_threads, then the dump, then the group's exit):
     * SIGKILL to every other thread; the dump waits for the threads that take part, and not for user workers,
     * which "do not participate in coredumps": they run their SIGKILL path meanwhile. {@code corePattern}
     * receives the dump (core_pattern's pipe reader) before the group exits; the group's exit then waits for
     * every thread, user workers included, as {@link #exit()} does.
     *
     * @throws ErrnoException EAGAIN if the group is already exiting (zap_threads: a group exit won)
     */
    public CoreDump coredump(Signal sig, java.util.function.Consumer<CoreDump> corePattern) throws ErrnoException {
        List<Task> members;
        List<Task> waitFor;
        siglock.lock();
        try {
            if (exiting) {
                throw new ErrnoException(Errno.EAGAIN, this + " is exiting");
            }
            exiting = true; // SIGNAL_GROUP_EXIT: no new thread joins, no second dump or exit starts
            members = tasks();
            waitFor = Signals.zapOtherThreads(this, leader);
        } finally {
            siglock.unlock();
        }
        List<Integer> dumped = new ArrayList<>();
        dumped.add(leader.tid());
        for (Task t : waitFor) {
            reap(t);
            dumped.add(t.tid());
        }
        CoreDump dump = new CoreDump(pid, comm(), sig, dumped);
        corePattern.accept(dump);
        leader.signals().force(Signal.SIGKILL);
        reapAll(members);
        return dump;
    }

    /** ps -L for this process: one row per live task, by tid. */
    public List<TaskStat> threads() {
        List<TaskStat> rows = new ArrayList<>();
        for (Task t : tasks.values()) {
            rows.add(TaskStat.of(t));
        }
        return rows;
    }

    /** Waits for a started task's thread to end, or releases a task that never started. */
    private void reap(Task t) {
        if (t.thread() == null || !t.isStarted()) {
            kernel.releaseUnstarted(t);
        } else {
            t.awaitExit();
        }
    }

    void markDead() {
        dead = true;
    }

    void removeTask(Task t) {
        tasks.remove(t.tid());
    }

    void addTask(Task t) {
        tasks.put(t.tid(), t);
    }

    boolean hasTasks() {
        return !tasks.isEmpty();
    }

    @Override
    public String toString() {
        return "process " + pid + (leader == null ? "" : " (" + leader.comm() + ")");
    }
}
