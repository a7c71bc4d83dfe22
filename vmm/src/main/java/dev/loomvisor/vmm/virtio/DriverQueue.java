package dev.loomvisor.vmm.virtio;

import static dev.loomvisor.vmm.virtio.SplitRing.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.GuestRegion;
import java.lang.invoke.VarHandle;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The driver side of one split virtqueue, as the guest's virtio_ring.c does it: a free list of descriptors,
 * chains written into the table, the avail ring published with a release store, the kick decided after a
 * full fence, used entries reaped and their descriptors freed.
 *
 * <p>The emulated guest driver and the tests use it. One thread drives it. The driver trusts its own
 * bookkeeping, not ring memory: the free list lives in Java arrays, and a used id the driver never gave out
 * is a device bug reported by an exception (the guest side is not the hostile party here).
 */
public final class DriverQueue implements DriverVirtqueue {

    private final GuestMemory memory;
    private final int size;
    private final int mask;
    private final boolean eventIdx;
    private final UnsafeBuffer desc = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer avail = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer used = new UnsafeBuffer(new byte[0]);
    private final long descAddr;
    private final long availAddr;
    private final long usedAddr;
    private final int[] freeNext;
    /** Our own copy of each chain's next links, so freeing never trusts ring memory. */
    private final int[] descNext;
    private final UnsafeBuffer indirectView = new UnsafeBuffer(new byte[0]);
    /** Descriptors each head's chain holds (0 for a head not in flight). */
    private final int[] chainLength;
    private final long[] cookies;
    private int freeHead;
    private int numFree;
    private int availShadow;
    private int numAdded;
    private int lastUsed;
    /** used.idx as last read: entries up to it are reaped without touching the device's cache line again. */
    private int usedShadow;
    private int availFlags;
    /** VIRTIO_F_IN_ORDER: the device uses buffers in the order they were made available (virtio 1.2 §2.7.9). */
    private boolean inOrder;
    /** The head made available at each avail position, for reaping in order. */
    private final int[] availHeads;
    /** IN_ORDER: the head whose used element closes the batch being reaped (-1: none), and its length. */
    private int batchLast = -1;
    private int batchLastLen;

