package dev.loomvisor.vmm.virtio;

import static dev.loomvisor.vmm.virtio.PackedRing.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.GuestRegion;
import java.lang.invoke.VarHandle;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The driver side of one packed virtqueue, as the guest's virtio_ring.c (virtqueue_add_packed,
 * virtqueue_get_buf_ctx_packed) does it: chains written into consecutive ring slots with the avail wrap
 * counter in their AVAIL/USED bits, the first descriptor's flags stored last (virtio 1.2 §2.8.6), the kick
 * decided from the device event suppression after a full fence, used descriptors reaped in ring order.
 *
 * <p>The emulated guest driver, the tests and the fuzz drivers use it; one thread drives it. It trusts its own bookkeeping (ids and
 * descriptor counts in Java arrays), not ring memory; an id the driver never gave out is a device bug
 * reported by an exception.
 */
public final class PackedDriverQueue implements DriverVirtqueue {

    private final GuestMemory memory;
    private final int size;
    private final boolean eventIdx;
    private final boolean inOrder;
    private final UnsafeBuffer desc = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer driverEvent = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer deviceEvent = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer indirectView = new UnsafeBuffer(new byte[0]);
    private final long descAddr;
    private final long driverAddr;
    private final long deviceAddr;
    private final int[] freeIds;
    private int freeIdCount;
    /** Ring descriptors each id's buffer holds (0: not in flight). */
    private final int[] idDescs;
    private final long[] cookies;
    /** Ids in the order they were added, for VIRTIO_F_IN_ORDER batches (virtio 1.2 §2.8.8). */
    private final int[] order;
    private int orderHead;
    private int orderCount;
    /** First-descriptor flags not stored yet: the chain becomes available on {@link #publish()}. */
    private final int[] pendingAt;
    private final short[] pendingFlags;
    private int pendingCount;
    private int numFree;
    private int nextAvail;
    private boolean availWrap = true;
    private int lastUsed;
    private boolean usedWrap = true;
    private int numAdded;
    private int eventFlags = EVENT_FLAG_ENABLE;
    /** In-order: buffers of a batch still to hand out, ending with the id of the used descriptor. */
    private int batchLeft;
    private int batchLen;

    /** Driver side of a zeroed packed ring at the given guest addresses. */
    public PackedDriverQueue(GuestMemory memory, int size, long descAddr, long driverAddr, long deviceAddr,
                             boolean eventIdx, boolean inOrder) {
        if (size <= 0 || size > MAX_QUEUE_SIZE) {
            throw new IllegalArgumentException("queue size " + size);
        }
        this.memory = memory;
        this.size = size;
        this.eventIdx = eventIdx;
        this.inOrder = inOrder;
        this.descAddr = descAddr;
        this.driverAddr = driverAddr;
        this.deviceAddr = deviceAddr;
        view(desc, descAddr, descRingSize(size));
        view(driverEvent, driverAddr, EVENT_SIZE);
        view(deviceEvent, deviceAddr, EVENT_SIZE);
        freeIds = new int[size];
        for (int i = 0; i < size; i++) {
            freeIds[i] = size - 1 - i;
        }
        freeIdCount = size;
        idDescs = new int[size];
        cookies = new long[size];
        order = new int[size];
        pendingAt = new int[size];
        pendingFlags = new short[size];
        numFree = size;
    }

    public PackedDriverQueue(GuestMemory memory, int size, long descAddr, long driverAddr, long deviceAddr,
                             boolean eventIdx) {
        this(memory, size, descAddr, driverAddr, deviceAddr, eventIdx, false);
    }

    private void view(UnsafeBuffer view, long gpa, long len) {
        int r = memory.regionOf(gpa, len);
        if (r < 0) {
            throw new IllegalArgumentException("ring at 0x" + Long.toHexString(gpa) + "+" + len + ": "
                    + GuestMemory.errorOf(r).rule());
        }
        GuestRegion region = memory.region(r);
        view.wrap(region.buffer(), (int) (gpa - region.guestBase()), (int) len);
    }

    public int size() {
        return size;
    }

    public long descAddr() {
        return descAddr;
    }

    public long driverAddr() {
        return driverAddr;
    }

    public long deviceAddr() {
        return deviceAddr;
    }

    /** Free ring descriptors. */
    public int freeCount() {
        return numFree;
    }

    public int inFlight() {
        return size - freeIdCount;
    }

    /** One buffer as a chain of one descriptor; returns its buffer id, or -1 if the ring is full. */
    public int add(long addr, int len, boolean deviceWritable, long cookie) {
        if (numFree < 1 || freeIdCount == 0) {
            return -1;
        }
        int id = freeIds[--freeIdCount];
        writeDesc(addr, len, id, deviceWritable ? DESC_F_WRITE : 0, true);
        return commit(id, 1, cookie);
    }

