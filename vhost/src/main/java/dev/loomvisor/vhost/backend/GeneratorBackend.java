package dev.loomvisor.vhost.backend;

import dev.loomvisor.vmm.net.FrameLimits;
import java.nio.ByteOrder;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import dev.loomvisor.vhost.stats.Counters;

/**
 * A backend that produces frames for the guest as fast as the guest posts RX buffers, up to a count, and
 * sinks what the guest transmits. Each frame: Ethernet header ({@code dst}, {@code src}, the
 * experimental EtherType), then the 64-bit sequence number (little-endian) at offset 14, then a byte
 * pattern derived from it, so a receiver can check order and content. One preallocated frame buffer.
 */
public final class GeneratorBackend implements NetBackend {

    /** Offset of the little-endian sequence number in each generated frame. */
    public static final int SEQUENCE_OFFSET = Frames.ETH_HEADER_LENGTH;

    public enum Counter { GENERATED_FRAMES, GENERATED_BYTES, TX_FRAMES, TX_BYTES }

    private final UnsafeBuffer frame;
    private final int length;
    private final long count;
    private final Counters<Counter> counters = new Counters<>(Counter.class);
    private volatile long next;
    private volatile Runnable rxListener;

    /**
     * @param length frame length, 22 to 1514 bytes
     * @param count frames to generate; {@link Long#MAX_VALUE} for an endless stream
     */
    public GeneratorBackend(long src, long dst, int length, long count) {
        if (length < SEQUENCE_OFFSET + 8 || length > FrameLimits.MAX_FRAME) {
            throw new IllegalArgumentException("frame length " + length + " outside 22..1514");
        }
        this.length = length;
        this.count = count;
        this.frame = new UnsafeBuffer(new byte[length]);
        Frames.writeMac(frame, Frames.DST_OFFSET, dst);
        Frames.writeMac(frame, Frames.SRC_OFFSET, src);
        frame.putShort(Frames.ETHERTYPE_OFFSET, (short) Frames.ETHERTYPE_EXPERIMENTAL, ByteOrder.BIG_ENDIAN);
    }

    /** Where the pattern after the sequence number starts. */
    private static final int PATTERN_OFFSET = SEQUENCE_OFFSET + 8;

    /**
     * Byte k is {@code (byte) k}, 256 + a frame long: the pattern of any frame is one slice of it, so a
     * frame is filled with one bulk copy instead of a store per byte (at 1,514 bytes the per-byte loop cost
     * more than the copy into the guest).
     */
    private static final UnsafeBuffer PATTERN = pattern();

    private static UnsafeBuffer pattern() {
        byte[] b = new byte[256 + FrameLimits.MAX_FRAME];
        for (int k = 0; k < b.length; k++) {
            b[k] = (byte) k;
        }
        return new UnsafeBuffer(b);
    }

    /**
     * Writes frame number {@code seq} of a generated stream into {@code buffer} (for receivers to compare):
     * the sequence number, then byte i is {@code (byte) (seq + i)}.
     */
    public static void fill(UnsafeBuffer buffer, int length, long seq) {
        buffer.putLong(SEQUENCE_OFFSET, seq, ByteOrder.LITTLE_ENDIAN);
        if (length > PATTERN_OFFSET) {
            // (byte) (seq + i) == PATTERN[((seq + PATTERN_OFFSET) mod 256) + (i - PATTERN_OFFSET)]
            buffer.putBytes(PATTERN_OFFSET, PATTERN, (int) ((seq + PATTERN_OFFSET) & 0xff), length - PATTERN_OFFSET);
        }
    }

    @Override
    public int receive(FrameReceiver receiver, int limit) {
        long seq = next;
        int n = 0;
        while (n < limit && seq < count) {
            fill(frame, length, seq);
            if (!receiver.onFrame(frame, 0, length)) {
                break;
            }
            seq++;
            n++;
        }
        next = seq;
        if (n > 0) {
            counters.addOrdered(Counter.GENERATED_FRAMES, n);
            counters.addOrdered(Counter.GENERATED_BYTES, (long) n * length);
        }
        return n;
    }

    @Override
    public boolean rxPending() {
        return next < count;
    }

    @Override
    public void setRxListener(Runnable listener) {
        rxListener = listener;
        if (listener != null && rxPending()) {
            listener.run();
        }
    }

    @Override
    public boolean transmit(DirectBuffer f, int offset, int len) {
        counters.addOrdered(Counter.TX_FRAMES, 1);
        counters.addOrdered(Counter.TX_BYTES, len);
        return true;
    }

    public Counters<Counter> counters() {
        return counters;
    }
}
