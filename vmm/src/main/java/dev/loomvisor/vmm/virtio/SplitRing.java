package dev.loomvisor.vmm.virtio;

import java.nio.ByteOrder;

/**
 * The split virtqueue's memory layout (virtio 1.2 §2.7), as offsets
 * and sizes, and the notification arithmetic both sides share.
 *
 * <pre>
 * descriptor table, align 16, 16*N:  le64 addr @0 | le32 len @8 | le16 flags @12 | le16 next @14
 * avail ring,       align 2, 6+2*N:  le16 flags @0 | le16 idx @2 | le16 ring[N] @4 | le16 used_event @4+2N
 * used ring,        align 4, 6+8*N:  le16 flags @0 | le16 idx @2 | {le32 id, le32 len} ring[N] @4 | le16 avail_event @4+8N
 * </pre>
 *
 * <p>Fields are read with Agrona's native-order accessors; virtio is little-endian, so the class refuses to
 * load on a big-endian host rather than silently byte-swap nothing.
 */
public final class SplitRing {

    /** Largest queue size a split ring may have (virtio 1.2 §2.7). */
    public static final int MAX_QUEUE_SIZE = 32768;

    public static final int DESC_SIZE = 16;
    public static final int DESC_ADDR = 0;
    public static final int DESC_LEN = 8;
    public static final int DESC_FLAGS = 12;
    public static final int DESC_NEXT = 14;

    public static final int DESC_F_NEXT = 1;
    public static final int DESC_F_WRITE = 2;
    public static final int DESC_F_INDIRECT = 4;

    public static final int AVAIL_FLAGS = 0;
    public static final int AVAIL_IDX = 2;
    public static final int AVAIL_RING = 4;
    /** avail.flags bit 0: the driver asks for no interrupts (ignored with EVENT_IDX). */
    public static final int AVAIL_F_NO_INTERRUPT = 1;

    public static final int USED_FLAGS = 0;
    public static final int USED_IDX = 2;
    public static final int USED_RING = 4;
    public static final int USED_ELEM_SIZE = 8;
    /** used.flags bit 0: the device asks for no kicks (ignored with EVENT_IDX). */
    public static final int USED_F_NO_NOTIFY = 1;

    public static final int DESC_ALIGN = 16;
    public static final int AVAIL_ALIGN = 2;
    public static final int USED_ALIGN = 4;

    static {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("split rings are little-endian; this host is big-endian");
        }
    }

    private SplitRing() {
    }

    public static long descTableSize(int n) {
        return (long) DESC_SIZE * n;
    }

    public static long availRingSize(int n) {
        return 6L + 2L * n;
    }

    public static long usedRingSize(int n) {
        return 6L + (long) USED_ELEM_SIZE * n;
    }

    /** Offset of used_event in the avail ring. */
    public static int usedEventOffset(int n) {
        return AVAIL_RING + 2 * n;
    }

    /** Offset of avail_event in the used ring. */
    public static int availEventOffset(int n) {
        return USED_RING + USED_ELEM_SIZE * n;
    }

    /**
     * vring_need_event: true if {@code event} lies in {@code [old, new)} modulo 2^16, i.e. the other side
     * asked to be notified when the index passed {@code event} and the move from {@code old} to {@code newIdx}
     * passed it (virtio 1.2 §2.7.7.2, §2.7.10.2). All three are free-running 16-bit counters.
     */
    public static boolean needEvent(int event, int newIdx, int old) {
        return ((newIdx - event - 1) & 0xffff) < ((newIdx - old) & 0xffff);
    }
}