    /**
     * Driver side of the rings at the given guest addresses. The rings should be zeroed by the caller before
     * the device starts using them; the driver starts from the indexes found in memory.
     */
    public DriverQueue(GuestMemory memory, int size, long descAddr, long availAddr, long usedAddr, boolean eventIdx) {
        if (size <= 0 || size > MAX_QUEUE_SIZE || (size & (size - 1)) != 0) {
            throw new IllegalArgumentException("queue size " + size);
        }
        this.memory = memory;
        this.size = size;
        this.mask = size - 1;
        this.eventIdx = eventIdx;
        this.descAddr = descAddr;
        this.availAddr = availAddr;
        this.usedAddr = usedAddr;
        view(desc, descAddr, descTableSize(size));
        view(avail, availAddr, availRingSize(size));
        view(used, usedAddr, usedRingSize(size));
        freeNext = new int[size];
        descNext = new int[size];
        chainLength = new int[size];
        cookies = new long[size];
        availHeads = new int[size];
        for (int i = 0; i < size; i++) {
            freeNext[i] = i + 1;
        }
        freeHead = 0;
        numFree = size;
        availShadow = avail.getShort(AVAIL_IDX) & 0xffff;
        lastUsed = used.getShort(USED_IDX) & 0xffff;
        usedShadow = lastUsed;
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

    public long availAddr() {
        return availAddr;
    }

    public long usedAddr() {
        return usedAddr;
    }

    /**
     * VIRTIO_F_IN_ORDER negotiated: one used element may stand for a batch, every buffer made available before
     * its head and after the last one reaped (virtio 1.2 §2.7.9); {@link #reap} then returns each in order, the
     * buffers before the batch's last with length 0 (the device batches only buffers it wrote nothing into).
     */
    public void setInOrder(boolean inOrder) {
        this.inOrder = inOrder;
    }

    public int freeCount() {
        return numFree;
    }

    /** Chains added and not yet reaped. */
    public int inFlight() {
        int n = 0;
        for (int c : chainLength) {
            n += c > 0 ? 1 : 0;
        }
        return n;
    }

    /** One buffer as a chain of one descriptor; returns the head, or -1 if no descriptor is free. */
    public int add(long addr, int len, boolean deviceWritable, long cookie) {
        if (numFree < 1) {
            return -1;
        }
        int head = take();
        writeDesc(desc, head, addr, len, deviceWritable ? DESC_F_WRITE : 0, 0);
        return commit(head, 1, cookie);
    }

    /**
     * A chain of {@code readable} device-readable then {@code writable} device-writable buffers taken from
     * {@code addrs}/{@code lens}; returns the head, or -1 if not enough descriptors are free.
     */
    public int add(long[] addrs, int[] lens, int readable, int writable, long cookie) {
        int n = readable + writable;
        if (n < 1 || numFree < n) {
            return -1;
        }
        int head = take();
        int d = head;
        for (int k = 0; k < n; k++) {
            int next = k + 1 < n ? take() : 0;
            int flags = (k >= readable ? DESC_F_WRITE : 0) | (k + 1 < n ? DESC_F_NEXT : 0);
            writeDesc(desc, d, addrs[k], lens[k], flags, next);
            descNext[d] = next;
            d = next;
        }
        return commit(head, n, cookie);
    }

    /**
     * A chain through one INDIRECT descriptor: the {@code readable + writable} entries are written as a table
     * at guest address {@code table} (16 bytes each, caller-owned memory), and one ring descriptor points at it.
     */
    public int addIndirect(long table, long[] addrs, int[] lens, int readable, int writable, long cookie) {
        int n = readable + writable;
        if (n < 1 || numFree < 1) {
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
            int flags = (k >= readable ? DESC_F_WRITE : 0) | (k + 1 < n ? DESC_F_NEXT : 0);
            writeDesc(t, k, addrs[k], lens[k], flags, k + 1 < n ? k + 1 : 0);
        }
        int head = take();
        writeDesc(desc, head, table, n * DESC_SIZE, DESC_F_INDIRECT, 0);
        return commit(head, 1, cookie);
    }

    private static void writeDesc(UnsafeBuffer table, int i, long addr, int len, int flags, int next) {
        int d = i * DESC_SIZE;
        table.putLong(d + DESC_ADDR, addr);
        table.putInt(d + DESC_LEN, len);
        table.putShort(d + DESC_FLAGS, (short) flags);
        table.putShort(d + DESC_NEXT, (short) next);
    }

    private int take() {
        int i = freeHead;
        freeHead = freeNext[i];
        numFree--;
        return i;
    }

    private int commit(int head, int descriptors, long cookie) {
        chainLength[head] = descriptors;
        cookies[head] = cookie;
        availHeads[availShadow & mask] = head;
        avail.putShort(AVAIL_RING + 2 * (availShadow & mask), (short) head);
        availShadow = (availShadow + 1) & 0xffff;
        numAdded++;
        return head;
    }

    /** Makes every chain added so far visible to the device. */
    public void publish() {
        // Release: descriptors and avail slots before the new avail.idx (virtio 1.2 §2.7.13.3.1).
        VarHandle.releaseFence();
        avail.putShort(AVAIL_IDX, (short) availShadow);
    }

    /**
     * Whether the device wants a kick for what was published since the last decision
     * (virtqueue_kick_prepare): with EVENT_IDX when avail.idx passed avail_event, else unless used.flags
     * says NO_NOTIFY.
     */
    public boolean kickNeeded() {
        // Full barrier between bumping avail.idx and reading the device's suppression (virtio 1.2 §2.7.13.4.1).
        VarHandle.fullFence();
        int newIdx = availShadow;
        int old = (newIdx - numAdded) & 0xffff;
        numAdded = 0;
        if (eventIdx) {
            return needEvent(used.getShort(availEventOffset(size)) & 0xffff, newIdx, old);
        }
        return (used.getShort(USED_FLAGS) & USED_F_NO_NOTIFY) == 0;
    }

    /** {@link #publish()} then {@link #kickNeeded()}. */
    public boolean publishAndCheckKick() {
        publish();
        return kickNeeded();
    }

    /** True if the device has published used entries not yet reaped. */
    public boolean hasUsed() {
        int idx = used.getShort(USED_IDX) & 0xffff;
        VarHandle.acquireFence();
        return idx != lastUsed;
    }

    /** Takes the next used entry into {@code out} and frees its descriptors; false if there is none. */
    public boolean reap(UsedElement out) {
        if (lastUsed == usedShadow) {
            // Acquire: the used elements and the data the device wrote are read after used.idx.
            int idx = used.getShort(USED_IDX) & 0xffff;
            VarHandle.acquireFence();
            if (idx == lastUsed) {
                return false;
            }
            usedShadow = idx;
        }
        int head;
        int len;
        if (inOrder) {
            head = availHeads[lastUsed & mask];
            if (batchLast < 0) {
                openBatch();
            }
            if (head == batchLast) {
                len = batchLastLen;
                batchLast = -1;
            } else {
                len = 0;
            }
        } else {
            int e = USED_RING + USED_ELEM_SIZE * (lastUsed & mask);
            head = used.getInt(e);
            len = used.getInt(e + 4);
        }
        if (head < 0 || head >= size || chainLength[head] == 0) {
            throw new IllegalStateException("device returned id " + head + " that is not in flight");
        }
        out.head = head;
        out.len = len;
        out.cookie = cookies[head];
        free(head);
        lastUsed = (lastUsed + 1) & 0xffff;
        if (eventIdx && (availFlags & AVAIL_F_NO_INTERRUPT) == 0) {
            // Ask for an interrupt at the next entry; virtio_store_mb in the guest's virtqueue_get_buf.
            avail.putShort(usedEventOffset(size), (short) lastUsed);
            VarHandle.fullFence();
        }
        return true;
    }

    /** Reads the used element at the next position: the last head of a batch published in order. */
    private void openBatch() {
        int e = USED_RING + USED_ELEM_SIZE * (lastUsed & mask);
        int id = used.getInt(e);
        int published = (usedShadow - lastUsed) & 0xffff;
        for (int k = 0; k < published; k++) {
            if (availHeads[(lastUsed + k) & mask] == id) {
                batchLast = id;
                batchLastLen = used.getInt(e + 4);
                return;
            }
        }
        throw new IllegalStateException("device returned id " + id + " out of order or beyond used.idx");
    }

    private void free(int head) {
        int n = chainLength[head];
        chainLength[head] = 0;
        // Chains were built from the free list in order; walk our own record of them, not guest memory.
        int d = head;
        for (int k = 0; k < n; k++) {
            int next = descNext[d];
            freeNext[d] = k + 1 < n ? next : freeHead;
            d = next;
        }
        freeHead = head;
        numFree += n;
    }

    /** Stops interrupts (virtqueue_disable_cb): avail.flags NO_INTERRUPT without EVENT_IDX. */
    public void disableInterrupts() {
        availFlags |= AVAIL_F_NO_INTERRUPT;
        if (!eventIdx) {
            avail.putShort(AVAIL_FLAGS, (short) availFlags);
        }
    }

    /**
     * Asks for interrupts again (virtqueue_enable_cb) and returns true if used entries are already pending:
     * the caller must reap them, since their interrupt may have been suppressed.
     */
    public boolean enableInterrupts() {
        availFlags &= ~AVAIL_F_NO_INTERRUPT;
        if (eventIdx) {
            avail.putShort(usedEventOffset(size), (short) lastUsed);
        } else {
            avail.putShort(AVAIL_FLAGS, (short) availFlags);
        }
        // Full fence between the store that re-enables and the used.idx re-read (pairs with the device's).
        VarHandle.fullFence();
        return (used.getShort(USED_IDX) & 0xffff) != lastUsed;
    }

    /**
     * virtqueue_enable_cb_delayed_split: with EVENT_IDX, used_event three quarters of the way through the buffers
     * in flight, so one interrupt comes for most of them rather than for the first; true if more than that many
     * are used already. Without EVENT_IDX the flag is all there is: as {@link #enableInterrupts()}.
     */
    @Override
    public boolean enableInterruptsDelayed() {
        if (!eventIdx) {
            return enableInterrupts();
        }
        availFlags &= ~AVAIL_F_NO_INTERRUPT;
        int bufs = ((availShadow - lastUsed) & 0xffff) * 3 / 4;
        avail.putShort(usedEventOffset(size), (short) (lastUsed + bufs));
        VarHandle.fullFence();
        return ((used.getShort(USED_IDX) - lastUsed) & 0xffff) > bufs;
    }

    /** Writes used_event directly (EVENT_IDX): interrupt when used.idx passes {@code idx}. */
    public void setUsedEvent(int idx) {
        avail.putShort(usedEventOffset(size), (short) idx);
        VarHandle.fullFence();
    }

    /** The avail.idx this side has built (published or not). */
    public int availIdx() {
        return availShadow;
    }

    /** The next used index to reap. */
    public int lastUsed() {
        return lastUsed;
    }

    /** The device's avail_event as in memory now (EVENT_IDX). */
    public int availEvent() {
        return used.getShort(availEventOffset(size)) & 0xffff;
    }
}
