package dev.loomvisor.vmm.net;

/** virtio-net (virtio 1.2 §5.1.3) and reserved (§6) feature bits, as bit masks. */
public final class NetFeatures {

    public static final long CSUM = 1L << 0;
    public static final long GUEST_CSUM = 1L << 1;
    public static final long MTU = 1L << 3;
    public static final long MAC = 1L << 5;
    public static final long MRG_RXBUF = 1L << 15;
    public static final long STATUS = 1L << 16;
    public static final long CTRL_VQ = 1L << 17;
    public static final long MQ = 1L << 22;
    public static final long INDIRECT_DESC = 1L << 28;
    public static final long EVENT_IDX = 1L << 29;
    public static final long VERSION_1 = 1L << 32;
    public static final long RING_PACKED = 1L << 34;
    public static final long IN_ORDER = 1L << 35;

    /**
     * What this device model can honour; in-order is not implemented, and of the control queue's classes only
     * VIRTIO_NET_CTRL_MQ is served.
     */
    public static final long SUPPORTED = CSUM | GUEST_CSUM | MAC | MRG_RXBUF | STATUS | CTRL_VQ | MQ
            | INDIRECT_DESC | EVENT_IDX | VERSION_1 | RING_PACKED;

    private NetFeatures() {
    }

    public static boolean has(long features, long bit) {
        return (features & bit) != 0;
    }
}
