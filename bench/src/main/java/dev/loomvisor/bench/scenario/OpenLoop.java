package dev.loomvisor.bench.scenario;

import java.util.concurrent.locks.LockSupport;

/**
 * The schedule of an open-loop sender at a fixed rate, as wrk2 keeps it: frame {@code i} is due at
 * {@code start + i * period}, whatever happened to frame {@code i - 1}. A receiver measures each frame's
 * latency from that intended time, not from when the sender managed to send it, so a stall anywhere
 * (responder, ring, sender) shows up in every frame that should have gone out during it (coordinated
 * omission corrected), not in the one frame that met the stall.
 */
public final class OpenLoop {

    /** Below this, spinning is cheaper and more precise than parking. */
    private static final long SPIN_NANOS = 50_000;

    private final long startNanos;
    private final double periodNanos;

    public OpenLoop(long startNanos, long framesPerSecond) {
        if (framesPerSecond <= 0) {
            throw new IllegalArgumentException("rate must be positive: " + framesPerSecond);
        }
        this.startNanos = startNanos;
        this.periodNanos = 1e9 / framesPerSecond;
    }

    /** The time frame {@code i} is due, on the {@link System#nanoTime()} clock. */
    public long intendedNanos(long i) {
        return startNanos + (long) (i * periodNanos);
    }

    /** Waits until frame {@code i} is due and returns its intended time; returns at once if it is late. */
    public long awaitSlot(long i) {
        long due = intendedNanos(i);
        long wait;
        while ((wait = due - System.nanoTime()) > 0) {
            if (wait > SPIN_NANOS) {
                LockSupport.parkNanos(wait - SPIN_NANOS);
            } else {
                Thread.onSpinWait();
            }
        }
        return due;
    }
}
