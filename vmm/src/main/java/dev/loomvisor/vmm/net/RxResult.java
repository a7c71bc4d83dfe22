package dev.loomvisor.vmm.net;

/** What became of one frame offered to a receive queue. */
public enum RxResult {
    /** Written; its used elements are staged for the caller to publish. */
    DELIVERED,
    /** Not enough buffers posted now; nothing consumed, the frame can wait for a refill. */
    NO_BUFFERS,
    /**
     * Dropped and counted: larger than the one buffer without MRG_RXBUF (the buffer stays for the next frame),
     * or larger than the whole ring can hold with it (waiting would stall the sender for ever).
     */
    FRAME_TOO_LARGE,
    /** Dropped and counted: a receive chain had a device-readable part; its chains went back used, empty. */
    BAD_CHAIN,
    /** The queue is broken (NEEDS_RESET); nothing is delivered until reset. */
    RING_BROKEN
}
