package dev.loomvisor.core.worker;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.inject.Delays;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Kthreadd;
import dev.loomvisor.core.Mm;
import dev.loomvisor.core.Task;
import java.util.Objects;

/**
 * The vhost worker of Linux up to 6.3 (drivers/vhost/vhost.c, vhost_worker on kthread_create): forked by
 * kthreadd, so it runs as root in the root cgroup outside its owner's limits, and borrows the owner's mm
 * while it runs (kthread_use_mm). It ignores signals; only kthread_stop ends it (reference section 2).
 */
public final class KthreadWorker implements Worker {

    private final WorkerFn fn;
    private final Mm ownerMm;
    private Task task;
    private volatile boolean stopped;

    private KthreadWorker(WorkerFn fn, Mm ownerMm) {
        this.fn = Objects.requireNonNull(fn, "fn");
        this.ownerMm = ownerMm;
    }

    /** kthread_create(vhost_worker, dev, "vhost-%d", owner pid): not counted against {@code caller}'s limits. */
    public static KthreadWorker create(Task caller, WorkerFn fn, String name, Carrier carrier) throws ErrnoException {
        KthreadWorker w = new KthreadWorker(fn, caller.mm());
        Kernel kernel = caller.kernel();
        w.task = kernel.kthreadd().create(KthreadWorker::taskFn, w, name, carrier);
        return w;
    }

    private static int taskFn(Object arg) {
        return ((KthreadWorker) arg).loop();
    }

    private int loop() {
        Task me = task;
        if (ownerMm != null) {
            Kthreadd.useMm(me, ownerMm);
        }
        try {
            while (serve(me)) {
                // Back into serve, compiled by now: see Worker#SLEEPS_PER_CALL.
            }
        } finally {
            if (ownerMm != null) {
                Kthreadd.unuseMm(me);
            }
        }
        return 0;
    }

    /** The worker loop for up to {@link Worker#SLEEPS_PER_CALL} sleeps; false once the kthread must stop. */
    private boolean serve(Task me) {
        for (int sleeps = 0; sleeps < Worker.SLEEPS_PER_CALL; ) {
            // The same "about to sleep" order as vhost_task, with kthread_should_stop for STOP.
            me.setCurrentStateInterruptible();
            Delays.at(Delays.Point.LOOP_AFTER_MARK);
            if (Kthreadd.shouldStop(me)) {
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

    @Override
    public void start() {
        task.start();
    }

    @Override
    public boolean wake() {
        if (stopped) {
            return false;
        }
        Delays.at(Delays.Point.WAKE_AFTER_FLAG_CHECK);
        task.wakeUpProcess();
        return true;
    }

    /** kthread_stop. */
    @Override
    public void stop() {
        stopped = true;
        Delays.at(Delays.Point.STOP_AFTER_FLAG);
        task.kernel().kthreadd().stop(task);
    }

    @Override
    public Task task() {
        return task;
    }

    /** Always false: a kthread ignores SIGKILL. */
    @Override
    public boolean isKilled() {
        return false;
    }
}
