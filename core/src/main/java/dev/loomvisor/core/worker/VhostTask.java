package dev.loomvisor.core.worker;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.KernelCloneArgs;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.inject.Delays;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * kernel/vhost_task.c of Linux 6.10+: a user worker cloned from the owner's calling thread, so it is one of
 * the owner's threads, shares its mm, fs, credentials and cgroup, has no file table, and is counted against
 * the owner's RLIMIT_NPROC and pids.max (reference section 3).
 *
 * <p>Stop and SIGKILL are serialised by one atomic flags word, as the kernel serialises them with exit_mutex:
 * whichever sets its bit first wins, so exactly one of "stopped" and "killed (handleSigkill called)" happens.
 */
public final class VhostTask implements Worker {

    /** VHOST_TASK_FLAGS_STOP. */
    private static final int STOP = 1;
    /** VHOST_TASK_FLAGS_KILLED. */
    private static final int KILLED = 2;

    private final WorkerFn fn;
    private final Runnable handleSigkill;
    private final AtomicInteger flags = new AtomicInteger();
    private Task task;

    private VhostTask(WorkerFn fn, Runnable handleSigkill) {
        this.fn = Objects.requireNonNull(fn, "fn");
        this.handleSigkill = Objects.requireNonNull(handleSigkill, "handleSigkill");
    }

    /**
     * vhost_task_create: clones a user worker from {@code caller} with CLONE_FS | CLONE_UNTRACED | CLONE_VM |
     * CLONE_THREAD | CLONE_SIGHAND, user_worker, no_files and no exit signal. Not yet running.
     *
     * @param name the comm, e.g. {@code vhost-<caller tid>}
     * @throws ErrnoException the clone's failure (EAGAIN over a limit, ERESTARTNOINTR, EINTR)
     */
    public static VhostTask create(Task caller, WorkerFn fn, Runnable handleSigkill, String name, Carrier carrier)
            throws ErrnoException {
        VhostTask vtsk = new VhostTask(fn, handleSigkill);
        KernelCloneArgs args = new KernelCloneArgs()
                .flags(KernelCloneArgs.VHOST_TASK_FLAGS)
                .exitSignal(null)
                .fn(VhostTask::taskFn, vtsk)
                .name(name)
                .userWorker(true)
                .noFiles(true)
                .carrier(carrier);
        vtsk.task = caller.kernel().copyProcess(caller, args);
        return vtsk;
    }

    /** {@link #create(Task, WorkerFn, Runnable, String, Carrier)} on a virtual thread. */
    public static VhostTask create(Task caller, WorkerFn fn, Runnable handleSigkill, String name)
            throws ErrnoException {
        return create(caller, fn, handleSigkill, name, Carrier.VIRTUAL);
    }

    private static int taskFn(Object arg) {
        return ((VhostTask) arg).loop();
    }

    /** vhost_task_fn. */
    private int loop() {
        Task me = task;
        while (serve(me)) {
            // Back into serve, compiled by now: see Worker#SLEEPS_PER_CALL.
        }
        // If a stop and a SIGKILL race, the stop wins if it came first: the vhost layer that stopped us has
        // already stopped new work and flushed, so handleSigkill must not run.
        for (;;) {
            int f = flags.get();
            if ((f & STOP) != 0) {
                break;
            }
            if (flags.compareAndSet(f, f | KILLED)) {
                handleSigkill.run();
                break;
            }
        }
        return 0;
    }

    /** vhost_task_fn's loop for up to {@link Worker#SLEEPS_PER_CALL} sleeps; false when the task must end. */
    private boolean serve(Task me) {
        for (int sleeps = 0; sleeps < Worker.SLEEPS_PER_CALL; ) {
            // SIGKILL ends the loop; SIGSTOP holds the task in getSignal until SIGCONT.
            if (me.signalPending() && me.signals().getSignal()) {
                return false;
            }
            // "About to sleep" before the STOP test and fn: a wake from here on turns the state back to
            // running, so schedule() below returns at once and no wake is lost (reference section 3).
            me.setCurrentStateInterruptible();
            Delays.at(Delays.Point.LOOP_AFTER_MARK);
            if ((flags.get() & STOP) != 0) {
                me.setRunning();
                return false;
            }
            Delays.at(Delays.Point.LOOP_BEFORE_FN);
            if (!fn.run()) {
                Delays.at(Delays.Point.LOOP_BEFORE_SCHEDULE);
                me.schedule();
                sleeps++;
            }
        }
        return true;
    }

    /** vhost_task_start. */
    @Override
    public void start() {
        task.start();
    }

    /** vhost_task_wake: wake_up_process on the worker; false once it was stopped or killed. */
    @Override
    public boolean wake() {
        if (flags.get() != 0) {
            return false;
        }
        Delays.at(Delays.Point.WAKE_AFTER_FLAG_CHECK);
        task.wakeUpProcess();
        return true;
    }

    /**
     * vhost_task_stop: sets STOP unless a SIGKILL already won, wakes the worker and waits until it has left
     * its loop and was released. A worker never started is started so that it can leave.
     */
    @Override
    public void stop() {
        for (;;) {
            int f = flags.get();
            if ((f & (KILLED | STOP)) != 0 || flags.compareAndSet(f, f | STOP)) {
                break;
            }
        }
        Delays.at(Delays.Point.STOP_AFTER_FLAG);
        task.wakeUpProcess();
        if (!task.isStarted()) {
            task.start();
        }
        task.awaitExit();
    }

    @Override
    public Task task() {
        return task;
    }

    @Override
    public boolean isKilled() {
        return (flags.get() & KILLED) != 0;
    }

    /** True if a stop ended (or will end) the loop before any SIGKILL. */
    public boolean isStopped() {
        return (flags.get() & STOP) != 0;
    }
}
