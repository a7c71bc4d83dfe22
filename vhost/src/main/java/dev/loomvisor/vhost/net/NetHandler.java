package dev.loomvisor.vhost.net;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.work.Carriers;
import dev.loomvisor.vhost.work.VhostWork;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.DeviceVirtqueue;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * What vhost-net's two handlers share: the ring they serve, the negotiated header length, the used-ring
 * publish-and-interrupt step (vhost_net_signal_used), the fairness weights (vhost_exceeds_weight) and the
 * busy-poll loop (vhost_net_busy_poll). Subclasses hold every per-frame buffer they need, preallocated.
 */
abstract sealed class NetHandler implements VhostWork.Fn permits TxHandler, RxHandler {

    /** Outcome of a busy-poll round. */
    enum Busy { HIT, TIMEOUT, INTERRUPTED }

    /**
     * Longest a busy-polling virtual thread spins on an empty ring before it yields its carrier. Short: a vCPU
     * this worker just interrupted waits in the carrier's queue meanwhile. Not every look: a yield with nothing
     * else runnable costs a resubmission to the scheduler (a few hundred ns), a look a few ns.
     */
    static final long POLL_YIELD_NANOS = 1_000;
    /**
     * A yield that came back sooner than this found nobody to run (it only went through the scheduler's queue):
     * the next one waits twice as long, up to {@link #POLL_YIELD_MAX_NANOS}. Each yield is a resubmission the
     * scheduler allocates a task for; a poll that is alone on its carrier (its ring filled from another carrier
     * or process) would otherwise allocate one per microsecond.
     */
    static final long POLL_YIELD_ALONE_NANOS = 2_000;
    static final long POLL_YIELD_MAX_NANOS = 16_000;
    /**
     * Looks at the ring per reading of the clock (a power of two): in a guest such as this machine a clock read
     * costs more than a look, and the poll's deadline, yields and slice need no finer grain.
     */
    static final int LOOKS_PER_CLOCK = 8;
    protected final VhostVirtqueue vq;
    private final IdleStrategy idle;
    protected int hdrLen = VirtioNetHeader.SIZE;
    protected long interrupts;

    NetHandler(VhostVirtqueue vq, IdleStrategy idle) {
        this.vq = vq;
        this.idle = idle == null ? new BusySpinIdleStrategy() : idle;
    }

    /** Takes the negotiated features (SET_FEATURES; applied when the backend starts). */
    void setFeatures(long features) {
        hdrLen = VirtioNetHeader.length(features);
    }

    @Override
    public final void run(VhostWork work) {
        // vq->mutex: a control call never changes the ring under a running handler.
        vq.mutex().lock();
        try {
            if (vq.backend() != null && vq.queue().isReady()) {
                vq.counters().addOrdered(RingCounter.RUNS, 1);
                handle();
            }
        } finally {
            vq.mutex().unlock();
        }
    }

    /** One run: drain the ring up to the weights. Called with the vq mutex held and a backend attached. */
    abstract void handle();

    /** Publishes staged used entries and signals the call eventfd if the guest wants it. */
    protected final void signalUsed(DeviceVirtqueue q) {
        q.publishUsed();
        if (q.needsInterrupt()) {
            Notifier call = vq.call();
            if (call != null) {
                call.signal();
                interrupts++;
            }
        }
    }

    /** Flushes the run's interrupt count (once per run, not per frame). */
    protected final void flushInterrupts() {
        if (interrupts != 0) {
            vq.counters().addOrdered(RingCounter.INTERRUPTS, interrupts);
            interrupts = 0;
        }
    }

    /**
     * vhost_exceeds_weight: after 256 packets or 0x80000 bytes the run ends and the handler goes to the
     * back of its worker's list, so one busy ring cannot starve the others on the same worker.
     */
    protected final boolean exceedsWeight(int packets, long bytes) {
        if (packets >= VirtioNet.WEIGHT_PACKETS) {
            vq.counters().addOrdered(RingCounter.REQUEUES_BY_PACKETS, 1);
            vq.queueHandler();
            return true;
        }
        if (bytes >= VirtioNet.WEIGHT_BYTES) {
            vq.counters().addOrdered(RingCounter.REQUEUES_BY_BYTES, 1);
            vq.queueHandler();
            return true;
        }
        return false;
    }

    /** True if this ring busy-polls instead of going straight back to notifications. */
    protected final boolean busyPolls() {
        return vq.busyPollNanos() > 0;
    }

    /**
     * Looks at the ring until {@link #workArrived()} or the ring's busy-poll timeout, with no system call. Stops
     * early, as vhost_net_busy_poll does on vhost_has_work, when other work waits on the same worker: the caller
     * then requeues itself instead of hogging the worker.
     *
     * <p>Between looks a platform thread runs its idle strategy (the OS preempts it). A virtual thread is never
     * preempted, and what fills its ring (a vCPU it interrupted, the worker of the other side of a flow) is
     * often a virtual thread waiting for this very carrier: a poll that spins keeps it out until the slice ends,
     * and the poll finds nothing because it spins (vhost_net_busy_poll stops on need_resched() for the same
     * reason). So it yields the carrier to the runnable virtual threads every {@link #POLL_YIELD_NANOS} of an
     * empty ring (less often while its yields find nobody to run): no system call, no timer, and the ring is
     * looked at again as soon as they park or yield. A yield puts this thread behind the carrier's local queue,
     * which can keep threads woken from outside the pool waiting; the timed park per slice
     * ({@link Carriers#resched()}) bounds that as it bounds a spin.
     */
    protected final Busy busyPoll() {
        long deadline = System.nanoTime() + vq.busyPollNanos();
        idle.reset();
        VhostWorker worker = vq.worker();
        boolean virtual = Thread.currentThread().isVirtual();
        long lastYield = System.nanoTime();
        long yieldEvery = POLL_YIELD_NANOS;
        long yields = 0;
        int looks = 0;
        while (true) {
            Busy end = null;
            long now = 0;
            if (workArrived()) {
                end = Busy.HIT;
            } else if (worker != null && worker.hasPendingWork()) {
                end = Busy.INTERRUPTED;
            } else if ((++looks & (LOOKS_PER_CLOCK - 1)) == 0 && (now = System.nanoTime()) - deadline >= 0) {
                end = Busy.TIMEOUT;
            }
            if (end != null) {
                var k = vq.counters();
                if (yields != 0) {
                    k.addOrdered(RingCounter.BUSY_POLL_YIELDS, yields);
                }
                if (end == Busy.HIT) {
                    k.addOrdered(RingCounter.BUSY_POLL_HITS, 1);
                } else if (end == Busy.TIMEOUT) {
                    k.addOrdered(RingCounter.BUSY_POLL_TIMEOUTS, 1);
                }
                return end;
            }
            if (!virtual) {
                idle.idle();
            } else if (now != 0) {
                if (now - lastYield >= yieldEvery) {
                    Thread.yield();
                    yields++;
                    lastYield = System.nanoTime();
                    yieldEvery = lastYield - now < POLL_YIELD_ALONE_NANOS
                            ? Math.min(2 * yieldEvery, POLL_YIELD_MAX_NANOS) : POLL_YIELD_NANOS;
                }
                Carriers.resched(now);
            } else {
                Thread.onSpinWait();
            }
        }
    }

    /** What the busy-poll waits for: avail buffers on TX, backend frames on RX. */
    abstract boolean workArrived();
}
