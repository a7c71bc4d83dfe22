package dev.loomvisor.vmm.net;

/**
 * virtio_net_config as the driver reads it through the transport (little-endian):
 * <pre>
 * u8 mac[6] @0 | le16 status @6 | le16 max_virtqueue_pairs @8 | le16 mtu @10
 * </pre>
 */
public final class NetConfigSpace {
    public static final int MAC = 0;
    public static final int STATUS = 6;
    public static final int MAX_VIRTQUEUE_PAIRS = 8;
    public static final int MTU = 10;
    public static final int SIZE = 12;

    /** config status bit: link up (with VIRTIO_NET_F_STATUS). */
    public static final int LINK_UP = 1;

    private NetConfigSpace() {
    }
}