    /**
     * A chain of {@code readable} then {@code writable} buffers in consecutive slots (crossing the ring's end
     * when it comes); returns the buffer id, or -1 if not enough descriptors are free.
     */
    public int add(long[] addrs, int[] lens, int readable, int writable, long cookie) {
        int n = readable + writable;
        if (n < 1 || numFree < n || freeIdCount == 0) {
            return -1;
        }
        int id = freeIds[--freeIdCount];
        for (int k = 0; k < n; k++) {
            int flags = (k >= readable ? DESC_F_WRITE : 0) | (k + 1 < n ? DESC_F_NEXT : 0);
            writeDesc(addrs[k], lens[k], id, flags, k == 0);
        }
        return commit(id, n, cookie);
    }

    /**
     * A chain through one INDIRECT descriptor (virtio 1.2 §2.8.7): the entries are written as a table at guest
     * address {@code table} (caller-owned), one ring slot points at it.
     */
    public int addIndirect(long table, long[] addrs, int[] lens, int readable, int writable, long cookie) {
        int n = readable + writable;
        if (n < 1 || numFree < 1 || freeIdCount == 0) {
            return -1;
        }
        int r = memory.regionOf(table, (long) n * DESC_SIZE);
        if (r < 0) {
            throw new IllegalArgumentException("indirect table: " + GuestMemory.errorOf(r).rule());
        }
        GuestRegion region = memory.region(r);
        UnsafeBuffer t = indirectView;
        t.wrap(region.buffer(), (int) (table - region.guestBase()), n * DESC_SIZE);
        for (int k = 0; k < n; k++) {
            int d = k * DESC_SIZE;
            t.putLong(d + DESC_ADDR, addrs[k]);
            t.putInt(d + DESC_LEN, lens[k]);
            t.putShort(d + DESC_ID, (short) 0);
            t.putShort(d + DESC_FLAGS, (short) (k >= readable ? DESC_F_WRITE : 0));
        }
        int id = freeIds[--freeIdCount];
        writeDesc(table, n * DESC_SIZE, id, DESC_F_INDIRECT, true);
        return commit(id, 1, cookie);
    }

    private void writeDesc(long addr, int len, int id, int flags, boolean first) {
        int d = nextAvail * DESC_SIZE;
        desc.putLong(d + DESC_ADDR, addr);
        desc.putInt(d + DESC_LEN, len);
        // Linux writes the id into every descriptor; the device reads the last one's (virtio 1.2 §2.8.6).
        desc.putShort(d + DESC_ID, (short) id);
        short f = (short) (flags | availFlags(availWrap));
        if (first) {
            pendingAt[pendingCount] = d + DESC_FLAGS;
            pendingFlags[pendingCount++] = f;
        } else {
            desc.putShort(d + DESC_FLAGS, f);
        }
        if (++nextAvail == size) {
            nextAvail = 0;
            availWrap = !availWrap;
        }
    }

    private int commit(int id, int descriptors, long cookie) {
        idDescs[id] = descriptors;
        cookies[id] = cookie;
        numFree -= descriptors;
        numAdded += descriptors;
        if (inOrder) {
            int at = orderHead + orderCount++;
            order[at >= size ? at - size : at] = id;
        }
        return id;
    }

    /** Makes every chain added so far available: their first descriptors' flags, after a release fence. */
    public void publish() {
        if (pendingCount == 0) {
            return;
        }
        // virtio 1.2 §2.8.17, §2.8.21.2: each chain and its buffers before its first descriptor's flags.
        VarHandle.releaseFence();
        for (int i = 0; i < pendingCount; i++) {
            desc.putShort(pendingAt[i], pendingFlags[i]);
        }
        pendingCount = 0;
    }

    /**
     * Whether the device wants a kick for what was published since the last decision
     * (virtqueue_kick_prepare_packed, virtio 1.2 §2.8.10): DISABLE no, ENABLE yes, DESC when the avail
     * position passed the device's off_wrap.
     */
    public boolean kickNeeded() {
        // Full barrier between making descriptors available and reading the device's suppression (§2.8.21.3).
        VarHandle.fullFence();
        int moved = numAdded;
        numAdded = 0;
        int flags = deviceEvent.getShort(EVENT_FLAGS) & 0xffff;
        if (flags != EVENT_FLAG_DESC) {
            return flags != EVENT_FLAG_DISABLE;
        }
        if (moved >= size) {
            return true;
        }
        return PackedRing.needEvent(deviceEvent.getShort(EVENT_OFF_WRAP) & 0xffff, nextAvail, moved, availWrap, size);
    }

    public boolean publishAndCheckKick() {
        publish();
        return kickNeeded();
    }

    public boolean hasUsed() {
        if (batchLeft > 0) {
            return true;
        }
        int flags = desc.getShort(lastUsed * DESC_SIZE + DESC_FLAGS) & 0xffff;
        VarHandle.acquireFence();
        return isUsed(flags, usedWrap);
    }

