package dev.loomvisor.vmm.virtio;

/**
 * Every way a guest (or, for the USED_ ones, the device model) can break a ring: one value per rule of the
 * split (virtio 1.2 §2.7) and packed (§2.8) virtqueues that a device must not trust. {@link #NONE} is success,
 * so calls report outcomes without allocating or throwing.
 */
public enum RingError {
    NONE("no error"),

    // Configuration (virtio 1.2 §2.7, §2.7.1).
    QUEUE_SIZE_ZERO("queue size is 0"),
    QUEUE_SIZE_TOO_LARGE("queue size is above 32768"),
    QUEUE_SIZE_NOT_POWER_OF_TWO("queue size is not a power of two"),
    DESC_TABLE_MISALIGNED("descriptor table is not 16-byte aligned"),
    AVAIL_RING_MISALIGNED("avail ring is not 2-byte aligned"),
    USED_RING_MISALIGNED("used ring is not 4-byte aligned"),
    RING_OUTSIDE_MEMORY("a ring does not lie wholly inside one guest memory region"),

    // The avail ring (virtio 1.2 §2.7.6.1, §2.7.13).
    AVAIL_IDX_TOO_FAR_AHEAD("avail.idx is more than queue size ahead of the device's next index"),

    // Chains (virtio 1.2 §2.7.5, §2.7.5.2).
    HEAD_OUT_OF_RANGE("a head index in the avail ring is >= queue size"),
    NEXT_OUT_OF_RANGE("a descriptor's next index is >= the table's size"),
    CHAIN_TOO_LONG("a chain is longer than queue size descriptors (a loop)"),
    CHAIN_TOO_BIG("a chain's lengths total 2^32 bytes or more"),
    ADDRESS_OVERFLOW("a descriptor's address + length overflows 64 bits"),
    DESC_OUTSIDE_MEMORY("a descriptor's buffer does not lie wholly inside one guest memory region"),

    // Indirect tables (virtio 1.2 §2.7.5.3, §2.7.5.3.1).
    INDIRECT_NOT_NEGOTIATED("INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC negotiated"),
    INDIRECT_NESTED("an indirect table holds an INDIRECT descriptor"),
    INDIRECT_BAD_LENGTH("an indirect table's length is zero or not a multiple of 16"),
    INDIRECT_TOO_LARGE("an indirect table holds more than max(queue size, 1024) entries"),
    INDIRECT_WITH_NEXT("a descriptor has both INDIRECT and NEXT"),
    INDIRECT_OUTSIDE_MEMORY("an indirect table does not lie wholly inside one guest memory region"),

    // Direction (virtio 1.2 §2.7.4.2; TX buffers are output only, §5.1.6.2).
    READABLE_AFTER_WRITABLE("a device-readable descriptor follows a device-writable one"),
    WRITABLE_ON_READ_ONLY_QUEUE("a device-writable descriptor on a queue the device only reads (TX)"),

    // Device-type rules the ring cannot check itself, reported by the device through DeviceQueue.fail
    // (virtio 1.2 §5.1.6.3.1).
    RX_BUFFER_TOO_SMALL("a virtio-net receive buffer is smaller than the virtio_net_hdr"),

    // Device-side bug guard (virtio 1.2 §2.7.8).
    USED_ID_OUT_OF_RANGE("a used element's id is >= queue size"),

    // Packed rings (virtio 1.2 §2.8). Configuration (§2.8.10.1: event suppression areas are 4-byte aligned).
    PACKED_EVENT_AREA_MISALIGNED("a packed ring's event suppression area is not 4-byte aligned"),
    PACKED_BASE_OUT_OF_RANGE("a restored packed ring position (vring base bits 0-14) is >= queue size"),
    // The descriptor ring (§2.8.1, §2.8.6, §2.8.21).
    PACKED_FLAGS_INVALID("the next avail slot has AVAIL and USED both equal to the device's wrap counter"),
    PACKED_CHAIN_NOT_AVAIL("a chained descriptor after the first is not marked available with the same wrap counter"),
    PACKED_ID_OUT_OF_RANGE("a buffer id is >= queue size"),
    PACKED_ID_IN_USE("a buffer id is made available again before the device used it"),
    PACKED_RING_OVERRUN("the driver made more descriptors available than the ring holds"),
    PACKED_INDIRECT_IN_CHAIN("an INDIRECT descriptor is chained to other descriptors"),
    // Device-side bug guard (§2.8.4: used descriptors name buffers the driver made available).
    PACKED_USED_ID_NOT_IN_FLIGHT("a used buffer id is not one the device popped");

    private final String rule;

    RingError(String rule) {
        this.rule = rule;
    }

    /** The broken rule in words. */
    public String rule() {
        return rule;
    }

    @Override
    public String toString() {
        return name() + ": " + rule;
    }
}
