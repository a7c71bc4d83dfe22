package dev.loomvisor.vmm.driver;

import java.util.SplittableRandom;

/**
 * What a vCPU transmits: frame sizes (one fixed size or a weighted mix), a pace (one frame every so many
 * nanoseconds, open loop, or as fast as the ring takes them, closed loop), how many frames (or unlimited),
 * whether they are DATA or PING (for round trips through an echo responder), and whether an open-loop frame
 * is stamped with the time it was due rather than the time it left. Sizes are drawn from a seeded
 * generator, so a run is repeatable. Immutable but for the size generator: one source per vCPU.
 */
public final class TrafficSource {

    private final int[] sizes;
    private final int[] weights;
    private final int[] cumulative;
    private final double intervalNanos;
    private final long count;
    private final byte type;
    private final byte[] dst;
    private final boolean stampIntended;
    private final long seed;
    /** Whether frame 0 is due at {@link #startNanos} rather than when the vCPU takes the plan up. */
    private final boolean anchored;
    private final long startNanos;
    private final SplittableRandom random;

    private TrafficSource(int[] sizes, int[] weights, double intervalNanos, long count, byte type, byte[] dst,
                          boolean stampIntended, long seed) {
        this(sizes, weights, intervalNanos, count, type, dst, stampIntended, seed, false, 0);
    }

    private TrafficSource(int[] sizes, int[] weights, double intervalNanos, long count, byte type, byte[] dst,
                          boolean stampIntended, long seed, boolean anchored, long startNanos) {
        for (int s : sizes) {
            if (s < FrameFormat.MIN_TEST_SIZE || s > FrameFormat.MAX_SIZE) {
                throw new IllegalArgumentException("frame size " + s + " outside [" + FrameFormat.MIN_TEST_SIZE
                        + ", " + FrameFormat.MAX_SIZE + "]");
            }
        }
        if (!(intervalNanos >= 0) || count < 0 || dst.length != 6) {
            throw new IllegalArgumentException("interval " + intervalNanos + " ns, count " + count);
        }
        this.sizes = sizes.clone();
        this.weights = weights.clone();
        this.cumulative = new int[weights.length];
        int sum = 0;
        for (int i = 0; i < weights.length; i++) {
            sum += weights[i];
            cumulative[i] = sum;
        }
        this.intervalNanos = intervalNanos;
        this.count = count;
        this.type = type;
        this.dst = dst.clone();
        this.stampIntended = stampIntended;
        this.seed = seed;
        this.anchored = anchored;
        this.startNanos = startNanos;
        this.random = new SplittableRandom(seed);
    }

    private static double interval(long ratePps) {
        return ratePps <= 0 ? 0 : 1e9 / ratePps;
    }

    /** Frames of one size at {@code ratePps} frames per second (0: closed loop). */
    public static TrafficSource fixed(int size, long ratePps, long count, byte[] dstMac) {
        return new TrafficSource(new int[] {size}, new int[] {1}, interval(ratePps), count, FrameFormat.DATA,
                dstMac, false, 1);
    }

    /** Frames of one size, one every {@code intervalNanos} (0: closed loop). */
    public static TrafficSource paced(int size, double intervalNanos, long count, byte[] dstMac) {
        return new TrafficSource(new int[] {size}, new int[] {1}, intervalNanos, count, FrameFormat.DATA, dstMac,
                false, 1);
    }

    /** Frames whose sizes follow {@code weights} (e.g. an IMIX of 64/576/1500 at 7/4/1). */
    public static TrafficSource mix(int[] sizes, int[] weights, long ratePps, long count, byte[] dstMac, long seed) {
        if (sizes.length != weights.length || sizes.length == 0) {
            throw new IllegalArgumentException("one weight per size");
        }
        return new TrafficSource(sizes, weights, interval(ratePps), count, FrameFormat.DATA, dstMac, false, seed);
    }

    /** The same source sending PINGs, for an echo responder to return. */
    public TrafficSource pings() {
        return new TrafficSource(sizes, weights, intervalNanos, count, FrameFormat.PING, dst, stampIntended, seed,
                anchored, startNanos);
    }

    /**
     * The same source stamping each open-loop frame with the time it was due: the receiver's latency then
     * includes any delay of the sender itself, as a load generator must count it.
     */
    public TrafficSource stampIntended() {
        return new TrafficSource(sizes, weights, intervalNanos, count, type, dst, true, seed, anchored, startNanos);
    }

    /**
     * The same source with frame 0 due at {@code nanoTime} ({@link System#nanoTime()}'s clock) instead of when the
     * vCPU takes the plan up. A fleet of senders given start times spread over one interval sends as guests
     * booted at different moments would; left to their vCPUs' start-up, thousands of them start within a few
     * milliseconds of each other and send in bursts at the same phase of every interval, which measures the
     * bursts, not the path. A start time already past when the vCPU takes the plan up makes the frames due
     * since then due at once.
     */
    public TrafficSource startingAt(long nanoTime) {
        return new TrafficSource(sizes, weights, intervalNanos, count, type, dst, stampIntended, seed, true, nanoTime);
    }

    /** True if frame 0 is due at {@link #startNanos()}, not when the vCPU takes the plan up. */
    public boolean anchored() {
        return anchored;
    }

    /** When frame 0 is due, if {@link #anchored()}. */
    public long startNanos() {
        return startNanos;
    }

    public int nextSize() {
        if (sizes.length == 1) {
            return sizes[0];
        }
        int r = random.nextInt(cumulative[cumulative.length - 1]);
        for (int i = 0; i < cumulative.length; i++) {
            if (r < cumulative[i]) {
                return sizes[i];
            }
        }
        return sizes[sizes.length - 1];
    }

    /** Frames per second; 0 means as fast as possible. */
    public long rate() {
        return intervalNanos == 0 ? 0 : Math.round(1e9 / intervalNanos);
    }

    /** True if frames are due at set times (open loop). */
    public boolean paced() {
        return intervalNanos > 0;
    }

    /** Frames to send; {@link Long#MAX_VALUE} for no limit. */
    public long count() {
        return count;
    }

    public byte type() {
        return type;
    }

    public byte[] dst() {
        return dst.clone();
    }

    public boolean stampsIntended() {
        return stampIntended;
    }

    /** Nanoseconds after the start at which frame {@code k} of this source is due (0 for closed loop). */
    public long dueNanos(long k) {
        return (long) (k * intervalNanos);
    }
}
