package dev.loomvisor.vhost.net;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Resched;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
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

    /**
     * Outcome of a busy-poll round: work came, the timeout passed, another virtual thread waited for the
     * carrier (need_resched), or other work waits on this worker. The handler treats RESCHED as TIMEOUT.
     */
    enum Busy { HIT, TIMEOUT, RESCHED, INTERRUPTED }

    /**
     * Looks at the ring per reading of the clock and of the scheduler's queues (a power of two): in a guest such
     * as this machine either costs more than a look, and the poll's deadline and its need_resched test need no
     * finer grain.
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
     * vhost_net_busy_poll: looks at the ring until {@link #workArrived()} or the ring's busy-poll timeout, with no
     * system call. Stops early, as the kernel's loop does, when other work waits on the same worker
     * (vhost_has_work: the caller requeues itself instead of hogging the worker) and when the CPU is wanted
     * (vhost_can_busy_poll's need_resched(): the caller goes back to notifications, as on a timeout).
     *
     * <p>Between looks a platform thread runs its idle strategy; the OS preempts it, and its need_resched is the
     * OS's business. A virtual thread is never preempted, and what fills its ring (a vCPU it interrupted, the
     * worker of the other side of a flow) is often a virtual thread waiting for this very carrier: a poll that
     * spins then keeps it out, and finds nothing because it spins. So a virtual thread's poll ends as soon as a
     * virtual thread waits for a carrier ({@link Resched#needResched()}), and spins only while none does: then
     * it costs no yield, no timed park and no allocation. Yielding while the ring was empty was tried and
     * replaced: on two saturated CPUs every yield handed the carrier to a thread with work while the poll came
     * back to spin again, and busy-poll moved 0.61 of what notifications did in process (docs/performance.md).
     */
    protected final Busy busyPoll() {
        long deadline = System.nanoTime() + vq.busyPollNanos();
        idle.reset();
        VhostWorker worker = vq.worker();
        boolean virtual = Thread.currentThread().isVirtual();
        int looks = 0;
        while (true) {
            Busy end = null;
            if (workArrived()) {
                end = Busy.HIT;
            } else if (worker != null && worker.hasPendingWork()) {
                end = Busy.INTERRUPTED;
            } else if ((++looks & (LOOKS_PER_CLOCK - 1)) == 0) {
                if (System.nanoTime() - deadline >= 0) {
                    end = Busy.TIMEOUT;
                } else if (virtual && Resched.needResched()) {
                    end = Busy.RESCHED;
                }
            }
            if (end != null) {
                vq.counters().addOrdered(switch (end) {
                    case HIT -> RingCounter.BUSY_POLL_HITS;
                    case TIMEOUT -> RingCounter.BUSY_POLL_TIMEOUTS;
                    case RESCHED -> RingCounter.BUSY_POLL_RESCHEDS;
                    case INTERRUPTED -> RingCounter.BUSY_POLL_INTERRUPTS;
                }, 1);
                return end;
            }
            if (virtual) {
                Thread.onSpinWait();
            } else {
                idle.idle();
            }
        }
    }

    /** What the busy-poll waits for: avail buffers on TX, backend frames on RX. */
    abstract boolean workArrived();
}
