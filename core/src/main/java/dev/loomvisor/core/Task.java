package dev.loomvisor.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicInteger;
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
 * <p>Signal state and delivery live in {@link Signals} ({@link #signals()}); a kthread's stop request and
 * borrowed mm in {@link Kthreadd}.
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
    /** Changed only by execve (__set_task_comm). */
    private volatile String comm;
    private final int flags;
    private final Process process;
    private final Credentials cred;
    private final Mm ownMm;
    private final FsStruct fs;
    private final FileTable files;
    private final SigHand sighand;
    private final Signals signals;
    /** struct kthread for a PF_KTHREAD task (worker_private), else null. */
    private final Kthread kthread;
    private final Signal exitSignal;
    private final Carrier carrier;
    private final KernelCloneArgs.Fn fn;
    private final Object fnArg;
    private final Thread thread;

    private volatile Cgroup cgroup;
    /** The mm in use: the task's own, or one a kthread borrowed (kthread_use_mm). */
    private volatile Mm mm;
    @SuppressWarnings("unused") // accessed through STATE
    private volatile int state;
    /** task->nvcsw: sleeps {@link #schedule()} committed to. Written by the task's own thread only. */
    private volatile long nvcsw;
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
        this.signals = new Signals(this, blocked, ignoreSignals);
        this.kthread = (flags & PF_KTHREAD) != 0 ? new Kthread() : null;
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

    void setComm(String c) {
        this.comm = c;
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

    /** kthread_use_mm / kthread_unuse_mm ({@link Kthreadd}). */
    void setMm(Mm borrowed) {
        this.mm = borrowed;
    }

    Kthread kthread() {
        return kthread;
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
        } catch (Signals.GroupExit e) {
            exitCode = e.status;
        } catch (Throwable t) {
            // An oops in a task body: the task dies, its charges are still returned below.
            exitCode = -1;
        } finally {
            kernel.releaseTask(this);
            kernel.threadEnded(carrier);
        }
    }

    /** True once release_task began: the task takes no more signals. */
    boolean isReleasing() {
        return lifecycle.get() == DEAD;
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
        nvcsw = nvcsw + 1; // single writer: this thread
        while ((int) STATE.getVolatile(this) == TASK_PARKED) {
            LockSupport.park(this);
        }
    }

    /**
     * Voluntary context switches (task->nvcsw, voluntary_ctxt_switches in /proc/pid/status): how often the task
     * went to sleep in {@link #schedule()}, so how often a waker had to wake it. A wake that came between the
     * mark and the sleep costs none.
     */
    public long voluntarySwitches() {
        return nvcsw;
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

    // ---- signals (kernel/signal.c lives in Signals) ----

    /** This task's signal state and delivery. */
    public Signals signals() {
        return signals;
    }

    /** tgkill: {@link Signals#send}. */
    public void sendSignal(Signal sig) {
        signals.send(sig);
    }

    /** signal_pending(p): an unblocked signal is pending for this task or its group. */
    public boolean signalPending() {
        return signals.signalPending();
    }

    /** fatal_signal_pending(p): SIGKILL is pending for this task. */
    public boolean fatalSignalPending() {
        return signals.fatalSignalPending();
    }

    /** True while a SIGSTOP holds the task ({@link Signals#isStopped}). */
    public boolean isStopped() {
        return signals.isStopped();
    }

    @Override
    public String toString() {
        return "task " + tid + " (" + comm + ")";
    }
}
