package dev.loomvisor.vhost;

/** Counters of one vhost virtqueue, readable while traffic runs ({@link VhostVirtqueue#counters()}). */
public enum RingCounter {
    /** Frames the ring carried (TX: handed to the backend or dropped; RX: written into guest buffers). */
    FRAMES,
    /** Frame bytes (without the virtio-net header) the ring carried. */
    BYTES,
    /** Handler runs. */
    RUNS,
    /** Calls signalled to the guest (interrupts). */
    INTERRUPTS,
    /** Runs that stopped at the packet weight (256) and requeued themselves. */
    REQUEUES_BY_PACKETS,
    /** Runs that stopped at the byte weight (0x80000) and requeued themselves. */
    REQUEUES_BY_BYTES,
    /** TX: the backend refused the frame (its own counters say why: queue full, runt, ...). */
    DROP_BACKEND,
    /** TX: readable part shorter than the virtio-net header. */
    DROP_BAD_HEADER,
    /** TX: frame above 65535 bytes; RX: frame larger than the buffers the guest offers (no MRG_RXBUF). */
    DROP_TOO_BIG,
    /** RX: a chain with a device-readable part (vq_err "unexpected descriptor format for RX"). */
    DROP_BAD_RX_CHAIN,
    /** The ring broke (a guest violation; the error itself is in {@link VhostVirtqueue#ringError()}). */
    RING_ERRORS,
    /** Busy-poll rounds that found work before the timeout. */
    BUSY_POLL_HITS,
    /** Busy-poll rounds that timed out and went back to notifications. */
    BUSY_POLL_TIMEOUTS,
    /**
     * Busy-poll rounds on a virtual thread that ended because another virtual thread waited for a carrier
     * (need_resched), and went back to notifications as on a timeout.
     */
    BUSY_POLL_RESCHEDS,
    /** Busy-poll rounds that ended because other work waited on the same worker (vhost_has_work). */
    BUSY_POLL_INTERRUPTS
}
