package dev.loomvisor.vhost.work;

import dev.loomvisor.core.Notifier;

/**
 * vhost_poll: the wait-queue entry a virtqueue hangs on its kick eventfd. Each signal queues the
 * virtqueue's work on its current worker; the listener runs on the signalling (vCPU) thread and only
 * sets a bit and pushes a node, so it never blocks the guest.
 */
public final class VhostPoll implements Notifier.Listener {

    private final VhostWork work;
    private final WorkTarget target;
    private final java.util.concurrent.atomic.AtomicLong signals = new java.util.concurrent.atomic.AtomicLong();
    private volatile Notifier notifier;

    public VhostPoll(VhostWork work, WorkTarget target) {
        this.work = work;
        this.target = target;
    }

    public VhostWork work() {
        return work;
    }

    /**
     * vhost_poll_start: listens on {@code kick}. As vfs_poll reports an already readable fd, a kick that
     * came before the listener was installed (it did not call us) queues the work at once.
     */
    public void start(Notifier kick) {
        stop();
        notifier = kick;
        kick.setListener(this);
        if (kick.isSignalled()) {
            queue();
        }
    }

    /** vhost_poll_stop: stops listening; work already queued still runs. */
    public void stop() {
        Notifier n = notifier;
        if (n != null) {
            notifier = null;
            Notifier.Listener previous = n.setListener(null);
            if (previous != null && previous != this) {
                n.setListener(previous); // someone else took the fd over meanwhile: leave theirs in place
            }
        }
    }

    /** The fd this poll listens on, or null. */
    public Notifier notifier() {
        return notifier;
    }

    /** vhost_poll_queue: true if a worker took the work (already queued counts as taken). */
    public boolean queue() {
        return target.queueWork(work);
    }

    /** Signals seen on the fd (kicks), counted on the signalling thread. */
    public long signals() {
        return signals.get();
    }

    @Override
    public void onSignal(Notifier n) {
        signals.incrementAndGet();
        target.queueWork(work);
    }
}
