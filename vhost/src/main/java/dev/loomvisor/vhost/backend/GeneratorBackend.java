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

    /** Writes frame number {@code seq} of a generated stream into {@code buffer} (for receivers to compare). */
    public static void fill(UnsafeBuffer buffer, int length, long seq) {
        buffer.putLong(SEQUENCE_OFFSET, seq, ByteOrder.LITTLE_ENDIAN);
        int i = SEQUENCE_OFFSET + 8;
        // Byte i is (seq + i) mod 256: eight of them at a time, one long store instead of eight byte stores (a
        // 1,500-byte frame is rewritten for every sequence number). Each byte of RAMP added to the byte
        // seq + i without carrying into its neighbour (SWAR: add the low 7 bits, put the top bit back by xor).
        for (; i + Long.BYTES <= length; i += Long.BYTES) {
            long b = ((seq + i) & 0xff) * 0x0101_0101_0101_0101L;
            buffer.putLong(i, ((b & 0x7f7f_7f7f_7f7f_7f7fL) + RAMP) ^ (b & 0x8080_8080_8080_8080L),
                    ByteOrder.LITTLE_ENDIAN);
        }
        for (; i < length; i++) {
            buffer.putByte(i, (byte) (seq + i));
        }
    }

    /** Bytes 0, 1, ..., 7 of a long in little-endian order. */
    private static final long RAMP = 0x0706_0504_0302_0100L;

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
