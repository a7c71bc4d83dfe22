package dev.loomvisor.vmm.driver;

import java.nio.ByteOrder;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * The one test frame the emulated guests exchange: an Ethernet II frame with the IEEE local experimental
 * ethertype carrying what a receiver needs to check order, loss, integrity and latency.
 * <pre>
 * dst mac @0 (6) | src mac @6 (6) | ethertype 0x88B5 @12 (2, big-endian) | type @14 (1) | 0 @15 |
 * le64 seq @16 | le64 send time, System.nanoTime() @24 | le32 flow @32 | payload @36: byte j = (byte)(31 j + 7)
 * </pre>
 * The send time is the time the frame left, or for an open-loop source the time it was due to leave, so a
 * receiver's latency counts the sender's own stalls (coordinated omission corrected). The payload depends on
 * the offset only: a sender prepares a TX buffer once and then writes per frame only the seq and the time.
 */
public final class FrameFormat {

    public static final int DST = 0;
    public static final int SRC = 6;
    public static final int ETHERTYPE = 12;
    public static final int TYPE = 14;
    public static final int SEQ = 16;
    public static final int TIMESTAMP = 24;
    public static final int FLOW = 32;
    public static final int PAYLOAD = 36;
    /** Shortest frame that carries every field above (what hostile-size tests send). */
    public static final int MIN_TEST_SIZE = PAYLOAD;
    /** Smallest frame on a real wire (Ethernet minimum without FCS). */
    public static final int MIN_SIZE = 60;
    /** Largest frame without GSO (1500-byte MTU + 14-byte header). */
    public static final int MAX_SIZE = 1514;

    public static final short ETHERTYPE_LOOM = (short) 0x88B5;
    public static final byte DATA = 0;
    public static final byte PING = 1;
    public static final byte PONG = 2;

    private FrameFormat() {
    }

    /** Writes a whole frame of {@code size} bytes at {@code off}. */
    public static void write(MutableDirectBuffer b, int off, byte[] dst, byte[] src, byte type, long seq,
                             long sendNanos, int flow, int size) {
        writeFixed(b, off, dst, src, type, flow, size);
        stamp(b, off, seq, sendNanos);
    }

    /** Writes everything of a frame but its seq and send time: what stays the same from frame to frame. */
    public static void writeFixed(MutableDirectBuffer b, int off, byte[] dst, byte[] src, byte type, int flow,
                                  int size) {
        b.putBytes(off + DST, dst);
        b.putBytes(off + SRC, src);
        b.putShort(off + ETHERTYPE, ETHERTYPE_LOOM, ByteOrder.BIG_ENDIAN);
        b.putByte(off + TYPE, type);
        b.putByte(off + TYPE + 1, (byte) 0);
        b.putInt(off + FLOW, flow, ByteOrder.LITTLE_ENDIAN);
        for (int j = PAYLOAD; j < size; j++) {
            b.putByte(off + j, patternByte(j));
        }
    }

    /** Writes the per-frame fields into a frame {@link #writeFixed} prepared. */
    public static void stamp(MutableDirectBuffer b, int off, long seq, long sendNanos) {
        b.putLong(off + SEQ, seq, ByteOrder.LITTLE_ENDIAN);
        b.putLong(off + TIMESTAMP, sendNanos, ByteOrder.LITTLE_ENDIAN);
    }

    static byte patternByte(int j) {
        return (byte) (31 * j + 7);
    }

    public static boolean isLoom(DirectBuffer b, int off, int len) {
        return len >= PAYLOAD && b.getShort(off + ETHERTYPE, ByteOrder.BIG_ENDIAN) == ETHERTYPE_LOOM;
    }

    public static long seq(DirectBuffer b, int off) {
        return b.getLong(off + SEQ, ByteOrder.LITTLE_ENDIAN);
    }

    public static long sendNanos(DirectBuffer b, int off) {
        return b.getLong(off + TIMESTAMP, ByteOrder.LITTLE_ENDIAN);
    }

    /** The source MAC as a 48-bit number, to key flows by. */
    public static long srcMac(DirectBuffer b, int off) {
        return ((b.getShort(off + SRC, ByteOrder.BIG_ENDIAN) & 0xFFFFL) << 32)
                | (b.getInt(off + SRC + 2, ByteOrder.BIG_ENDIAN) & 0xFFFF_FFFFL);
    }

    /** True if every payload byte is the one {@link #write} put there. */
    public static boolean payloadIntact(DirectBuffer b, int off, int len) {
        for (int j = PAYLOAD; j < len; j++) {
            if (b.getByte(off + j) != patternByte(j)) {
                return false;
            }
        }
        return true;
    }

    /** The light check a benchmark can afford per frame: the last payload byte only. */
    public static boolean lastByteIntact(DirectBuffer b, int off, int len) {
        return len <= PAYLOAD || b.getByte(off + len - 1) == patternByte(len - 1);
    }

    /** Turns a received PING at {@code off} into its PONG in place: swaps the MACs, keeps seq and time. */
    public static void toPong(MutableDirectBuffer b, int off) {
        for (int i = 0; i < 6; i++) {
            byte d = b.getByte(off + DST + i);
            b.putByte(off + DST + i, b.getByte(off + SRC + i));
            b.putByte(off + SRC + i, d);
        }
        b.putByte(off + TYPE, PONG);
    }
}
