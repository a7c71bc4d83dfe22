package dev.loomvisor.vhost.work;

import dev.loomvisor.core.inject.Delays;
import dev.loomvisor.core.worker.Worker;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.locks.ReentrantLock;

/**
 * {@code struct vhost_worker}: a work list and the thread that runs it. The thread comes from a core
 * {@link Worker} (a vhost_task, a kthread, a pool slot: the worker model); this class only knows that
 * its {@link #run()} is the worker's {@code WorkerFn} and that {@link Worker#wake()} must reach it.
 *
 * <p>Lifetime (user-workers.md section 5): created by SET_OWNER or NEW_WORKER, attached to rings, then
 * either stopped by the device (release, RESET_OWNER, FREE_WORKER) or killed with its owner, in which
 * case the device detaches it from every ring and it runs whatever is left before it exits.
 */
public final class VhostWorker {

    private final int id;
    private final WorkList list = new WorkList();
    /** worker->mutex: serialises attach, flush and the kill path. */
    private final ReentrantLock mutex = new ReentrantLock();
    private volatile Worker thread;
    private volatile boolean killed;
    /** Rings whose slot points here (slots of different rings update it concurrently). */
    private final java.util.concurrent.atomic.AtomicInteger attachmentCount = new java.util.concurrent.atomic.AtomicInteger();
    private final java.util.concurrent.atomic.AtomicLong cancelled = new java.util.concurrent.atomic.AtomicLong();
    /** Runs that gave the carrier up at the end of a slice (the worker's thread writes it). */
    private volatile long preemptions;

    public VhostWorker(int id) {
        this.id = id;
    }

    /** Gives the worker its thread; the factory needs {@link #run()} first, hence not a constructor arg. */
    public void bind(Worker t) {
        this.thread = t;
    }

    public int id() {
        return id;
    }

    public Worker thread() {
        return thread;
    }

    /** The worker function, vhost_run_work_list: runs one batch; false lets the worker sleep. */
    public boolean run() {
        boolean did = list.runAll();
        if (did && Thread.currentThread().isVirtual()) {
            // cond_resched() of vhost_run_work_list: a worker that always finds work must still let other
            // threads run. The OS preempts a platform thread; a virtual thread is never preempted, so it
            // gives up its carrier here.
            if (Carriers.resched()) {
                preemptions = preemptions + 1; // single writer: the worker's thread
            }
        }
        return did;
    }

    /** Times the worker gave up its virtual thread's carrier after a whole slice of work (a preemption). */
    public long preemptions() {
        return preemptions;
    }

    /**
     * vhost_worker_queue: queues {@code work} here and wakes the thread if the list was empty. Callers
     * reach a worker only through a {@link WorkerSlot} (rings) or by holding {@link #mutex()} (flush), so
     * nothing is queued on a worker after its kill path ran its last batch.
     */
    public void queue(VhostWork work) {
        if (list.queue(work)) {
            Delays.at(Delays.Point.QUEUE_BEFORE_WAKE);
            Worker t = thread;
            if (t != null) {
                t.wake();
            }
        }
    }

    public ReentrantLock mutex() {
        return mutex;
    }

    public boolean isKilled() {
        return killed;
    }

    /** Rings attached now (a snapshot). */
    public int attachmentCount() {
        return attachmentCount.get();
    }

    void attached() {
        attachmentCount.incrementAndGet();
    }

    void detached(int n) {
        attachmentCount.addAndGet(-n);
    }

    /** Callbacks that threw on this worker. */
    public long workFailures() {
        return list.failures();
    }

    /**
     * Works this worker dropped unrun when it was destroyed ({@link #cancelPending()}): queued after the
     * last flush, they were still in the list when the thread left its loop.
     */
    public long cancelledWork() {
        return cancelled.get();
    }

    /**
     * Empties the list of a worker whose thread has stopped, clearing each work's QUEUED bit, and counts
     * them as cancelled. The kernel only WARNs here (vhost_worker_destroy), trusting that every producer
     * stopped first; in the emulation a kick or a backend wake-up in flight can still land between the
     * release's flush and the detach, and a work left with QUEUED set on a dead worker can never be queued
     * again: its ring would stay deaf after RESET_OWNER and SET_OWNER. Only after the thread has stopped.
     *
     * @return the works cancelled now
     */
    public int cancelPending() {
        int n = list.cancelAll();
        cancelled.addAndGet(n);
        return n;
    }

    /** Work pending now (a snapshot). */
    public boolean hasPendingWork() {
        return !list.isEmpty();
    }

    /**
     * vhost_worker_flush: waits until every work queued before this call has run, by queueing a
     * completion work behind it. A worker with no ring attached, or killed, returns at once: nothing can
     * be pending that someone could wait for, and a killed worker may never run again.
     */
    public void flush() {
        mutex.lock();
        try {
            flushLocked();
        } finally {
            mutex.unlock();
        }
    }

    /** The flush body, called with {@link #mutex()} held; drops it while waiting, as the kernel does, so
     * that the kill path (which takes it) can finish the flush by running the leftover work. */
    public void flushLocked() {
        if (attachmentCount.get() == 0 || killed) {
            return;
        }
        CountDownLatch done = new CountDownLatch(1);
        queue(new VhostWork(w -> done.countDown()));
        Delays.at(Delays.Point.FLUSH_AFTER_QUEUE);
        Worker t = thread;
        if (t != null && !t.wake()) {
            // The thread is gone (stopped, or its factory closed): nothing will ever run the completion, and
            // nothing else either, so there is nothing to wait for.
            return;
        }
        mutex.unlock();
        try {
            boolean interrupted = false;
            while (true) {
                try {
                    done.await();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true; // wait_for_completion is uninterruptible
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        } finally {
            mutex.lock();
        }
    }

    /**
     * The tail of vhost_worker_killed, called on the worker's own thread after the device detached it from
     * every ring (with {@link #mutex()} held): marks it killed and runs the work that was already queued,
     * including pending flush completions, until the list stays empty.
     */
    public void killedRunLeftover() {
        killed = true;
        while (list.runAll()) {
            // Works queued by the works themselves (a requeue) run too; none can arrive from a ring any
            // more, so this ends.
        }
    }

    /** Marks the worker killed without running anything (the kill path's first step). */
    public void markKilled() {
        killed = true;
    }

    @Override
    public String toString() {
        return "vhost worker " + id + (killed ? " (killed)" : "");
    }
}
