package dev.loomvisor.vhost.backend;

import org.agrona.DirectBuffer;
import dev.loomvisor.vhost.stats.Counters;

/**
 * A backend that takes every transmitted frame and keeps only counts and a checksum (a /dev/null NIC);
 * it never has anything for the guest.
 */
public final class SinkBackend implements NetBackend {

    public enum Counter { FRAMES, BYTES }

    private final Counters<Counter> counters = new Counters<>(Counter.class);
    private volatile long checksum;

    @Override
    public boolean transmit(DirectBuffer frame, int offset, int length) {
        counters.addOrdered(Counter.FRAMES, 1);
        counters.addOrdered(Counter.BYTES, length);
        // Sum of per-frame checksums: independent of arrival order across flows, yet catches any
        // changed byte. One writer (the TX worker).
        checksum = checksum + Frames.checksum(frame, offset, length);
        return true;
    }

    @Override
    public int receive(FrameReceiver receiver, int limit) {
        return 0;
    }

    @Override
    public boolean rxPending() {
        return false;
    }

    @Override
    public void setRxListener(Runnable listener) {
        // Nothing ever arrives.
    }

    public Counters<Counter> counters() {
        return counters;
    }

    /** Sum over received frames of {@link Frames#checksum}. */
    public long checksum() {
        return checksum;
    }
}
