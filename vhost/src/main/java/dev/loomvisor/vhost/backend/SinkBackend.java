package dev.loomvisor.vhost.backend;

import org.agrona.DirectBuffer;
import dev.loomvisor.vhost.stats.Counters;

/**
 * A backend that takes every transmitted frame and keeps only counts and a checksum (a /dev/null NIC);
 * it never has anything for the guest. Counts and checksum are published at the end of each TX batch
 * ({@link #flushTransmit}). Given an expected frame length, it also counts the frames of any
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
    // The batch so far, touched by the TX worker only: published at flushTransmit, so a frame costs plain
    // adds and no store others read (a volatile store per frame was a full fence per frame).
    private long batchFrames;
    private long batchBytes;
    private long batchWrongLength;
    private long batchChecksum;

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
        batchFrames++;
        batchBytes += length;
        if (expectedLength != 0 && length != expectedLength) {
            batchWrongLength++;
        }
        // Sum of per-frame checksums: independent of arrival order across flows, yet catches any
        // changed byte.
        batchChecksum += Frames.checksum(frame, offset, length);
        return true;
    }

    /** Publishes the batch's counts and checksum (one writer: the TX worker). */
    @Override
    public void flushTransmit() {
        if (batchFrames == 0) {
            return;
        }
        counters.addOrdered(Counter.FRAMES, batchFrames);
        counters.addOrdered(Counter.BYTES, batchBytes);
        if (batchWrongLength != 0) {
            counters.addOrdered(Counter.WRONG_LENGTH, batchWrongLength);
        }
        checksum = checksum + batchChecksum;
        batchFrames = 0;
        batchBytes = 0;
        batchWrongLength = 0;
        batchChecksum = 0;
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
