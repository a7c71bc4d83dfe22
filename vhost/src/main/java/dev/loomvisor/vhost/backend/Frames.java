package dev.loomvisor.vhost.backend;

import java.nio.ByteOrder;
import org.agrona.DirectBuffer;
import org.agrona.UnsafeApi;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.MutableDirectBuffer;

/** Ethernet framing helpers shared by the backends and the tests: MACs as 48-bit longs, a checksum. */
public final class Frames {

    /** Destination MAC, source MAC, EtherType. */
    public static final int ETH_HEADER_LENGTH = 14;
    public static final int DST_OFFSET = 0;
    public static final int SRC_OFFSET = 6;
    public static final int ETHERTYPE_OFFSET = 12;
    /** IEEE 802 local experimental EtherType 1: what the generator and the tests send. */
    public static final int ETHERTYPE_EXPERIMENTAL = 0x88B5;
    public static final long BROADCAST = 0xFFFF_FFFF_FFFFL;

    private Frames() {
    }

    public static long readMac(DirectBuffer buffer, int offset) {
        return ((buffer.getShort(offset, ByteOrder.BIG_ENDIAN) & 0xFFFFL) << 32)
                | (buffer.getInt(offset + 2, ByteOrder.BIG_ENDIAN) & 0xFFFF_FFFFL);
    }

    public static void writeMac(MutableDirectBuffer buffer, int offset, long mac) {
        buffer.putShort(offset, (short) (mac >>> 32), ByteOrder.BIG_ENDIAN);
        buffer.putInt(offset + 2, (int) mac, ByteOrder.BIG_ENDIAN);
    }

    /** The I/G bit: set for group (multicast and broadcast) addresses. */
    public static boolean isGroup(long mac) {
        return (mac & 0x0100_0000_0000L) != 0;
    }

    /** A locally administered unicast MAC 02:00:xx:xx:xx:xx from a 32-bit id. */
    public static long localMac(int id) {
        return 0x0200_0000_0000L | (id & 0xFFFF_FFFFL);
    }

    /**
     * A 64-bit checksum of {@code length} bytes: cheap, order sensitive, allocation-free; used to check that
     * payloads cross the data path intact. 8-byte words go through four interleaved FNV-1a lanes, each step
     * rotated so that a change in a word's high bytes reaches every bit of the lane; the lanes are avalanched
     * and joined, and the tail follows. Four lanes, because one chain waits for each multiply before the next:
     * a 1,500-byte frame would cost 187 multiplies in a row, where four independent chains overlap.
     */
    public static long checksum(DirectBuffer buffer, int offset, int length) {
        if (length >= 32 && buffer instanceof UnsafeBuffer) {
            // One bounds check for the whole range, then plain loads: the buffer's own getLong checks every
            // access, a compare and a branch per 8 bytes that the JIT did not hoist out of this loop.
            buffer.boundsCheck(offset, length);
            return checksumUnchecked(buffer.byteArray(), buffer.addressOffset() + offset, length);
        }
        long h0 = FNV_OFFSET;
        long h1 = FNV_OFFSET + 1;
        long h2 = FNV_OFFSET + 2;
        long h3 = FNV_OFFSET + 3;
        int i = 0;
        for (; i + 32 <= length; i += 32) {
            h0 = Long.rotateLeft((h0 ^ buffer.getLong(offset + i, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME, 29);
            h1 = Long.rotateLeft((h1 ^ buffer.getLong(offset + i + 8, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME, 29);
            h2 = Long.rotateLeft((h2 ^ buffer.getLong(offset + i + 16, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME, 29);
            h3 = Long.rotateLeft((h3 ^ buffer.getLong(offset + i + 24, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME, 29);
        }
        // Each lane avalanched before they meet, so that changes in two lanes cannot cancel out.
        long h = mix(h0) ^ Long.rotateLeft(mix(h1), 16) ^ Long.rotateLeft(mix(h2), 32) ^ Long.rotateLeft(mix(h3), 48);
        for (; i + 8 <= length; i += 8) {
            h = Long.rotateLeft((h ^ buffer.getLong(offset + i, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME, 29);
        }
        for (; i < length; i++) {
            h = (h ^ (buffer.getByte(offset + i) & 0xFF)) * FNV_PRIME;
        }
        return h;
    }

    /** {@link #checksum} over {@code length} bytes at {@code base + address}, already bounds-checked. */
    private static long checksumUnchecked(byte[] base, long address, int length) {
        long h0 = FNV_OFFSET;
        long h1 = FNV_OFFSET + 1;
        long h2 = FNV_OFFSET + 2;
        long h3 = FNV_OFFSET + 3;
        int i = 0;
        for (; i + 32 <= length; i += 32) {
            long a = address + i;
            h0 = Long.rotateLeft((h0 ^ le(UnsafeApi.getLong(base, a))) * FNV_PRIME, 29);
            h1 = Long.rotateLeft((h1 ^ le(UnsafeApi.getLong(base, a + 8))) * FNV_PRIME, 29);
            h2 = Long.rotateLeft((h2 ^ le(UnsafeApi.getLong(base, a + 16))) * FNV_PRIME, 29);
            h3 = Long.rotateLeft((h3 ^ le(UnsafeApi.getLong(base, a + 24))) * FNV_PRIME, 29);
        }
        long h = mix(h0) ^ Long.rotateLeft(mix(h1), 16) ^ Long.rotateLeft(mix(h2), 32) ^ Long.rotateLeft(mix(h3), 48);
        for (; i + 8 <= length; i += 8) {
            h = Long.rotateLeft((h ^ le(UnsafeApi.getLong(base, address + i))) * FNV_PRIME, 29);
        }
        for (; i < length; i++) {
            h = (h ^ (UnsafeApi.getByte(base, address + i) & 0xFF)) * FNV_PRIME;
        }
        return h;
    }

    private static final boolean NATIVE_LE = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    /** A word loaded in native order, as the little-endian value the checksum is defined on. */
    private static long le(long nativeWord) {
        return NATIVE_LE ? nativeWord : Long.reverseBytes(nativeWord);
    }

    /** MurmurHash3's 64-bit finaliser: every input bit flips each output bit with probability about 1/2. */
    private static long mix(long k) {
        k = (k ^ (k >>> 33)) * 0xff51_afd7_ed55_8ccdL;
        k = (k ^ (k >>> 33)) * 0xc4ce_b9fe_1a85_ec53L;
        return k ^ (k >>> 33);
    }

    private static final long FNV_OFFSET = 0xcbf2_9ce4_8422_2325L;
    private static final long FNV_PRIME = 0x0000_0100_0000_01B3L;
}
