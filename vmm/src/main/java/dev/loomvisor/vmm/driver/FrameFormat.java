package dev.loomvisor.vmm.driver;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * The test frames the emulated guests exchange: an Ethernet II frame with a local experimental ethertype
 * carrying what a receiver needs to check order, loss and latency.
 * <pre>
 * dst mac @0 (6) | src mac @6 (6) | ethertype 0x88B5 @12 (2, big-endian) | type @14 (1) | 0 @15 |
 * le64 seq @16 | le64 send time, System.nanoTime() @24 | le32 flow @32 | payload @36: byte j = (byte)(seq + j)
 * </pre>
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
    /** Smallest frame a source sends (Ethernet minimum without FCS). */
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
        b.putBytes(off + DST, dst);
        b.putBytes(off + SRC, src);
        b.putShort(off + ETHERTYPE, ETHERTYPE_LOOM, java.nio.ByteOrder.BIG_ENDIAN);
        b.putByte(off + TYPE, type);
        b.putByte(off + TYPE + 1, (byte) 0);
        b.putLong(off + SEQ, seq);
        b.putLong(off + TIMESTAMP, sendNanos);
        b.putInt(off + FLOW, flow);
        for (int j = PAYLOAD; j < size; j++) {
            b.putByte(off + j, (byte) (seq + j));
        }
    }

    public static boolean isLoom(DirectBuffer b, int off, int len) {
        return len >= PAYLOAD && b.getShort(off + ETHERTYPE, java.nio.ByteOrder.BIG_ENDIAN) == ETHERTYPE_LOOM;
    }

    /** True if the payload bytes are the ones {@link #write} put there for this frame's seq. */
    public static boolean payloadIntact(DirectBuffer b, int off, int len) {
        long seq = b.getLong(off + SEQ);
        for (int j = PAYLOAD; j < len; j++) {
            if (b.getByte(off + j) != (byte) (seq + j)) {
                return false;
            }
        }
        return true;
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