    /**
     * Takes the next used buffer into {@code out} and frees its descriptors; false if there is none. With
     * VIRTIO_F_IN_ORDER one used descriptor may stand for every buffer added up to its id (virtio 1.2 §2.8.8):
     * those come out one by one, with length 0 but the last.
     */
    public boolean reap(UsedElement out) {
        if (batchLeft == 0) {
            int d = lastUsed * DESC_SIZE;
            int flags = desc.getShort(d + DESC_FLAGS) & 0xffff;
            // Acquire: the id, length and buffer data are read after the flags that made them used.
            VarHandle.acquireFence();
            if (!isUsed(flags, usedWrap)) {
                return false;
            }
            int id = desc.getShort(d + DESC_ID) & 0xffff;
            int len = desc.getInt(d + DESC_LEN);
            if (id >= size || idDescs[id] == 0) {
                throw new IllegalStateException("device returned id " + id + " that is not in flight");
            }
            int buffers = 1;
            int skip = idDescs[id];
            if (inOrder) {
                // Every buffer added before this id is used too; skip their slots as well.
                buffers = 0;
                skip = 0;
                int k = 0;
                while (true) {
                    if (k == orderCount) {
                        throw new IllegalStateException("in-order used id " + id + " was not added");
                    }
                    int oid = order[(orderHead + k++) % size];
                    skip += idDescs[oid];
                    buffers++;
                    if (oid == id) {
                        break;
                    }
                }
            }
            batchLeft = buffers;
            batchLen = len;
            lastUsed += skip;
            if (lastUsed >= size) {
                lastUsed -= size;
                usedWrap = !usedWrap;
            }
            if (!inOrder) {
                take(out, id, len);
                batchLeft = 0;
                afterReap();
                return true;
            }
        }
        int id = order[orderHead];
        orderHead = (orderHead + 1) % size;
        orderCount--;
        batchLeft--;
        take(out, id, batchLeft == 0 ? batchLen : 0);
        if (batchLeft == 0) {
            afterReap();
        }
        return true;
    }

    private void take(UsedElement out, int id, int len) {
        out.head = id;
        out.len = len;
        out.cookie = cookies[id];
        numFree += idDescs[id];
        idDescs[id] = 0;
        freeIds[freeIdCount++] = id;
    }

    private void afterReap() {
        if (eventIdx && eventFlags == EVENT_FLAG_DESC) {
            // Ask for an interrupt at the next used slot (virtio_store_mb in virtqueue_get_buf_ctx_packed).
            driverEvent.putShort(EVENT_OFF_WRAP, (short) lastUsed());
            VarHandle.fullFence();
        }
    }

    /** Stops interrupts (virtqueue_disable_cb_packed): driver event flags DISABLE. */
    public void disableInterrupts() {
        if (eventFlags != EVENT_FLAG_DISABLE) {
            eventFlags = EVENT_FLAG_DISABLE;
            driverEvent.putShort(EVENT_FLAGS, (short) eventFlags);
        }
    }

    /**
     * Asks for interrupts again (virtqueue_enable_cb_prepare_packed): DESC at the next used slot with
     * EVENT_IDX, else ENABLE. True if used buffers are already pending: reap them.
     */
    public boolean enableInterrupts() {
        if (eventIdx) {
            driverEvent.putShort(EVENT_OFF_WRAP, (short) lastUsed());
            VarHandle.releaseFence();
            eventFlags = EVENT_FLAG_DESC;
        } else {
            eventFlags = EVENT_FLAG_ENABLE;
        }
        driverEvent.putShort(EVENT_FLAGS, (short) eventFlags);
        VarHandle.fullFence();
        return hasUsed();
    }

    /** Writes the driver event suppression directly: DESC at {@code offWrap} (EVENT_IDX). */
    public void setUsedEvent(int offWrap) {
        driverEvent.putShort(EVENT_OFF_WRAP, (short) offWrap);
        eventFlags = EVENT_FLAG_DESC;
        driverEvent.putShort(EVENT_FLAGS, (short) EVENT_FLAG_DESC);
        VarHandle.fullFence();
    }

    /** The next slot to fill, bit 15 the avail wrap counter. */
    public int availIdx() {
        return nextAvail | (availWrap ? WRAP_BIT : 0);
    }

    /** The next slot to reap, bit 15 the used wrap counter. */
    public int lastUsed() {
        return lastUsed | (usedWrap ? WRAP_BIT : 0);
    }

    /** The device event suppression as in memory now: off_wrap | flags << 16. */
    public int deviceEvent() {
        return (deviceEvent.getShort(EVENT_OFF_WRAP) & 0xffff) | (deviceEvent.getShort(EVENT_FLAGS) & 0xffff) << 16;
    }
}
