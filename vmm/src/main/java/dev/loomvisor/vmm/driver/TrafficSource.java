package dev.loomvisor.vmm.driver;

import java.util.SplittableRandom;

/**
 * What a vCPU transmits: frame sizes (one fixed size or a weighted mix), a rate (frames per second, or 0
 * for as fast as the ring takes them), how many frames (or unlimited), and whether they are DATA or PING
 * (for round trips through an echo responder). Sizes are drawn from a seeded generator, so a run is
 * repeatable.
 */
public final class TrafficSource {

    private final int[] sizes;
    private final int[] cumulative;
    private final long rate;
    private final long count;
    private final byte type;
    private final byte[] dst;
    private final SplittableRandom random;

    private TrafficSource(int[] sizes, int[] weights, long rate, long count, byte type, byte[] dst, long seed) {
        for (int s : sizes) {
            if (s < FrameFormat.MIN_SIZE || s > FrameFormat.MAX_SIZE) {
                throw new IllegalArgumentException("frame size " + s + " outside [60, 1514]");
            }
        }
        this.sizes = sizes.clone();
        this.cumulative = new int[weights.length];
        int sum = 0;
        for (int i = 0; i < weights.length; i++) {
            sum += weights[i];
            cumulative[i] = sum;
        }
        this.rate = rate;
        this.count = count;
        this.type = type;
        this.dst = dst.clone();
        this.random = new SplittableRandom(seed);
    }

    /** Frames of one size. */
    public static TrafficSource fixed(int size, long ratePps, long count, byte[] dstMac) {
        return new TrafficSource(new int[] {size}, new int[] {1}, ratePps, count, FrameFormat.DATA, dstMac, 1);
    }

    /** Frames whose sizes follow {@code weights} (e.g. an IMIX of 64/576/1500 at 7/4/1). */
    public static TrafficSource mix(int[] sizes, int[] weights, long ratePps, long count, byte[] dstMac, long seed) {
        if (sizes.length != weights.length || sizes.length == 0) {
            throw new IllegalArgumentException("one weight per size");
        }
        return new TrafficSource(sizes, weights, ratePps, count, FrameFormat.DATA, dstMac, seed);
    }

    /** The same source sending PINGs, for an echo responder to return. */
    public TrafficSource pings() {
        TrafficSource t = new TrafficSource(sizes, weightsBack(), rate, count, FrameFormat.PING, dst, 1);
        return t;
    }

    private int[] weightsBack() {
        int[] w = new int[cumulative.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = cumulative[i] - (i == 0 ? 0 : cumulative[i - 1]);
        }
        return w;
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
        return rate;
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

    /** Nanoseconds after the start at which frame {@code seq} is due (0 for as-fast-as-possible). */
    public long dueNanos(long seq) {
        return rate == 0 ? 0 : (long) (seq * (1e9 / rate));
    }
}
