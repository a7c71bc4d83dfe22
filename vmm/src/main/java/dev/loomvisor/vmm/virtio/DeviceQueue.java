package dev.loomvisor.vmm.virtio;

import static dev.loomvisor.vmm.virtio.SplitRing.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.GuestRegion;
import dev.loomvisor.vmm.memory.MemoryError;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLongArray;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The device side of one split virtqueue: pops chains the driver made available, validates every field the
 * guest controls, returns used buffers and suppresses notifications both ways (virtio 1.2 §2.7).
 *
 * <p>One thread at a time drives a queue (the device model, or the vhost worker it was handed to); the
 * driver runs concurrently on the other side of the shared ring memory. Nothing here allocates after
 * {@link #configure}, and nothing throws on guest input: a violation of a rule marks the queue broken,
 * counts the {@link RingError}, tells the {@link BrokenListener} (the device then sets NEEDS_RESET), and
 * every later call is a no-op until {@link #reset()}. Other queues are unaffected.
 */
public final class DeviceQueue implements DeviceVirtqueue {

    /** Told once when a queue breaks; runs on the thread that found the violation and must not block. */
    @FunctionalInterface
    public interface BrokenListener {
        void onBroken(DeviceQueue queue, RingError error);
    }

    private static final RingError[] ERRORS = RingError.values();

    private final int index;
    private final AtomicLongArray errorCounts = new AtomicLongArray(ERRORS.length);
    private final UnsafeBuffer desc = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer avail = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer used = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer indirect = new UnsafeBuffer(new byte[0]);
    private volatile BrokenListener brokenListener;

    private GuestMemory memory;
    private int size;
    private int mask;
    private boolean eventIdx;
    private boolean indirectAllowed;
    private boolean writableAllowed = true;
    private boolean inOrder;
    private int usedEventOffset;
    private int availEventOffset;
    private boolean ready;

    /** Index of the next avail ring entry to pop (free-running u16): vhost's last_avail_idx. */
    private int lastAvail;
    /** The last avail.idx read from the ring (u16): vhost's avail_idx shadow. */
    private int availShadow;
    /** Next used ring entry to fill (free-running u16): the used.idx being built. */
    private int lastUsed;
    /** used.idx as last stored to the ring: entries from here to {@link #lastUsed} are staged, not yet seen. */
    private int publishedUsed;
    /** used.idx when the driver was last interrupted, for EVENT_IDX (vhost's signalled_used). */
    private int signalledUsed;
    private boolean signalledUsedValid;
    /** used.flags as last written (without EVENT_IDX). */
    private int usedFlags;

    /** VIRTIO_F_IN_ORDER: the head popped at each avail position, to tell an in-order use from another. */
    private int[] poppedHeads = new int[0];
    /**
     * VIRTIO_F_IN_ORDER on a device-read-only queue: the head of the last buffer of the batch being staged, whose
     * one used element (at {@link #batchStart}) will stand for the whole batch (virtio 1.2 §2.7.9); -1 if none.
     */
    private int batchHead = -1;
    private int batchStart;

    /**
     * Used elements staged but not yet written to the ring (id in the low half, len in the high half, the ring's
     * little-endian layout), for the ring positions from {@link #shadowStart}. They are written in one pass when
     * used.idx is published, as DPDK's shadow used ring is: writing each element as its buffer is used puts a
     * store into a line the driver is reading (it polls the elements published before, eight to a line), which
     * takes the line back from it once per element instead of once per batch.
     */
    private long[] shadowUsed = new long[0];
    /** The ring position of shadowUsed[0], -1 when none is staged: the shadow ends at {@link #lastUsed}. */
    private int shadowStart = -1;

    /**
     * Broken, as the owning thread sees it: a plain field, read on every hot-path call. Other threads learn
     * of a breakage through the volatile {@link #error}, written after it.
     */
    private boolean broken;
    private volatile RingError error = RingError.NONE;

    /** @param index the queue's index in its device, for reports and listeners. */
    public DeviceQueue(int index) {
        this.index = index;
    }

    public int index() {
        return index;
    }

    public void setBrokenListener(BrokenListener listener) {
        this.brokenListener = listener;
    }

    /**
     * Points the queue at rings in guest memory and checks them (virtio 1.2 §2.7, §2.7.1): a size that
     * is a power of two in [1, 32768], each ring aligned and wholly inside one region. The used index starts
     * from what the ring holds (vhost_vq_init_access does the same), the avail index from
     * {@link #lastAvail()} (0 after reset, or what {@link #setLastAvail(int)} restored).
     *
     * @param eventIdx VIRTIO_F_EVENT_IDX negotiated
     * @param indirect VIRTIO_F_INDIRECT_DESC negotiated
     * @return {@link RingError#NONE}, or the violation (the queue is then broken)
     */
    public RingError configure(GuestMemory memory, int size, long descAddr, long availAddr, long usedAddr,
                               boolean eventIdx, boolean indirect) {
        this.ready = false;
        this.memory = memory;
        if (size == 0) {
            return fail(RingError.QUEUE_SIZE_ZERO);
        }
        if (size < 0 || size > MAX_QUEUE_SIZE) {
            return fail(RingError.QUEUE_SIZE_TOO_LARGE);
        }
        if ((size & (size - 1)) != 0) {
            return fail(RingError.QUEUE_SIZE_NOT_POWER_OF_TWO);
        }
        if ((descAddr & (DESC_ALIGN - 1)) != 0) {
            return fail(RingError.DESC_TABLE_MISALIGNED);
        }
        if ((availAddr & (AVAIL_ALIGN - 1)) != 0) {
            return fail(RingError.AVAIL_RING_MISALIGNED);
        }
        if ((usedAddr & (USED_ALIGN - 1)) != 0) {
            return fail(RingError.USED_RING_MISALIGNED);
        }
        if (!view(desc, descAddr, descTableSize(size)) || !view(avail, availAddr, availRingSize(size))
                || !view(used, usedAddr, usedRingSize(size))) {
            return fail(RingError.RING_OUTSIDE_MEMORY);
        }
        this.size = size;
        this.mask = size - 1;
        this.eventIdx = eventIdx;
        this.indirectAllowed = indirect;
        this.usedEventOffset = usedEventOffset(size);
        this.availEventOffset = availEventOffset(size);
        this.lastUsed = used.getShort(USED_IDX) & 0xffff;
        this.publishedUsed = lastUsed;
        this.availShadow = lastAvail;
        this.signalledUsedValid = false;
        this.usedFlags = used.getShort(USED_FLAGS) & 0xffff;
        this.batchHead = -1;
        this.shadowStart = -1;
        if (poppedHeads.length < size) {
            poppedHeads = new int[size];
            shadowUsed = new long[size];
        }
        // No position popped yet: a ring resumed with buffers in flight uses those out of any batch.
        Arrays.fill(poppedHeads, -1);
        this.ready = true;
        return RingError.NONE;
    }

    private boolean view(UnsafeBuffer view, long gpa, long len) {
        int r = memory.regionOf(gpa, len);
        if (r < 0) {
            return false;
        }
        GuestRegion region = memory.region(r);
        view.wrap(region.buffer(), (int) (gpa - region.guestBase()), (int) len);
        return true;
    }

    /** Marks a queue that the device only reads (TX): a device-writable descriptor on it is a violation. */
    public void setDeviceWritableAllowed(boolean allowed) {
        this.writableAllowed = allowed;
    }

    /**
     * VIRTIO_F_IN_ORDER negotiated (set before {@link #configure}; {@link #reset()} clears it). On a queue the
     * device only reads, buffers used in the order they were popped, each with length 0, are returned as one
     * used element per published batch carrying the last head, used.idx moving by the batch's size (virtio 1.2
     * §2.7.9): what the driver needs of them is that they are done, and it knows their order. A queue the device
     * writes keeps one element per buffer, since a driver takes each buffer's length from its own element.
     */
    public void setInOrder(boolean inOrder) {
        this.inOrder = inOrder;
    }

    public boolean inOrder() {
        return inOrder;
    }

    /**
     * A chain sized for the worst chain this queue accepts, to pass to {@link #nextAvail} again and again
     * (make it after {@link #configure}; one made earlier grows on its first pop).
     */
    public DescriptorChain newChain() {
        return new DescriptorChain(2 * Math.max(size, 1));
    }

    public boolean isReady() {
        return ready;
    }

    public int size() {
        return size;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    public GuestMemory memory() {
        return memory;
    }

    /** Whether a rule was broken; safe from any thread. */
    public boolean isBroken() {
        return error != RingError.NONE;
    }

    /** The violation that broke the queue, or {@link RingError#NONE}. */
    public RingError error() {
        return error;
    }

    public long errorCount(RingError e) {
        return errorCounts.get(e.ordinal());
    }

    public long errorCount() {
        long n = 0;
        for (int i = 1; i < ERRORS.length; i++) {
            n += errorCounts.get(i);
        }
        return n;
    }

    /**
     * Pops the next available chain into {@code chain}. Returns false when there is none, or when the queue
     * is (or just became) broken: check {@link #isBroken()}. On success the chain's head must later be given
     * back with {@link #addUsed} (or returned with {@link #discard(int)}).
     */
    public boolean nextAvail(DescriptorChain chain) {
        // Kept small enough for the JIT to inline into the caller's per-frame loop: the one-descriptor chain
        // is handled here, index refreshes, longer chains and every failure in methods of their own.
        if (broken || !ready || (lastAvail == availShadow && !refreshAvail())) {
            return false;
        }
        int head = avail.getShort(AVAIL_RING + 2 * (lastAvail & mask)) & 0xffff;
        if (head >= size) {
            fail(RingError.HEAD_OUT_OF_RANGE); // the table has queue size entries (virtio 1.2 §2.7.5)
            return false;
        }
        int d = head * DESC_SIZE;
        int flags = desc.getShort(d + DESC_FLAGS) & 0xffff;
        if ((flags & (DESC_F_NEXT | DESC_F_INDIRECT)) == 0) {
            // The common one-descriptor chain, without walk()'s loop: of the chain rules only the address
            // (virtio 1.2 §2.7.5.2) and direction (§2.7.4.2, §5.1.6.2) ones can apply to a single direct descriptor.
            long addr = desc.getLong(d + DESC_ADDR);
            long len = desc.getInt(d + DESC_LEN) & 0xffffffffL;
            GuestMemory mem = memory;
            int r = mem.regionOf(addr, len);
            boolean writable = (flags & DESC_F_WRITE) != 0;
            if (r < 0 || (writable && !writableAllowed)) {
                failDirect(r);
                return false;
            }
            chain.single(head, mem, r, (int) (addr - mem.region(r).guestBase()), (int) len, writable);
        } else if (!popChain(head, chain)) {
            return false;
        }
        if (inOrder) {
            poppedHeads[lastAvail & mask] = head;
        }
        lastAvail = (lastAvail + 1) & 0xffff;
        return true;
    }

    /**
     * Reads avail.idx once the chains it showed last are all popped: one acquire per batch the driver published,
     * not per chain. False when nothing new is there, or when the index is a lie (the queue then breaks).
     */
    private boolean refreshAvail() {
        // Acquire: the slots and descriptors the driver wrote before bumping avail.idx are read after
        // this load: they were written before the idx update (virtio 1.2 §2.7.13.3.1).
        int idx = avail.getShort(AVAIL_IDX) & 0xffff;
        VarHandle.acquireFence();
        // More than N ahead cannot be honest (the ring holds N: virtio 1.2 §2.7.13), and also catches a
        // decrement (§2.7.6.1).
        if (((idx - lastAvail) & 0xffff) > size) {
            fail(RingError.AVAIL_IDX_TOO_FAR_AHEAD);
            return false;
        }
        availShadow = idx;
        return idx != lastAvail;
    }

    /** The one direct descriptor broke a rule: its address (r < 0), else its direction. */
    private void failDirect(int r) {
        fail(r < 0 ? addressError(r, RingError.DESC_OUTSIDE_MEMORY) : RingError.WRITABLE_ON_READ_ONLY_QUEUE);
    }

    /** A chain of more than one descriptor, or an indirect one: the full walk with every chain rule. */
    private boolean popChain(int head, DescriptorChain chain) {
        // A queue reconfigured larger than when the chain was made: grow it once, never fail on it.
        chain.ensureCapacity(2 * size);
        RingError e = walk(head, chain);
        if (e != RingError.NONE) {
            fail(e);
            return false;
        }
        return true;
    }

    @Override
    public int touchAhead(int from, int count, int offset) {
        if (broken || !ready) {
            return 0;
        }
        // Only what avail.idx showed at the last acquire: slots beyond it may still be the driver's.
        int end = Math.min(from + count, (availShadow - lastAvail) & 0xffff);
        int sum = 0;
        for (int k = from; k < end; k++) {
            int head = avail.getShort(AVAIL_RING + 2 * ((lastAvail + k) & mask)) & 0xffff;
            if (head < size) {
                long addr = desc.getLong(head * DESC_SIZE + DESC_ADDR) + offset;
                int r = memory.regionOf(addr, 1);
                if (r >= 0) {
                    GuestRegion region = memory.region(r);
                    sum += region.buffer().getByte((int) (addr - region.guestBase()));
                }
            }
        }
        return sum;
    }

    /** A failed translation as a ring error: wrapping is ADDRESS_OVERFLOW, anything else {@code outside}. */
    private static RingError addressError(int regionCode, RingError outside) {
        return GuestMemory.errorOf(regionCode) == MemoryError.ADDRESS_OVERFLOW ? RingError.ADDRESS_OVERFLOW : outside;
    }

    private RingError walk(int head, DescriptorChain chain) {
        chain.reset(head, memory);
        UnsafeBuffer table = desc;
        int tableSize = size;
        boolean inIndirect = false;
        int visited = 0;
        boolean seenWritable = false;
        long total = 0;
        int i = head;
        GuestMemory mem = memory;
        while (true) {
            // A chain may not visit more descriptors than its table holds: that bounds every loop (virtio 1.2
            // §2.7.5: the table size is the longest chain; §2.7.5.2: no loops).
            if (++visited > tableSize) {
                return RingError.CHAIN_TOO_LONG;
            }
            int d = i * DESC_SIZE;
            long addr = table.getLong(d + DESC_ADDR);
            long len = table.getInt(d + DESC_LEN) & 0xffffffffL;
            int flags = table.getShort(d + DESC_FLAGS) & 0xffff;
            int next = table.getShort(d + DESC_NEXT) & 0xffff;
            if ((flags & DESC_F_INDIRECT) != 0) {
                // virtio 1.2 §2.7.5.3.1. The WRITE flag on this descriptor is ignored (§2.7.5.3.2).
                if (!indirectAllowed) {
                    return RingError.INDIRECT_NOT_NEGOTIATED;
                }
                if (inIndirect) {
                    return RingError.INDIRECT_NESTED;
                }
                if ((flags & DESC_F_NEXT) != 0) {
                    return RingError.INDIRECT_WITH_NEXT;
                }
                if (len == 0 || (len & (DESC_SIZE - 1)) != 0) {
                    return RingError.INDIRECT_BAD_LENGTH;
                }
                if (len / DESC_SIZE > DescriptorChain.indirectLimit(size)) {
                    // A chain may be N long (virtio 1.2 §2.7.5.3.1), but Linux guests build longer tables on
                    // small queues: accept up to max(N, 1024), QEMU's VIRTQUEUE_MAX_SIZE (Linux vhost maps at
                    // most 1024 segments of a chain too).
                    return RingError.INDIRECT_TOO_LARGE;
                }
                int r = mem.regionOf(addr, len);
                if (r < 0) {
                    return addressError(r, RingError.INDIRECT_OUTSIDE_MEMORY);
                }
                GuestRegion region = mem.region(r);
                indirect.wrap(region.buffer(), (int) (addr - region.guestBase()), (int) len);
                table = indirect;
                tableSize = (int) (len / DESC_SIZE);
                chain.ensureCapacity(chain.segmentCount() + tableSize);
                inIndirect = true;
                // "Zero or more direct descriptors then one indirect": the chain goes on at entry 0 of the
                // table and ends where the table's chain ends.
                visited = 0;
                i = 0;
                continue;
            }
            int r = mem.regionOf(addr, len);
            if (r < 0) {
                // Any address + length that overflows or leaves guest memory: the buffer is not the guest's.
                return addressError(r, RingError.DESC_OUTSIDE_MEMORY);
            }
            total += len;
            if (total >= (1L << 32)) {
                return RingError.CHAIN_TOO_BIG; // virtio 1.2 §2.7.5.2
            }
            boolean writable = (flags & DESC_F_WRITE) != 0;
            if (writable) {
                if (!writableAllowed) {
                    return RingError.WRITABLE_ON_READ_ONLY_QUEUE; // TX buffers are output only (virtio 1.2 §5.1.6.2)
                }
                seenWritable = true;
            } else if (seenWritable) {
                return RingError.READABLE_AFTER_WRITABLE; // virtio 1.2 §2.7.4.2
            }
            chain.add(r, (int) (addr - mem.region(r).guestBase()), (int) len, writable);
            if ((flags & DESC_F_NEXT) == 0) {
                return RingError.NONE;
            }
            if (next >= tableSize) {
                return RingError.NEXT_OUT_OF_RANGE; // virtio 1.2 §2.7.5
            }
            i = next;
        }
    }

    /**
     * Gives {@code n} popped chains back unused (vhost_discard_vq_desc), e.g. when a frame did not fit: the
     * next pops return them again.
     */
    public void discard(int n) {
        lastAvail = (lastAvail - n) & 0xffff;
    }

    /** Writes one used element and publishes used.idx; false if the queue is broken. */
    public boolean addUsed(int head, int len) {
        if (!stageUsed(head, len)) {
            return false;
        }
        publishUsed();
        return true;
    }

    /**
     * Writes one used element without publishing it: a batch of these becomes visible to the driver at once
     * with {@link #publishUsed()} (MRG_RXBUF needs that, and it saves stores). False if broken.
     */
    public boolean stageUsed(int head, int len) {
        if (broken || !ready) {
            return false;
        }
        if (head < 0 || head >= size) {
            // An id names a head the driver made available (virtio 1.2 §2.7.8): guards the device model.
            fail(RingError.USED_ID_OUT_OF_RANGE);
            return false;
        }
        if (inOrder && !writableAllowed && len == 0 && head == poppedHeads[lastUsed & mask]
                && lastUsed != lastAvail && ((lastAvail - lastUsed) & 0xffff) <= size) {
            // The next buffer in pop order: it joins the batch, its element is left unwritten (virtio 1.2 §2.7.9).
            if (batchHead < 0) {
                flushShadow(); // the elements staged before go before the batch's, and the shadow ends here
                batchStart = lastUsed;
            }
            batchHead = head;
            lastUsed = (lastUsed + 1) & 0xffff;
            return true;
        }
        if (batchHead >= 0) {
            flushBatch();
        }
        // Counted from lastUsed, not kept in a field of its own: one store less per element.
        int k = (lastUsed - shadowStart) & 0xffff;
        if (shadowStart < 0) {
            shadowStart = lastUsed;
            k = 0;
        } else if (k == size) {
            flushShadow(); // more staged than the ring holds (a device model's bug, never a driver's): write them now
            shadowStart = lastUsed;
            k = 0;
        }
        shadowUsed[k] = (head & 0xffffffffL) | ((long) len << 32);
        lastUsed = (lastUsed + 1) & 0xffff;
        return true;
    }

    /** Writes the shadowed used elements to the ring, in ring order (each is one little-endian 8-byte store). */
    private void flushShadow() {
        int start = shadowStart;
        if (start >= 0) {
            int n = (lastUsed - start) & 0xffff;
            long[] sh = shadowUsed;
            for (int i = 0; i < n; i++) {
                used.putLong(USED_RING + USED_ELEM_SIZE * ((start + i) & mask), sh[i], ByteOrder.LITTLE_ENDIAN);
            }
            shadowStart = -1;
        }
    }

    /** Writes the in-order batch's one used element, at the batch's first position, with its last head. */
    private void flushBatch() {
        flushShadow(); // an in-order batch's element comes after any staged before it
        if (batchHead >= 0) {
            int e = USED_RING + USED_ELEM_SIZE * (batchStart & mask);
            used.putInt(e, batchHead);
            used.putInt(e + 4, 0);
            batchHead = -1;
        }
    }

    /** Stages {@code n} used elements and publishes them with one used.idx store (vhost_add_used_n). */
    public boolean addUsedN(int[] heads, int[] lens, int n) {
        for (int i = 0; i < n; i++) {
            if (heads[i] < 0 || heads[i] >= size) {
                // Checked before any is staged: a break publishes what was staged, never part of one frame.
                stageUsed(heads[i], lens[i]);
                return false;
            }
        }
        for (int i = 0; i < n; i++) {
            if (!stageUsed(heads[i], lens[i])) {
                return false;
            }
        }
        publishUsed();
        return true;
    }

    /** Makes every staged used element visible to the driver. */
    public void publishUsed() {
        if (broken || !ready) {
            return;
        }
        storeUsedIdx();
    }

    /** True if used elements were staged since the last {@link #publishUsed()}. */
    public boolean hasStagedUsed() {
        return lastUsed != publishedUsed;
    }

    /**
     * Stores used.idx even when nothing was staged since the last store: the used ring is guest memory, and a
     * guest that scribbled on used.idx gets the device's index back rather than a ring that looks published.
     */
    private void storeUsedIdx() {
        flushBatch();
        // Release: the used elements and the buffer data written before are visible before the new used.idx
        // (virtio 1.2 §2.7.8.2: the device writes the used ring entry before updating idx).
        VarHandle.releaseFence();
        used.putShort(USED_IDX, (short) lastUsed);
        publishedUsed = lastUsed;
    }

    /**
     * Whether the driver wants an interrupt for the used entries published since the last one
     * (vhost_notify): with EVENT_IDX when used.idx passed used_event, otherwise unless avail.flags asks for
     * none. Records the used index as signalled, so call it once per interrupt decision.
     */
    public boolean needsInterrupt() {
        if (broken || !ready) {
            return false;
        }
        // Full fence between publishing used.idx and reading used_event/flags (virtio 1.2 §2.7.7.2): the driver
        // stores used_event then reads used.idx; without it both could miss each other and it sleeps.
        VarHandle.fullFence();
        if (!eventIdx) {
            return (avail.getShort(AVAIL_FLAGS) & AVAIL_F_NO_INTERRUPT) == 0;
        }
        int old = signalledUsed;
        boolean valid = signalledUsedValid;
        int now = lastUsed;
        signalledUsed = now;
        signalledUsedValid = true;
        if (!valid) {
            return true;
        }
        int event = avail.getShort(usedEventOffset) & 0xffff;
        return needEvent(event, now, old);
    }

    /**
     * Asks the driver not to kick (vhost_disable_notify): sets used.flags NO_NOTIFY without EVENT_IDX; with
     * EVENT_IDX leaves avail_event behind so the driver's need_event stays false.
     */
    public void disableNotifications() {
        if (broken || !ready || eventIdx) {
            return;
        }
        if ((usedFlags & USED_F_NO_NOTIFY) == 0) {
            usedFlags |= USED_F_NO_NOTIFY;
            used.putShort(USED_FLAGS, (short) usedFlags);
        }
    }

    /**
     * Asks the driver to kick again and re-checks the ring (vhost_enable_notify). Returns true when the
     * driver published more since the queue last read avail.idx, i.e. while kicks were off: the caller must
     * drain again, since the driver may have seen notifications disabled and not kicked. Chains already seen
     * but given back with {@link #discard} do not count (an RX queue waiting for more buffers must sleep
     * until new ones come, not spin on the ones it has). Call it after draining: chains seen but not popped
     * do not count either.
     */
    public boolean enableNotifications() {
        if (broken || !ready) {
            return false;
        }
        if (eventIdx) {
            // Kick me as soon as avail.idx moves past what I have seen.
            used.putShort(availEventOffset, (short) availShadow);
        } else if ((usedFlags & USED_F_NO_NOTIFY) != 0) {
            usedFlags &= ~USED_F_NO_NOTIFY;
            used.putShort(USED_FLAGS, (short) usedFlags);
        }
        // Full fence between writing avail_event/flags and re-reading avail.idx (virtio 1.2 §2.7.10.2): otherwise the
        // driver's bump and our re-read can cross, it skips the kick and we sleep with work pending.
        VarHandle.fullFence();
        int idx = avail.getShort(AVAIL_IDX) & 0xffff;
        if (idx == availShadow) {
            return false;
        }
        // Keep what we saw (Linux 6.10 vhost_get_avail_idx stores it too): the caller's next nextAvail then pops
        // from this index instead of re-reading one the guest may have moved back, so a guest flipping avail.idx
        // cannot keep the worker looping between this re-check and an empty pop.
        if (((idx - lastAvail) & 0xffff) > size) {
            fail(RingError.AVAIL_IDX_TOO_FAR_AHEAD); // virtio 1.2 §2.7.6.1, §2.7.13
            return false;
        }
        VarHandle.acquireFence();
        availShadow = idx;
        return true;
    }

    /** True if avail.idx shows chains not yet popped (an acquire read, no side effects besides the shadow). */
    public boolean hasAvail() {
        if (broken || !ready) {
            return false;
        }
        if (lastAvail != availShadow) {
            return true;
        }
        int idx = avail.getShort(AVAIL_IDX) & 0xffff;
        VarHandle.acquireFence();
        return idx != lastAvail;
    }

    /** avail.idx moved past the shadow: buffers the device has not seen, not even to give them back. */
    @Override
    public boolean hasNewAvail() {
        if (broken || !ready) {
            return false;
        }
        int idx = avail.getShort(AVAIL_IDX) & 0xffff;
        VarHandle.acquireFence();
        return idx != availShadow;
    }

    /** vhost's last_avail_idx: GET_VRING_BASE reads it when the ring is handed over or stopped. */
    public int lastAvail() {
        return lastAvail;
    }

    /**
     * SET_VRING_BASE: where popping resumes. Forgets the avail shadow and the interrupt state, as a vring
     * taken over by a new backend does.
     */
    public void setLastAvail(int idx) {
        lastAvail = idx & 0xffff;
        availShadow = lastAvail;
        signalledUsedValid = false;
    }

    /** The used.idx this side has built (published or staged). */
    public int lastUsed() {
        return lastUsed;
    }

    /** Back to the unconfigured state with no error (device reset). Counters are kept. */
    public void reset() {
        ready = false;
        broken = false;
        error = RingError.NONE;
        lastAvail = 0;
        availShadow = 0;
        lastUsed = 0;
        publishedUsed = 0;
        signalledUsedValid = false;
        usedFlags = 0;
        eventIdx = false;
        indirectAllowed = false;
        inOrder = false;
        batchHead = -1;
        shadowStart = -1;
        size = 0;
    }

    /**
     * Breaks the queue for a rule of its device type that the ring cannot check itself (e.g. virtio-net's
     * receive buffer sizes): counted, reported to the {@link BrokenListener}, and the queue stays quiet until
     * {@link #reset()}. Called by the thread driving the queue.
     */
    public RingError fail(RingError e) {
        errorCounts.incrementAndGet(e.ordinal());
        if (!broken) {
            if (ready && hasStagedUsed()) {
                // Chains returned earlier in this run carried frames that went out (or came in): the driver
                // must still see them used, before it learns of the break and resets.
                storeUsedIdx();
            }
            error = e;
            broken = true;
            BrokenListener l = brokenListener;
            if (l != null) {
                l.onBroken(this, e);
            }
        }
        return e;
    }

    @Override
    public String toString() {
        return "DeviceQueue[" + index + " size=" + size + " lastAvail=" + lastAvail + " lastUsed=" + lastUsed
                + (broken ? " broken " + error : "") + "]";
    }
}
