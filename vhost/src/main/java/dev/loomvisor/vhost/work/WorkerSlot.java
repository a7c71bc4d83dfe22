package dev.loomvisor.vhost.work;

import dev.loomvisor.core.inject.Delays;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.ReentrantLock;
import org.agrona.concurrent.BackoffIdleStrategy;

/**
 * A ring's {@code vq->worker} pointer with the RCU discipline the kernel puts around it, emulated: queuing
 * reads the pointer inside a read-side section, and {@link #set} returns only after every section that
 * might have seen the old worker has left ({@code rcu_assign_pointer} + {@code synchronize_rcu}). After a
 * swap or a detach, the caller can therefore flush (or drain) the old worker and know that no late
 * producer will put work on it afterwards, where it would sit with QUEUED set and never run.
 *
 * <p>The read side is one atomic increment and one decrement on one of two counters (the classic
 * two-phase userspace RCU): a writer flips the phase and waits only for readers of the old phase, so a
 * steady stream of new readers cannot starve it. Writers run on control paths only, one at a time.
 */
public final class WorkerSlot implements WorkTarget {

    /** Spins of a grace-period wait before it parks: a reader that is on a CPU leaves within them. */
    private static final long GRACE_SPINS = 100;
    /** The grace-period wait's first park; each further one doubles, up to {@link #GRACE_MAX_PARK_NANOS}. */
    private static final long GRACE_MIN_PARK_NANOS = 1_000;
    private static final long GRACE_MAX_PARK_NANOS = 100_000;

    private final AtomicIntegerArray readers = new AtomicIntegerArray(2);
    private final ReentrantLock writer = new ReentrantLock();
    /**
     * The grace-period wait (guarded by {@link #writer}): spins, then parks, never {@link Thread#yield()}s.
     * synchronize_rcu sleeps; so must this. A writer on a virtual thread (a killed vhost_task detaching its
     * rings runs on its worker's thread) that yields is resubmitted to the fork-join submission queue its
     * carrier is draining and taken again at once, so the carrier never looks at the other queues; once
     * every carrier runs such a writer, a reader unmounted inside its section, and even the timer task that
     * would wake it, never gets a carrier, and the writers wait for it forever (WorkQueueStressTest, SIGKILL
     * with one worker per ring: both killed workers' threads stuck here for 10 s). A park gives the
     * carrier up. No yield phase: on a virtual thread it is the same trap, on a platform thread the park's
     * first period is as short.
     */
    private final BackoffIdleStrategy grace =
            new BackoffIdleStrategy(GRACE_SPINS, 0, GRACE_MIN_PARK_NANOS, GRACE_MAX_PARK_NANOS);
    private volatile VhostWorker worker;
    private volatile int phase;

    /** vhost_vq_work_queue: false if no worker is attached. */
    @Override
    public boolean queueWork(VhostWork work) {
        int p = phase;
        Delays.at(Delays.Point.SLOT_BEFORE_ENTER);
        readers.getAndIncrement(p);
        try {
            Delays.at(Delays.Point.SLOT_AFTER_ENTER);
            // Read after the increment: a writer that did not see the increment had already published
            // its pointer, so this read returns it.
            VhostWorker w = worker;
            if (w == null) {
                return false;
            }
            w.queue(work);
            return true;
        } finally {
            readers.getAndDecrement(p);
        }
    }

    public VhostWorker get() {
        return worker;
    }

    /**
     * Points the slot at {@code next} (null detaches) and waits for the grace period: every queueWork that
     * may have read the previous worker has returned. Keeps the attachment counts of both workers; the
     * caller holds whatever locks make the count update safe (the workers' mutexes).
     *
     * @return the previous worker
     */
    public VhostWorker set(VhostWorker next) {
        writer.lock();
        try {
            VhostWorker previous = worker;
            if (previous == next) {
                return previous;
            }
            worker = next;
            if (next != null) {
                next.attached();
            }
            if (previous != null) {
                previous.detached(1);
            }
            synchronizeRcu();
            return previous;
        } finally {
            writer.unlock();
        }
    }

    /** The worker and the read-side sections inside each phase now (a racy snapshot, for diagnostics). */
    @Override
    public String toString() {
        return "slot -> " + worker + " phase=" + phase + " readers=[" + readers.get(0) + ", " + readers.get(1) + "]";
    }

    /**
     * Waits until every read-side section that began before this call has left, by flipping the phase
     * twice and waiting for each phase's readers in turn, as userspace RCU does. One flip is not enough: a
     * reader can read the phase, stall, and increment that (by then old) phase's counter after the previous
     * writer's wait; a single-flip writer now waits only for the other counter and returns while that
     * reader, which may have read the previous pointer, is still inside and about to queue on it. The
     * pointer write, the flips and the counter reads are volatile, totally ordered against the reader's
     * increment and pointer read: a reader is either counted in the counter being waited for or reads the
     * new pointer.
     */
    private void synchronizeRcu() {
        for (int flip = 0; flip < 2; flip++) {
            int old = phase;
            phase = old ^ 1;
            grace.reset();
            while (readers.get(old) != 0) {
                grace.idle();
            }
        }
    }
}
