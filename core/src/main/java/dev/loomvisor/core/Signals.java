package dev.loomvisor.core;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * One task's signal state and its delivery (kernel/signal.c): the blocked mask, the private pending set, the
 * job-control stop, and what a signal to the task or to its thread group does to each task.
 *
 * <p>{@link Task#PF_USER_WORKER} is read here as Linux reads it: a user worker blocks every signal but SIGKILL
 * and SIGSTOP for life (copy_process), so nothing else is ever delivered to it; on SIGKILL {@link #getSignal()}
 * hands the signal back to the worker's loop, which runs its own cleanup (vhost_task's handle_sigkill),
 * where any other task is taken down by the kernel without running another line (do_group_exit); and the
 * exec, exit and coredump paths never wait for it to die ({@link #zapOtherThreads}).
 */
public final class Signals {

    private final Task task;
    /** ignore_signals: every signal, SIGKILL too, is dropped (sig_task_ignored). */
    private final boolean ignoreSignals;
    private volatile long blocked;
    private final AtomicLong pending = new AtomicLong();
    /** Group stop (SIGSTOP) in effect for this task until SIGCONT or SIGKILL. */
    private volatile boolean jobctlStopped;
    /** Parked in the refrigerator until the freeze ends. */
    private volatile boolean frozen;

    Signals(Task task, long blocked, boolean ignoreSignals) {
        this.task = task;
        this.blocked = blocked & ~Signal.UNBLOCKABLE;
        this.ignoreSignals = ignoreSignals;
    }

    /** The blocked signal mask. */
    public long blocked() {
        return blocked;
    }

    /**
     * sigprocmask(SIG_SETMASK): SIGKILL and SIGSTOP are never blocked. A user worker's mask does not change:
     * it runs only kernel code, which never unblocks what copy_process blocked for it.
     */
    public void setBlocked(long set) {
        if (task.hasFlag(Task.PF_USER_WORKER)) {
            return;
        }
        blocked = set & ~Signal.UNBLOCKABLE;
    }

    /** This task's private pending set (without the process's shared set), blocked signals included. */
    public long pending() {
        return pending.get();
    }

    /**
     * signal_pending: an unblocked signal is pending for this task or its thread group, or a freeze asks the
     * task into {@link #getSignal()} (the freezer's fake signal).
     */
    public boolean signalPending() {
        return ((pending.get() | task.process().sharedPending()) & ~blocked) != 0
                || task.kernel().freezer().freezing(task);
    }

    /** fatal_signal_pending: SIGKILL is in this task's pending set. */
    public boolean fatalSignalPending() {
        return (pending.get() & Signal.SIGKILL.mask()) != 0;
    }

    /** True if signals sent to this task are dropped: a kthread, or a task made with ignore_signals. */
    public boolean ignoresAll() {
        return ignoreSignals || task.sighand().ignoresAll();
    }

    /** True while the task is parked by the freezer in {@link #getSignal()}. */
    public boolean isFrozen() {
        return frozen;
    }

    /** True while the task is held by a stop (SIGSTOP) in {@link #getSignal()}. */
    public boolean isStopped() {
        return jobctlStopped;
    }

    // ---- sending ----

    /**
     * tgkill: a signal to this one task. SIGKILL is fatal to the whole thread group (complete_signal kills
     * every thread, user workers included); a blocked signal is queued but never delivered.
     */
    public void send(Signal sig) {
        if (ignoresAll() || task.isReleasing()) {
            return;
        }
        if (sig == Signal.SIGKILL) {
            killGroup(task.process());
            return;
        }
        deliver(sig);
    }

    /** Posts a signal without looking at the dispositions (force_sig; zap_other_threads does this). */
    void force(Signal sig) {
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
                // Linux turns a SIGSTOP into a group stop once a thread dequeues it; the emulation holds the
                // task it was sent to, which lets a caller hold one worker. Marked here so that a SIGCONT sent
                // before the task handles signals cancels it.
                jobctlStopped = true;
                pending.getAndUpdate(p -> p | Signal.SIGSTOP.mask());
            }
            case SIGKILL -> {
                pending.getAndUpdate(p -> p | Signal.SIGKILL.mask());
                jobctlStopped = false;
            }
            default -> pending.getAndUpdate(p -> p | sig.mask());
        }
        wakeUp();
    }

    /** signal_wake_up: an interruptible or stopped task notices the new signal. */
    void wakeUp() {
        task.wakeUpProcess();
        unparkThread();
    }

    private void unparkThread() {
        Thread t = task.thread();
        if (t != null) {
            LockSupport.unpark(t);
        }
    }

    /**
     * kill(pid, sig): a signal to the whole thread group. SIGKILL, SIGSTOP and SIGCONT act on every task;
     * any other signal is queued once for the group and wakes only the tasks that do not block it
     * (wants_signal), so never a user worker. A kthread's group ignores them all.
     */
    static void killGroup(Process p, Signal sig) {
        if (p.mainTask().signals().ignoresAll()) {
            return;
        }
        switch (sig) {
            case SIGKILL -> killGroup(p);
            case SIGSTOP, SIGCONT -> {
                p.siglock.lock();
                try {
                    for (Task t : p.tasks()) {
                        t.signals().send(sig);
                    }
                } finally {
                    p.siglock.unlock();
                }
            }
            case SIGCHLD -> {
                // default-ignored
            }
            default -> {
                p.queueShared(sig);
                for (Task t : p.tasks()) {
                    Signals s = t.signals();
                    if ((s.blocked & sig.mask()) == 0 && !s.ignoresAll()) {
                        s.wakeUp();
                    }
                }
            }
        }
    }

    /** complete_signal for a fatal signal: SIGKILL to every thread of the group that does not ignore it. */
    private static void killGroup(Process p) {
        p.siglock.lock();
        try {
            for (Task t : p.tasks()) {
                Signals s = t.signals();
                if (!s.ignoresAll() && !t.isReleasing()) {
                    s.deliver(Signal.SIGKILL);
                }
            }
        } finally {
            p.siglock.unlock();
        }
    }

    /**
     * zap_other_threads (and fs/coredump.c's zap_process): SIGKILL to every task of the group but
     * {@code except}, past any disposition; returns the tasks the caller must wait for. A user worker (without
     * PF_IO_WORKER) is killed but not counted: "Don't require de_thread to wait for the vhost_worker", "The
     * vhost_worker does not participate in coredumps". Call under the group's siglock.
     */
    static List<Task> zapOtherThreads(Process p, Task except) {
        List<Task> waitFor = new ArrayList<>();
        for (Task t : p.tasks()) {
            if (t == except) {
                continue;
            }
            t.signals().force(Signal.SIGKILL);
            if (!isUserWorker(t)) {
                waitFor.add(t);
            }
        }
        return waitFor;
    }

    /** (flags & (PF_USER_WORKER | PF_IO_WORKER)) == PF_USER_WORKER: a vhost_task, not an io_uring worker. */
    static boolean isUserWorker(Task t) {
        return (t.flags() & (Task.PF_USER_WORKER | Task.PF_IO_WORKER)) == Task.PF_USER_WORKER;
    }

    // ---- receiving ----

    /**
     * dequeue_signal: removes and returns the lowest pending unblocked signal, private set first, or null.
     * SIGKILL stays pending once seen, as the kernel keeps it for the exit path.
     */
    public Signal dequeue() {
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
            return task.process().dequeueShared(blocked);
        }
    }

    /**
     * get_signal for a kernel-created task's loop; call it on the task's own thread. A freeze parks the task
     * here until thawed ({@link Freezer}); a SIGSTOP holds it until SIGCONT or SIGKILL (reference section 3:
     * "SIGSTOP and freezing stop it like any thread"); other signals have no handler in the emulation and are
     * discarded. On SIGKILL a user worker gets true back and leaves
     * by its own path ("PF_USER_WORKER threads will catch and exit on fatal signals themselves"); any other
     * task exits the group at once (do_group_exit): its body is unwound and returns nothing.
     */
    public boolean getSignal() {
        for (;;) {
            tryToFreeze();
            Signal s = dequeue();
            if (s == null) {
                return false;
            }
            if (s == Signal.SIGKILL) {
                if (task.hasFlag(Task.PF_USER_WORKER) || Task.current() != task) {
                    return true;
                }
                throw GroupExit.KILLED;
            }
            if (s == Signal.SIGSTOP) {
                while (jobctlStopped && !fatalSignalPending()) {
                    LockSupport.park(this);
                }
                jobctlStopped = false;
            }
        }
    }

    /** try_to_freeze: parks while a freeze is in progress; SIGKILL still gets through. */
    private void tryToFreeze() {
        Freezer freezer = task.kernel().freezer();
        if (!freezer.freezing(task)) {
            return;
        }
        frozen = true;
        while (freezer.freezing(task) && !fatalSignalPending()) {
            LockSupport.park(this);
        }
        frozen = false;
    }

    /**
     * do_exit reached from inside a task's body: unwinds it without running the code after the call; the task
     * ends with the wait status of a task killed by the signal (its number).
     */
    static final class GroupExit extends Error {
        static final GroupExit KILLED = new GroupExit(Signal.SIGKILL);

        final int status;

        private GroupExit(Signal sig) {
            super("do_group_exit(" + sig + ")", null, false, false);
            this.status = sig.number();
        }
    }
}
