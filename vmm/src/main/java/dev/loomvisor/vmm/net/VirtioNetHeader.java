package dev.loomvisor.vmm.net;

import dev.loomvisor.vmm.virtio.DescriptorChain;
import org.agrona.MutableDirectBuffer;

/**
 * The 12-byte virtio_net_hdr with VERSION_1 (reference/virtio.md line 56-59), little-endian:
 * <pre>
 * u8 flags @0 | u8 gso_type @1 | le16 hdr_len @2 | le16 gso_size @4 | le16 csum_start @6 |
 * le16 csum_offset @8 | le16 num_buffers @10
 * </pre>
 */
public final class VirtioNetHeader {

    public static final int SIZE = 12;
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

    /** Smallest RX buffer without GSO features: 1514-byte frame + header (line 60). */
    public static final int MIN_RX_BUFFER = 1526;

    private VirtioNetHeader() {
    }

    /** Writes a header with no offloads and the given num_buffers at {@code off}. */
    public static void put(MutableDirectBuffer b, int off, int numBuffers) {
        b.putLong(off, 0);
        b.putShort(off + 8, (short) 0);
        b.putShort(off + NUM_BUFFERS, (short) numBuffers);
    }

    public static int numBuffers(org.agrona.DirectBuffer b, int off) {
        return b.getShort(off + NUM_BUFFERS) & 0xffff;
    }

    /**
     * A TX chain's frame (the readable part after the header) into {@code dst} at {@code off}, at most
     * {@code max} bytes. Returns the frame length, or -1 if the chain is shorter than a header or the frame
     * is longer than {@code max} (an error for that frame, not for the ring).
     */
    public static int readTxFrame(DescriptorChain chain, MutableDirectBuffer dst, int off, int max) {
        long frame = chain.readableLength() - SIZE;
        if (frame < 0 || frame > max) {
            return -1;
        }
        return chain.readReadable(SIZE, dst, off, (int) frame);
    }
}
