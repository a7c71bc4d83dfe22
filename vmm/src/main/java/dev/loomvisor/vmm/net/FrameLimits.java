package dev.loomvisor.vmm.net;

/** How large the Ethernet frames behind a virtio_net_hdr may be, for the device and every backend. */
public final class FrameLimits {

    /**
     * The largest frame without GSO: a 1500-byte MTU and the 14-byte Ethernet header, what a 1526-byte
     * receive buffer holds behind the header (virtio 1.2 §5.1.6.3.1).
     */
    public static final int MAX_FRAME = 1514;

    /** The largest frame a TX chain may carry: a 64 KiB GSO frame; a longer one is dropped, not sent. */
    public static final int MAX_GSO_FRAME = 65535;

    private FrameLimits() {
    }
}
