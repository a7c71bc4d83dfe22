package dev.loomvisor.vmm.virtio;

import java.nio.ByteOrder;

/**
 * The packed virtqueue's memory layout (virtio 1.2 §2.8), as offsets and sizes, and the notification
 * arithmetic both sides share.
 *
 * <pre>
 * descriptor ring,           align 16, 16*N: le64 addr @0 | le32 len @8 | le16 id @12 | le16 flags @14
 * driver event suppression,  align 4,  4:    le16 desc (off_wrap) @0 | le16 flags @2   (driver area)
 * device event suppression,  align 4,  4:    le16 desc (off_wrap) @0 | le16 flags @2   (device area)
 * </pre>
 *
 * <p>One ring carries both directions: the driver marks a slot available by setting AVAIL to its avail wrap
 * counter and USED to the inverse; the device marks it used by setting both to its used wrap counter
 * (virtio 1.2 §2.8.1). Both wrap counters start at 1 and flip each time their index passes the ring's end.
 */
public final class PackedRing {

    /** Largest queue size a packed ring may have; it need not be a power of two (virtio 1.2 §2.8). */
    public static final int MAX_QUEUE_SIZE = 32768;

    public static final int DESC_SIZE = 16;
    public static final int DESC_ADDR = 0;
    public static final int DESC_LEN = 8;
    public static final int DESC_ID = 12;
    public static final int DESC_FLAGS = 14;

    public static final int DESC_F_NEXT = 1;
    public static final int DESC_F_WRITE = 2;
    public static final int DESC_F_INDIRECT = 4;
    /** virtio 1.2 §2.8.1: bit 7 of flags. */
    public static final int DESC_F_AVAIL = 1 << 7;
    /** virtio 1.2 §2.8.1: bit 15 of flags. */
    public static final int DESC_F_USED = 1 << 15;

    /** Event suppression structure (virtio 1.2 §2.8.10): off_wrap then flags. */
    public static final int EVENT_OFF_WRAP = 0;
    public static final int EVENT_FLAGS = 2;
    public static final int EVENT_SIZE = 4;
    public static final int EVENT_FLAG_ENABLE = 0;
    public static final int EVENT_FLAG_DISABLE = 1;
    /** Only with VIRTIO_F_EVENT_IDX: notify when the ring passes off_wrap. */
    public static final int EVENT_FLAG_DESC = 2;

    public static final int DESC_ALIGN = 16;
    public static final int EVENT_ALIGN = 4;

    /** Bit 15 of an off_wrap (and of a vhost-user vring base): the wrap counter. */
    public static final int WRAP_BIT = 1 << 15;

    static {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("packed rings are little-endian; this host is big-endian");
        }
    }

    private PackedRing() {
    }

    public static long descRingSize(int n) {
        return (long) DESC_SIZE * n;
    }

    /** The AVAIL/USED bits a driver writes to make a descriptor available with wrap counter {@code wrap}. */
    public static int availFlags(boolean wrap) {
        return wrap ? DESC_F_AVAIL : DESC_F_USED;
    }

    /** The AVAIL/USED bits a device writes to mark a descriptor used with wrap counter {@code wrap}. */
    public static int usedFlags(boolean wrap) {
        return wrap ? DESC_F_AVAIL | DESC_F_USED : 0;
    }

    /** virtio 1.2 §2.8.1: available to a device whose avail wrap counter is {@code wrap}. */
    public static boolean isAvail(int flags, boolean wrap) {
        return ((flags & DESC_F_AVAIL) != 0) == wrap && ((flags & DESC_F_USED) != 0) != wrap;
    }

    /** virtio 1.2 §2.8.1: used, as seen by a driver whose used wrap counter is {@code wrap}. */
    public static boolean isUsed(int flags, boolean wrap) {
        return ((flags & DESC_F_AVAIL) != 0) == wrap && ((flags & DESC_F_USED) != 0) == wrap;
    }

    /**
     * The packed form of vring_need_event (virtio 1.2 §2.8.10, as Linux virtqueue_kick_prepare_packed does
     * it): {@code offWrap} is the other side's event (offset, wrap counter in bit 15), {@code newPos} the ring
     * position after this side moved {@code moved} descriptors, {@code wrap} its wrap counter at
     * {@code newPos}. An event on the other lap is moved back by the ring size, so the u16 arithmetic of
     * {@link SplitRing#needEvent} applies unchanged.
     */
    public static boolean needEvent(int offWrap, int newPos, int moved, boolean wrap, int size) {
        int off = offWrap & ~WRAP_BIT;
        if (((offWrap & WRAP_BIT) != 0) != wrap) {
            off -= size;
        }
        return SplitRing.needEvent(off & 0xffff, newPos, (newPos - moved) & 0xffff);
    }
}
