package dev.loomvisor.vhost.net;

import dev.loomvisor.vmm.net.NetFeatures;

/**
 * vhost-net's own constants (drivers/vhost/net.c): its two rings, its feature offer and the weights and batch
 * of its handlers. The virtio-net feature bits, header and frame limits it follows are vmm's
 * ({@link NetFeatures}, {@link dev.loomvisor.vmm.net.VirtioNetHeader}, {@link dev.loomvisor.vmm.net.FrameLimits}).
 */
public final class VirtioNet {

    public static final int RX = 0;
    public static final int TX = 1;

    /** VHOST_F_LOG_ALL (bit 26): dirty logging of guest writes; not offered. */
    public static final long VHOST_F_LOG_ALL = 1L << 26;
    /** VHOST_NET_F_VIRTIO_NET_HDR (bit 27): vhost adds and strips the virtio-net header itself. */
    public static final long VHOST_NET_F_VIRTIO_NET_HDR = 1L << 27;

    /** What this vhost-net offers (VHOST_GET_FEATURES). */
    public static final long FEATURES = NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX | NetFeatures.INDIRECT_DESC
            | NetFeatures.VERSION_1 | VHOST_NET_F_VIRTIO_NET_HDR | NetFeatures.RING_PACKED | NetFeatures.IN_ORDER;

    /** VHOST_NET_WEIGHT: bytes per handler run before it requeues itself. */
    public static final int WEIGHT_BYTES = 0x80000;
    /** VHOST_NET_PKT_WEIGHT: packets per handler run before it requeues itself. */
    public static final int WEIGHT_PACKETS = 256;
    /** VHOST_NET_BATCH: used entries published (and an interrupt considered) per batch. */
    public static final int BATCH = 64;

    private VirtioNet() {
    }
}
