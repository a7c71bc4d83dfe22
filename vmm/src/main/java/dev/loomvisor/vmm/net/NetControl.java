package dev.loomvisor.vmm.net;

/**
 * The control virtqueue's wire format (virtio 1.2 §5.1.6.5):
 * <pre>
 * struct virtio_net_ctrl { u8 class; u8 command; u8 command-specific-data[]; u8 ack; }
 * </pre>
 * class, command and data are device-readable; ack is the one device-writable byte. Of the classes only
 * VIRTIO_NET_CTRL_MQ with VQ_PAIRS_SET is served (§5.1.6.5.5), what a driver needs to use more than one
 * queue pair.
 */
public final class NetControl {

    public static final int ACK_OK = 0;
    public static final int ACK_ERR = 1;

    /** VIRTIO_NET_CTRL_MQ and its command VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (data: le16 virtqueue_pairs). */
    public static final int CLASS_MQ = 4;
    public static final int MQ_VQ_PAIRS_SET = 0;

    /** VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN / MAX: the range of virtqueue_pairs (§5.1.6.5.5). */
    public static final int VQ_PAIRS_MIN = 1;
    public static final int VQ_PAIRS_MAX = 0x8000;

    /** class and command. */
    public static final int HEADER_SIZE = 2;
    /** Readable bytes of a VQ_PAIRS_SET: header and le16 virtqueue_pairs. */
    public static final int VQ_PAIRS_SET_SIZE = HEADER_SIZE + 2;

    private NetControl() {
    }
}
