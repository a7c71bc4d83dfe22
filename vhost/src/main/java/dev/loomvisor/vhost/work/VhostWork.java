package dev.loomvisor.vhost.work;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One unit of deferred work ({@code struct vhost_work}): a callback, the QUEUED bit and the intrusive list
 * link. The object is its own list node, so queueing allocates nothing.
 *
 * <p>A work is in at most one worker's list at a time, and in it at most once: {@link WorkList#queue}
 * queues it only if it sets QUEUED, and the worker clears QUEUED just before the callback runs, so the
 * callback can queue its own work again (the requeue that vhost-net's weights rely on).
 */
public final class VhostWork {

    /** The callback, {@code vhost_work_fn_t}: runs on the worker's thread, must not block for long. */
    @FunctionalInterface
    public interface Fn {
        void run(VhostWork work);
    }

    /** {@code VHOST_WORK_QUEUED}: bit 0 of {@link #flags}. */
    static final int QUEUED = 1;

    private static final VarHandle FLAGS;

    static {
        try {
            FLAGS = MethodHandles.lookup().findVarHandle(VhostWork.class, "flags", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Fn fn;
    @SuppressWarnings("unused") // accessed through FLAGS
    private volatile int flags;
    /** llist_node.next: written before the CAS that publishes the node, read after the list was taken. */
    VhostWork next;

    public VhostWork(Fn fn) {
        if (fn == null) {
            throw new NullPointerException("fn");
        }
        this.fn = fn;
    }

    /** True while the work sits in a worker's list (set by queueing, cleared just before it runs). */
    public boolean isQueued() {
        return (flags & QUEUED) != 0;
    }

    /** test_and_set_bit(VHOST_WORK_QUEUED): true if it was already set. */
    boolean testAndSetQueued() {
        return ((int) FLAGS.getAndBitwiseOr(this, QUEUED) & QUEUED) != 0;
    }

    /**
     * clear_bit(VHOST_WORK_QUEUED), as an atomic read-modify-write: it reads the value written by any
     * producer's test-and-set that found the bit set, so that producer's writes (the state it wanted the
     * callback to see) happen-before the callback that follows.
     */
    void clearQueued() {
        FLAGS.getAndBitwiseAnd(this, ~QUEUED);
    }

    void run() {
        fn.run(this);
    }
}
