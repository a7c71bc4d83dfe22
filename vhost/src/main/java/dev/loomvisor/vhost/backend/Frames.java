package dev.loomvisor.vhost.backend;

import java.nio.ByteOrder;
import org.agrona.DirectBuffer;
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

    private static final long FNV_OFFSET = 0xcbf2_9ce4_8422_2325L;
    private static final long FNV_PRIME = 0x0000_0100_0000_01B3L;

    /**
     * A 64-bit checksum of {@code length} bytes: FNV-1a over 8-byte words in four interleaved lanes (word i
     * goes to lane i mod 4 of each 32-byte block), then the remaining words and bytes, then the lanes folded
     * in order. Cheap (four independent multiply chains instead of one), order sensitive, allocation-free;
     * used to check that payloads cross the data path intact.
     */
    public static long checksum(DirectBuffer buffer, int offset, int length) {
        long h0 = FNV_OFFSET;
        long h1 = FNV_OFFSET + 1;
        long h2 = FNV_OFFSET + 2;
        long h3 = FNV_OFFSET + 3;
        int i = 0;
        for (; i + 32 <= length; i += 32) {
            h0 = (h0 ^ buffer.getLong(offset + i, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME;
            h1 = (h1 ^ buffer.getLong(offset + i + 8, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME;
            h2 = (h2 ^ buffer.getLong(offset + i + 16, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME;
            h3 = (h3 ^ buffer.getLong(offset + i + 24, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME;
        }
        for (; i + 8 <= length; i += 8) {
            h0 = (h0 ^ buffer.getLong(offset + i, ByteOrder.LITTLE_ENDIAN)) * FNV_PRIME;
        }
        for (; i < length; i++) {
            h0 = (h0 ^ (buffer.getByte(offset + i) & 0xFF)) * FNV_PRIME;
        }
        long h = (h0 ^ h1) * FNV_PRIME;
        h = (h ^ h2) * FNV_PRIME;
        h = (h ^ h3) * FNV_PRIME;
        return (h ^ length) * FNV_PRIME;
    }
}
