package dev.loomvisor.vmm.net;

/** What became of one frame offered to a receive queue. */
public enum RxResult {
    /** Written and made visible to the driver. */
    DELIVERED,
    /** Not enough RX buffers posted now; nothing consumed, the frame can be retried or dropped. */
    NO_BUFFERS,
    /** Without MRG_RXBUF the posted buffer is smaller than header + frame: dropped and counted, buffer kept. */
    FRAME_TOO_LARGE,
    /** The queue is broken (NEEDS_RESET); nothing is delivered until reset. */
    RING_BROKEN
}
