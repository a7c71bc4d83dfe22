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
    /** The batch in progress (TX worker only): published by {@link #flushTransmit()}, once per batch. */
    private long pendingFrames;
    private long pendingBytes;
    private long pendingWrongLength;
    private long sum;

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
        pendingFrames++;
        pendingBytes += length;
        if (expectedLength != 0 && length != expectedLength) {
            pendingWrongLength++;
        }
        // Sum of per-frame checksums: independent of arrival order across flows, yet catches any
        // changed byte. One writer (the TX worker).
        sum += Frames.checksum(frame, offset, length);
        return true;
    }

    /**
     * Publishes the batch's counts and checksum: a volatile store per frame would cost a full fence each, and
     * the TX handler flushes at the end of every batch and every run, so readers are at most one batch behind.
     */
    @Override
    public void flushTransmit() {
        if (pendingFrames != 0) {
            counters.addOrdered(Counter.FRAMES, pendingFrames);
            counters.addOrdered(Counter.BYTES, pendingBytes);
            if (pendingWrongLength != 0) {
                counters.addOrdered(Counter.WRONG_LENGTH, pendingWrongLength);
            }
            pendingFrames = 0;
            pendingBytes = 0;
            pendingWrongLength = 0;
            checksum = sum;
        }
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
