package dev.loomvisor.vhost.net;

/** virtio-net constants the data path needs (virtio 1.2 section 5.1; reference/virtio.md). */
public final class VirtioNet {

    public static final int RX = 0;
    public static final int TX = 1;

    public static final int F_CSUM = 0;
    public static final int F_MRG_RXBUF = 15;
    public static final int F_EVENT_IDX = 29;
    public static final int F_INDIRECT_DESC = 28;
    public static final int F_VERSION_1 = 32;
    /** VHOST_F_LOG_ALL (26) and VHOST_NET_F_VIRTIO_NET_HDR (27): vhost's own bits. */
    public static final int VHOST_F_LOG_ALL = 26;
    public static final int VHOST_NET_F_VIRTIO_NET_HDR = 27;

    /** What this vhost-net offers (VHOST_GET_FEATURES). */
    public static final long FEATURES = bit(F_MRG_RXBUF) | bit(F_EVENT_IDX) | bit(F_INDIRECT_DESC)
            | bit(F_VERSION_1) | bit(VHOST_NET_F_VIRTIO_NET_HDR);

    /** struct virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
    public static final int HDR_LEN = 12;
    /** The legacy header without num_buffers (neither VERSION_1 nor MRG_RXBUF). */
    public static final int HDR_LEN_LEGACY = 10;
    public static final int HDR_NUM_BUFFERS = 10;

    /** VHOST_NET_WEIGHT: bytes per handler run before it requeues itself. */
    public static final int WEIGHT_BYTES = 0x80000;
    /** VHOST_NET_PKT_WEIGHT: packets per handler run before it requeues itself. */
    public static final int WEIGHT_PACKETS = 256;
    /** VHOST_NET_BATCH: used entries published (and an interrupt considered) per batch. */
    public static final int BATCH = 64;
    /** Largest frame a chain may carry: 64 KiB of GSO frame (above it, the chain is dropped). */
    public static final int MAX_FRAME = 65535;

    private VirtioNet() {
    }

    public static long bit(int b) {
        return 1L << b;
    }

    public static boolean has(long features, int b) {
        return (features & bit(b)) != 0;
    }

    /** The header the guest and device use with these features. */
    public static int hdrLen(long features) {
        return has(features, F_VERSION_1) || has(features, F_MRG_RXBUF) ? HDR_LEN : HDR_LEN_LEGACY;
    }
}
