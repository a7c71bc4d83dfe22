package dev.loomvisor.core;

import dev.loomvisor.core.worker.Carrier;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A schedulable entity (struct task_struct): one thread of a {@link Process}. Born only from
 * {@link Kernel#copyProcess}; started by its creator ({@link #start()}, wake_up_new_task); released when its
 * body returns or its process exits.
 *
 * <p>Scheduling follows the kernel's sleep/wake protocol so that a worker loop reads like its C original:
 * {@link #setCurrentStateInterruptible()} marks the task about to sleep, {@link #schedule()} sleeps unless a
 * {@link #wakeUpProcess()} came in between, and the wake never gets lost because it turns the state back to
 * running before the sleeper commits to parking (reference section 3, "about to sleep").
 *
 * <p>Memory layout of the scheduling word: {@link #TASK_RUNNING} = 0, {@link #TASK_INTERRUPTIBLE} = 1 (marked,
 * not yet parked), {@link #TASK_PARKED} = 2 (committed to park; only a waker that sees this unparks).
 */
public final class Task {

    // Task flags (include/linux/sched.h).
    public static final int PF_IO_WORKER = 0x00000010;
    public static final int PF_USER_WORKER = 0x00004000;
    public static final int PF_NOFREEZE = 0x00008000;
    public static final int PF_KTHREAD = 0x00200000;

    /** TASK_COMM_LEN: 15 characters and the NUL. */
    public static final int TASK_COMM_LEN = 16;

    public static final int TASK_RUNNING = 0;
    public static final int TASK_INTERRUPTIBLE = 1;
    public static final int TASK_PARKED = 2;

    private static final int NEW = 0;
    private static final int STARTED = 1;
    private static final int DEAD = 2;

    private static final VarHandle STATE;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(Task.class, "state", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static final ScopedValue<Task> CURRENT = ScopedValue.newInstance();

    private final Kernel kernel;
    private final int tid;
    private final String comm;
    private final int flags;
    private final Process process;
    private final Credentials cred;
    private final Mm ownMm;
    private final FsStruct fs;
    private final FileTable files;
    private final SigHand sighand;
    private final boolean ignoreSignals;
    private final Signal exitSignal;
    private final Carrier carrier;
    private final KernelCloneArgs.Fn fn;
    private final Object fnArg;
    private final Thread thread;

    private volatile Cgroup cgroup;
    /** The mm in use: the task's own, or one a kthread borrowed (kthread_use_mm). */
    private volatile Mm mm;
    private volatile long blocked;
    private final AtomicLong pending = new AtomicLong();
    /** Group stop (SIGSTOP) in effect for this task until SIGCONT or SIGKILL. */
    private volatile boolean jobctlStopped;
    private volatile boolean kthreadShouldStop;
    @SuppressWarnings("unused") // accessed through STATE
    private volatile int state;
    private final AtomicInteger lifecycle = new AtomicInteger(NEW);
    private volatile int exitCode;
    /** Set after every charge was returned (see {@link #isDead()}). */
    private volatile boolean released;
    /** Released by a process exit before it ever ran: its thread will never start. */
    private volatile boolean reapedUnstarted;

    Task(Kernel kernel, int tid, String comm, int flags, Process process, Credentials cred, Cgroup cgroup, Mm mm,
            FsStruct fs, FileTable files, SigHand sighand, long blocked, boolean ignoreSignals, Signal exitSignal,
            Carrier carrier, KernelCloneArgs.Fn fn, Object fnArg) {
        this.kernel = kernel;
        this.tid = tid;
        this.comm = comm;
        this.flags = flags;
        this.process = process;
        this.cred = cred;
        this.cgroup = cgroup;
        this.ownMm = mm;
        this.mm = mm;
        this.fs = fs;
        this.files = files;
        this.sighand = sighand;
        this.blocked = blocked & ~Signal.UNBLOCKABLE;
        this.ignoreSignals = ignoreSignals;
        this.exitSignal = exitSignal;
        this.carrier = carrier;
        this.fn = fn;
        this.fnArg = fnArg;
        this.thread = fn == null ? null : carrier.newThread(comm, this::threadBody);
    }

    /** Copies a name into a comm: at most TASK_COMM_LEN - 1 characters (reference section 1, step 4). */
    static String comm(String name) {
        return name.length() < TASK_COMM_LEN ? name : name.substring(0, TASK_COMM_LEN - 1);
    }

    /** The task whose body runs on the calling thread, or null on a thread the kernel did not start. */
    public static Task current() {
        return CURRENT.isBound() ? CURRENT.get() : null;
    }

    public Kernel kernel() {
        return kernel;
    }

    public int tid() {
        return tid;
    }

    public String comm() {
        return comm;
    }

    public int flags() {
        return flags;
    }

    public boolean hasFlag(int pf) {
        return (flags & pf) == pf;
    }

    public Process process() {
        return process;
    }

    public Credentials cred() {
        return cred;
    }

    public Cgroup cgroup() {
        return cgroup;
    }

    void setCgroup(Cgroup c) {
        this.cgroup = c;
    }

    /** The address space in use: the task's own, a kthread's borrowed one, or null for a kthread without. */
    public Mm mm() {
        return mm;
    }

    /** The address space the task was born with (null for a kthread). */
    Mm ownMm() {
        return ownMm;
    }

    public FsStruct fs() {
        return fs;
    }

    /** The file table, or null for a task made with {@code no_files}. */
    public FileTable files() {
        return files;
    }

    public SigHand sighand() {
        return sighand;
    }

    public Signal exitSignal() {
        return exitSignal;
    }

    public Carrier carrier() {
        return carrier;
    }

    /**
     * The Java thread behind the task, or null for a task that stands for a thread the kernel did not start
     * (the main task of a spawned process, init, kthreadd, a task created without a body).
     */
    public Thread thread() {
        return thread;
    }

    public boolean isStarted() {
        return lifecycle.get() != NEW;
    }

    /**
     * True once the task was released: out of the task and process tables, its counts returned. Not the
     * life-cycle word, which turns DEAD at the start of the release (the once-guard): a caller that saw
     * a dead task and then read the counts could find them not yet returned.
     */
    public boolean isDead() {
        return released;
    }

    /** The end of release_task: every count of this task is returned. */
    void markReleased() {
        released = true;
    }

    public int exitCode() {
        return exitCode;
    }

    // ---- life cycle ----

    /**
     * wake_up_new_task: runs the body on the task's thread (reference section 1, step 10). Returns false if
     * the task was already started or already reaped (its process exited before it ran).
     */
    public boolean start() {
        if (thread == null) {
            throw new IllegalStateException("task " + tid + " (" + comm + ") has no body to run");
        }
        if (!lifecycle.compareAndSet(NEW, STARTED)) {
            return false;
        }
        kernel.threadStarted(carrier);
        try {
            thread.start();
        } catch (RuntimeException | OutOfMemoryError e) {
            // No native thread to be had: the task dies unborn and gives its charges back.
            reapedUnstarted = true;
            kernel.releaseTask(this);
            kernel.threadEnded(carrier);
            throw e;
        }
        return true;
    }

    private void threadBody() {
        try {
            exitCode = ScopedValue.where(CURRENT, this).call(() -> fn.run(fnArg));
        } catch (Throwable t) {
            // An oops in a task body: the task dies, its charges are still returned below.
            exitCode = -1;
        } finally {
            kernel.releaseTask(this);
            kernel.threadEnded(carrier);
        }
    }

    /** release_task's guard: true exactly once, for the caller that moves the task to dead. */
    boolean markDead() {
        return lifecycle.getAndSet(DEAD) != DEAD;
    }

    /** For a process exit: a task that never started is released now, or never runs. */
    boolean markDeadIfUnstarted() {
        if (lifecycle.compareAndSet(NEW, DEAD)) {
            reapedUnstarted = true;
            return true;
        }
        return false;
    }

    /** Waits, without giving up on interrupts, until the task's thread has ended (if it ever started). */
    public void awaitExit() {
        Thread t = thread;
        if (t == null || lifecycle.get() == NEW || t == Thread.currentThread()) {
            return;
        }
        // start() moved the life cycle on before it called Thread.start: wait for that call, or a join
        // would return at once on a thread that is about to run.
        while (t.getState() == Thread.State.NEW && !reapedUnstarted) {
            Thread.onSpinWait();
        }
        boolean interrupted = false;
        while (true) {
            try {
                t.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    // ---- scheduling: the sleep/wake protocol ----

    /** set_current_state(TASK_INTERRUPTIBLE): a volatile store, ordered before what the caller checks next. */
    public void setCurrentStateInterruptible() {
        STATE.setVolatile(this, TASK_INTERRUPTIBLE);
    }

    /** __set_current_state(TASK_RUNNING). */
    public void setRunning() {
        STATE.setVolatile(this, TASK_RUNNING);
    }

    public int state() {
        return (int) STATE.getVolatile(this);
    }

    /**
     * schedule() after set_current_state(TASK_INTERRUPTIBLE): parks unless a wake-up or a signal came since
     * the mark; returns running. Must be called on the task's own thread.
     */
    public void schedule() {
        // signal_pending_state: an interruptible sleeper with a signal pending does not sleep.
        if (signalPending() || !STATE.compareAndSet(this, TASK_INTERRUPTIBLE, TASK_PARKED)) {
            STATE.setVolatile(this, TASK_RUNNING);
            return;
        }
        while ((int) STATE.getVolatile(this) == TASK_PARKED) {
            LockSupport.park(this);
        }
    }

    /**
     * wake_up_process: makes a sleeping or about-to-sleep task runnable; returns true if its state changed.
     * Like try_to_wake_up it executes a full memory barrier before it reads the state, so whatever the waker
     * published before is seen by a task that checks after marking itself. Allocation-free; when the task
     * is already running it is a fence and one volatile read.
     */
    public boolean wakeUpProcess() {
        VarHandle.fullFence();
        if ((int) STATE.getVolatile(this) == TASK_RUNNING) {
            return false;
        }
        int prev = (int) STATE.getAndSet(this, TASK_RUNNING);
        if (prev == TASK_PARKED && thread != null) {
            LockSupport.unpark(thread);
        }
        return prev != TASK_RUNNING;
    }

    // ---- kthread ----

    /** kthread_should_stop(). */
    public boolean kthreadShouldStop() {
        return kthreadShouldStop;
    }

    void setKthreadShouldStop() {
        kthreadShouldStop = true;
    }

    /** kthread_use_mm: a kthread adopts a user address space (what the pre-6.4 vhost worker did). */
    public void useMm(Mm borrowed) {
        if (!hasFlag(PF_KTHREAD)) {
            throw new IllegalStateException("kthread_use_mm on a task that is not a kthread");
        }
        this.mm = borrowed;
    }

    /** kthread_unuse_mm. */
    public void unuseMm() {
        if (!hasFlag(PF_KTHREAD)) {
            throw new IllegalStateException("kthread_unuse_mm on a task that is not a kthread");
        }
        this.mm = ownMm;
    }

    // ---- signals ----

    /** The blocked signal mask. */
    public long blocked() {
        return blocked;
    }

    /** sigprocmask(SIG_SETMASK): SIGKILL and SIGSTOP are never blocked. */
    public void setBlocked(long set) {
        blocked = set & ~Signal.UNBLOCKABLE;
    }

    /** This task's private pending set (without the process's shared set). */
    public long pendingSignals() {
        return pending.get();
    }

    /** signal_pending: an unblocked signal is pending for this task or its thread group. */
    public boolean signalPending() {
        return ((pending.get() | process.sharedPending()) & ~blocked) != 0;
    }

    /** fatal_signal_pending: SIGKILL is in this task's pending set. */
    public boolean fatalSignalPending() {
        return (pending.get() & Signal.SIGKILL.mask()) != 0;
    }

    /** True if signals sent to this task are dropped: a kthread, or a task made with ignore_signals. */
    public boolean ignoresSignals() {
        return ignoreSignals || sighand.ignoresAll();
    }

    /** tgkill: sends a signal to this one task. */
    public void sendSignal(Signal sig) {
        if (ignoresSignals() || lifecycle.get() == DEAD) {
            return;
        }
        deliver(sig);
    }

    /** Posts a signal without looking at the dispositions (zap_other_threads on group exit does this). */
    void forceSignal(Signal sig) {
        deliver(sig);
    }

    private void deliver(Signal sig) {
        switch (sig) {
            case SIGCONT -> {
                // prepare_signal: SIGCONT flushes pending stop signals and resumes; default action: none queued.
                pending.getAndUpdate(p -> p & ~Signal.SIGSTOP.mask());
                jobctlStopped = false;
                unparkThread();
                return;
            }
            case SIGCHLD -> {
                return; // default-ignored: sig_ignored drops it before it is queued
            }
            case SIGSTOP -> {
                // The stop takes effect when the task next handles signals; marked here so that a SIGCONT
                // sent before then cancels it.
                jobctlStopped = true;
                pending.getAndUpdate(p -> p | Signal.SIGSTOP.mask());
            }
            case SIGKILL -> {
                pending.getAndUpdate(p -> p | Signal.SIGKILL.mask());
                jobctlStopped = false;
            }
            default -> pending.getAndUpdate(p -> p | sig.mask());
        }
        signalWakeUp();
    }

    /** signal_wake_up: an interruptible or stopped task notices the new signal. */
    void signalWakeUp() {
        wakeUpProcess();
        unparkThread();
    }

    private void unparkThread() {
        Thread t = thread;
        if (t != null) {
            LockSupport.unpark(t);
        }
    }

    /**
     * dequeue_signal: removes and returns the lowest pending unblocked signal, private set first, or null.
     * SIGKILL stays pending once seen, as the kernel keeps it for the exit path.
     */
    public Signal dequeueSignal() {
        for (;;) {
            long p = pending.get();
            long mine = p & ~blocked;
            if (mine != 0) {
                Signal s = Signal.first(mine);
                if (s == Signal.SIGKILL || pending.compareAndSet(p, p & ~s.mask())) {
                    return s;
                }
                continue;
            }
            Signal s = process.dequeueShared(blocked);
            return s;
        }
    }

    /**
     * get_signal for a kernel-created task's loop: returns true if the task must exit (SIGKILL). A SIGSTOP
     * stops it here until SIGCONT or SIGKILL (reference section 3: "SIGSTOP ... stop it like any thread").
     * Other signals have no handler in the emulation and are discarded. Call on the task's own thread.
     */
    public boolean getSignal() {
        for (;;) {
            Signal s = dequeueSignal();
            if (s == null) {
                return false;
            }
            if (s == Signal.SIGKILL) {
                return true;
            }
            if (s == Signal.SIGSTOP) {
                while (jobctlStopped && !fatalSignalPending()) {
                    LockSupport.park(this);
                }
                jobctlStopped = false;
            }
        }
    }

    /** True while the task is held by a group stop (SIGSTOP) in {@link #getSignal()}. */
    public boolean isStopped() {
        return jobctlStopped;
    }

    @Override
    public String toString() {
        return "task " + tid + " (" + comm + ")";
    }
}
