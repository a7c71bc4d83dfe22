package dev.loomvisor.vhost.backend;

import org.agrona.DirectBuffer;
import dev.loomvisor.vhost.stats.Counters;

/**
 * A backend that takes every transmitted frame and keeps only counts and a checksum (a /dev/null NIC);
 * it never has anything for the guest. Given an expected frame length, it also counts the frames of any
 * other length (a peer that sends 64-byte frames must deliver 64-byte frames).
 */
public final class SinkBackend implements NetBackend {

    public enum Counter {
        FRAMES, BYTES,
        /** Frames whose length differs from the expected one (never counted without one). */
        WRONG_LENGTH
    }

    private final Counters<Counter> counters = new Counters<>(Counter.class);
    private final int expectedLength;
    private volatile long checksum;

    /** A sink that takes frames of any length. */
    public SinkBackend() {
        this(0);
    }

    /** @param expectedLength the length every frame should have; 0 for any */
    public SinkBackend(int expectedLength) {
        if (expectedLength < 0) {
            throw new IllegalArgumentException("expected length " + expectedLength);
        }
        this.expectedLength = expectedLength;
    }

    public int expectedLength() {
        return expectedLength;
    }

    @Override
    public boolean transmit(DirectBuffer frame, int offset, int length) {
        counters.addOrdered(Counter.FRAMES, 1);
        counters.addOrdered(Counter.BYTES, length);
        if (expectedLength != 0 && length != expectedLength) {
            counters.addOrdered(Counter.WRONG_LENGTH, 1);
        }
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
