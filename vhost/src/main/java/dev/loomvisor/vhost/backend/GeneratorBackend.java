package dev.loomvisor.vhost.backend;

import dev.loomvisor.vmm.net.FrameLimits;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
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

    /**
     * {@link #SLOTS} frames, slot j for the sequence numbers equal to j modulo 256: the pattern after the
     * sequence number depends only on that residue, so every slot is patterned once, here, and a frame costs one
     * 8-byte store of its sequence number (at 1,514 bytes the per-frame pattern copy cost about as much as the
     * copy into the guest). 16 KiB at 64 B, 379 KiB at 1,514 B, one per generator.
     */
    private final UnsafeBuffer frames;
    private final int length;
    private final long count;
    private final Counters<Counter> counters = new Counters<>(Counter.class);
    /**
     * The next sequence number: written only by the RX worker, read by any thread (rxPending). A release store
     * per batch, not a volatile one: a volatile store is a full fence, which waits for every store of the batch
     * into the guest's buffers to reach the cache, lines the frontend's CPU holds.
     */
    private long next;
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
        this.frames = new UnsafeBuffer(new byte[SLOTS * length]);
        for (int j = 0; j < SLOTS; j++) {
            int o = j * length;
            Frames.writeMac(frames, o + Frames.DST_OFFSET, dst);
            Frames.writeMac(frames, o + Frames.SRC_OFFSET, src);
            frames.putShort(o + Frames.ETHERTYPE_OFFSET, (short) Frames.ETHERTYPE_EXPERIMENTAL, ByteOrder.BIG_ENDIAN);
            fill(frames, o, length, j);
        }
    }

    private static final VarHandle NEXT;

    static {
        try {
            NEXT = MethodHandles.lookup().findVarHandle(GeneratorBackend.class, "next", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
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
        fill(buffer, 0, length, seq);
    }

    private static void fill(UnsafeBuffer buffer, int offset, int length, long seq) {
        buffer.putLong(offset + SEQUENCE_OFFSET, seq, ByteOrder.LITTLE_ENDIAN);
        if (length > PATTERN_OFFSET) {
            // (byte) (seq + i) == PATTERN[((seq + PATTERN_OFFSET) mod 256) + (i - PATTERN_OFFSET)]
            buffer.putBytes(offset + PATTERN_OFFSET, PATTERN, (int) ((seq + PATTERN_OFFSET) & 0xff),
                    length - PATTERN_OFFSET);
        }
    }

    /** One slot per residue of the sequence number modulo 256 (the pattern's period). */
    private static final int SLOTS = 256;
    /** Sequence numbers stored ahead at once: at most a receive batch. */
    private static final int STAGE_FRAMES = 64;

    /**
     * Stores the sequence numbers of a stage of frames, then offers them: a frame's copy then never reads the
     * bytes just stored. A copy that does (its wide loads overlap the narrower store, which cannot forward) waits
     * for every earlier store to retire, the previous frame's stores into the guest's buffers included, which
     * miss the cache (the frontend's CPU owns those lines): every frame would pay a cross-CPU fetch in series.
     * Slots stored but not taken are stored again on the next call.
     */
    @Override
    public int receive(FrameReceiver receiver, int limit) {
        long seq = next; // this worker's own last store
        int n = 0;
        outer:
        while (n < limit && seq < count) {
            int k = (int) Math.min(Math.min(STAGE_FRAMES, limit - n), count - seq);
            for (int i = 0; i < k; i++) {
                long s = seq + i;
                frames.putLong(slot(s) + SEQUENCE_OFFSET, s, ByteOrder.LITTLE_ENDIAN);
            }
            for (int i = 0; i < k; i++) {
                if (!receiver.onFrame(frames, slot(seq), length)) {
                    break outer;
                }
                seq++;
                n++;
            }
        }
        NEXT.setRelease(this, seq);
        if (n > 0) {
            counters.addOrdered(Counter.GENERATED_FRAMES, n);
            counters.addOrdered(Counter.GENERATED_BYTES, (long) n * length);
        }
        return n;
    }

    /** Where the frame with sequence number {@code seq} is staged. */
    private int slot(long seq) {
        return ((int) seq & (SLOTS - 1)) * length;
    }

    @Override
    public boolean rxPending() {
        return (long) NEXT.getAcquire(this) < count;
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
