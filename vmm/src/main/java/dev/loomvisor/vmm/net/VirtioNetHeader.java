package dev.loomvisor.vmm.net;

import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * The virtio_net_hdr in front of every frame (virtio 1.2 §5.1.6), little-endian:
 * <pre>
 * u8 flags @0 | u8 gso_type @1 | le16 hdr_len @2 | le16 gso_size @4 | le16 csum_start @6 |
 * le16 csum_offset @8 | le16 num_buffers @10
 * </pre>
 * 12 bytes with VERSION_1 or MRG_RXBUF; a legacy device without either leaves num_buffers out (10 bytes).
 */
public final class VirtioNetHeader {

    public static final int SIZE = 12;
    /** The legacy header without num_buffers: neither VERSION_1 nor MRG_RXBUF (virtio 1.2 §5.1.6.1). */
    public static final int LEGACY_SIZE = 10;
    public static final int FLAGS = 0;
    public static final int GSO_TYPE = 1;
    public static final int HDR_LEN = 2;
    public static final int GSO_SIZE = 4;
    public static final int CSUM_START = 6;
    public static final int CSUM_OFFSET = 8;
    public static final int NUM_BUFFERS = 10;

    public static final int FLAG_NEEDS_CSUM = 1;
    public static final int FLAG_DATA_VALID = 2;
    public static final int GSO_NONE = 0;

    /** Smallest RX buffer without MRG_RXBUF and GSO features: the header and a 1514-byte frame (§5.1.6.3.1). */
    public static final int MIN_RX_BUFFER = SIZE + FrameLimits.MAX_FRAME;

    private VirtioNetHeader() {
    }

    /** The header's length with these negotiated features. */
    public static int length(long features) {
        return NetFeatures.has(features, NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF) ? SIZE : LEGACY_SIZE;
    }

    /** Writes a header with no offloads and the given num_buffers at {@code off}. */
    public static void put(MutableDirectBuffer b, int off, int numBuffers) {
        b.putLong(off, 0);
        b.putShort(off + 8, (short) 0);
        b.putShort(off + NUM_BUFFERS, (short) numBuffers);
    }

    public static int numBuffers(DirectBuffer b, int off) {
        return b.getShort(off + NUM_BUFFERS) & 0xffff;
    }
}
