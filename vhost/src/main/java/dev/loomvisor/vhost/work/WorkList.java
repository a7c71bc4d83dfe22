package dev.loomvisor.vhost.work;

import dev.loomvisor.core.inject.Delays;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A worker's pending work ({@code vhost_worker.work_list}): a lock-free multi-producer, single-consumer
 * list in the manner of the kernel's llist.
 *
 * <p>Producers push on the head with a CAS (llist_add); the one consumer takes the whole list at once
 * (llist_del_all), reverses it into arrival order and runs it, clearing each work's QUEUED bit just
 * before its callback. Work queued while a batch runs lands in the fresh list and runs in the next
 * round, never in the current one, which is what makes a self-requeue go to the back of the line.
 */
public final class WorkList {

    private static final VarHandle HEAD;
    private static final VarHandle FAILURES;
    private static final VarHandle FIRST_FAILURE;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            HEAD = lookup.findVarHandle(WorkList.class, "head", VhostWork.class);
            FAILURES = lookup.findVarHandle(WorkList.class, "failures", long.class);
            FIRST_FAILURE = lookup.findVarHandle(WorkList.class, "firstFailure", Throwable.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // accessed through HEAD
    private volatile VhostWork head;
    @SuppressWarnings("unused") // accessed through FAILURES
    private volatile long failures;
    @SuppressWarnings("unused") // accessed through FIRST_FAILURE
    private volatile Throwable firstFailure;

    /**
     * Queues {@code work} unless it is already queued (the QUEUED bit makes a second queueing a no-op).
     *
     * @return true if the list was empty before this call: only then must the consumer be woken, since a
     *     non-empty list means an earlier producer's wake-up is still owed to it and it has not yet taken
     *     the list (taking it empties it)
     */
    public boolean queue(VhostWork work) {
        if (work.testAndSetQueued()) {
            return false;
        }
        Delays.at(Delays.Point.QUEUE_AFTER_TEST_AND_SET);
        VhostWork first;
        do {
            first = (VhostWork) HEAD.getVolatile(this);
            work.next = first;
        } while (!HEAD.compareAndSet(this, first, work));
        return first == null;
    }

    /** Callbacks that threw (each is contained: the batch and the worker go on). */
    public long failures() {
        return failures;
    }

    /** The first callback failure, or null. */
    public Throwable firstFailure() {
        return firstFailure;
    }

    /** True if nothing is pending (a racy snapshot, for flush shortcuts and tests). */
    public boolean isEmpty() {
        return HEAD.getVolatile(this) == null;
    }

    /**
     * Takes every pending work without running it and clears its QUEUED bit, so it can be queued again
     * elsewhere. Called by the owner of a list whose consumer has stopped (no callback can be running).
     *
     * @return the works taken
     */
    public int cancelAll() {
        VhostWork node = (VhostWork) HEAD.getAndSet(this, (VhostWork) null);
        int n = 0;
        while (node != null) {
            VhostWork next = node.next;
            node.next = null;
            node.clearQueued();
            n++;
            node = next;
        }
        return n;
    }

    /**
     * vhost_run_work_list: takes every pending work and runs the batch in FIFO order, clearing QUEUED
     * just before each callback. Called by the one consumer only.
     *
     * @return true if any work ran (the worker loop sleeps only after a false)
     */
    public boolean runAll() {
        VhostWork node = (VhostWork) HEAD.getAndSet(this, (VhostWork) null);
        if (node == null) {
            return false;
        }
        Delays.at(Delays.Point.RUN_AFTER_TAKE);
        // llist_reverse_order: producers pushed on the head, so the taken list is newest first.
        VhostWork reversed = null;
        while (node != null) {
            VhostWork next = node.next;
            node.next = reversed;
            reversed = node;
            node = next;
        }
        node = reversed;
        while (node != null) {
            // Read the link before clearing QUEUED: once clear, a producer may queue the node again and
            // overwrite next while this batch still walks it.
            VhostWork next = node.next;
            node.next = null;
            node.clearQueued();
            try {
                node.run();
            } catch (RuntimeException | Error e) {
                // A callback that throws must not strand the rest of the batch with QUEUED set (they
                // would never run again) nor end the worker: count it and keep the first for the owner.
                FAILURES.getAndAdd(this, 1L);
                FIRST_FAILURE.compareAndSet(this, (Throwable) null, e);
            }
            node = next;
        }
        return true;
    }
}
