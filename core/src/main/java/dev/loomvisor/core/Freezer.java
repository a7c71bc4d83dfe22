package dev.loomvisor.core;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The system freezer (kernel/freezer.c, kernel/power/process.c): what suspend does to tasks before it
 * sleeps. Every freezable task (not PF_NOFREEZE, so no kthread forked by kthreadd) is woken as by a signal
 * and parks in {@link Signals#getSignal()} until thawed; a user worker takes part like any thread (reference
 * section 3), which is what let a machine with a running VM suspend again.
 */
public final class Freezer {

    /** The first wait between checks; try_to_freeze_tasks starts at 1 ms and doubles up to 8 ms. */
    private static final long FIRST_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(1);
    private static final long MAX_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(8);

    private final Kernel kernel;
    /** pm_freezing. */
    private volatile boolean freezing;

    Freezer(Kernel kernel) {
        this.kernel = kernel;
    }

    /** freezing(p): a freeze is in progress and the task takes part in it. */
    boolean freezing(Task t) {
        return freezing && !t.hasFlag(Task.PF_NOFREEZE);
    }

    public boolean isFreezing() {
        return freezing;
    }

    /**
     * freeze_processes: asks every freezable task to freeze and waits until each one is frozen, stopped, or
     * has no thread running a body (it stands for a caller outside the emulation, which is not running
     * kernel code). If one does not freeze within {@code timeout}, every task is thawed again and the freeze
     * fails with EBUSY ("Freezing of tasks failed").
     */
    public void freezeProcesses(Duration timeout) throws ErrnoException {
        freezing = true;
        for (Process p : kernel.processes()) {
            for (Task t : p.tasks()) {
                if (freezing(t)) {
                    t.signals().wakeUp(); // freeze_task: fake_signal_wake_up
                }
            }
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        long wait = FIRST_WAIT_NANOS;
        for (;;) {
            List<Task> refusing = refusing();
            if (refusing.isEmpty()) {
                return;
            }
            if (System.nanoTime() - deadline >= 0) {
                thawProcesses();
                throw new ErrnoException(Errno.EBUSY, refusing.size() + " tasks refusing to freeze, e.g. "
                        + refusing.getFirst());
            }
            LockSupport.parkNanos(wait);
            wait = Math.min(wait * 2, MAX_WAIT_NANOS);
        }
    }

    private List<Task> refusing() {
        List<Task> out = new ArrayList<>();
        for (Process p : kernel.processes()) {
            for (Task t : p.tasks()) {
                if (freezing(t) && t.thread() != null && t.isStarted() && t.thread().isAlive()
                        && !t.signals().isFrozen() && !t.isStopped() && !t.isReleasing()) {
                    out.add(t);
                }
            }
        }
        return out;
    }

    /** thaw_processes: ends the freeze and lets every frozen task run on. */
    public void thawProcesses() {
        freezing = false;
        for (Process p : kernel.processes()) {
            for (Task t : p.tasks()) {
                t.signals().wakeUp();
            }
        }
    }
}
