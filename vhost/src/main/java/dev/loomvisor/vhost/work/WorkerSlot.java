package dev.loomvisor.vhost.work;

import dev.loomvisor.core.testing.Delays;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

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

    /** The longest a writer sleeps between looks at a phase's reader count (read sections are short). */
    private static final long MAX_BACKOFF_NANOS = 100_000;

    private final AtomicIntegerArray readers = new AtomicIntegerArray(2);
    private final ReentrantLock writer = new ReentrantLock();
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
            int spins = 0;
            long backoff = 1_000;
            while (readers.get(old) != 0) {
                if (++spins < 100) {
                    Thread.onSpinWait();
                } else {
                    // A timed park, not Thread.yield: the reader we wait for may be a virtual thread that is
                    // itself parked; yielding writers (a killed worker detaching from several rings) can hand
                    // both carriers back and forth forever and never let it run again (see Carriers). Seen as a
                    // SIGKILL that never finished in WorkQueueStressTest, with the next test's flush hanging.
                    LockSupport.parkNanos(backoff);
                    backoff = Math.min(backoff * 2, MAX_BACKOFF_NANOS);
                }
            }
        }
    }
}
