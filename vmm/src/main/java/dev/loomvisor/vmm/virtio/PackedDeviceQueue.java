package dev.loomvisor.vmm.virtio;

import static dev.loomvisor.vmm.virtio.PackedRing.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.GuestRegion;
import dev.loomvisor.vmm.memory.MemoryError;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLongArray;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The device side of one packed virtqueue (virtio 1.2 §2.8): pops chains the driver marked available in the
 * descriptor ring, validates every field the guest controls, writes used descriptors back into the same ring
 * and suppresses notifications both ways through the event suppression structures.
 *
 * <p>The same contract as the split {@link DeviceQueue}: one thread drives a queue, nothing allocates after
 * {@link #configure}, nothing throws on guest input; a broken rule marks the queue broken (the device sets
 * NEEDS_RESET), counts the {@link RingError}, tells the {@link BrokenListener}, and every later call is a
 * no-op until {@link #reset()}. Other queues are unaffected.
 *
 * <p>Ring positions are a slot index and a wrap counter; {@link #lastAvail()} gives them in the vhost-user
 * vring base form (bits 0-14 the index, bit 15 the wrap counter).
 */
public final class PackedDeviceQueue implements DeviceVirtqueue {

    /** Told once when a queue breaks; runs on the thread that found the violation and must not block. */
    @FunctionalInterface
    public interface BrokenListener {
        void onBroken(PackedDeviceQueue queue, RingError error);
    }

    private static final RingError[] ERRORS = RingError.values();

    private final int index;
    private final AtomicLongArray errorCounts = new AtomicLongArray(ERRORS.length);
    private final UnsafeBuffer desc = new UnsafeBuffer(new byte[0]);
    /** The driver event suppression structure (driver area): when the driver wants interrupts. */
    private final UnsafeBuffer driverEvent = new UnsafeBuffer(new byte[0]);
    /** The device event suppression structure (device area): when this side wants kicks. */
    private final UnsafeBuffer deviceEvent = new UnsafeBuffer(new byte[0]);
    private final UnsafeBuffer indirect = new UnsafeBuffer(new byte[0]);
    private volatile BrokenListener brokenListener;

    private GuestMemory memory;
    private int size;
    private boolean eventIdx;
    private boolean indirectAllowed;
    private boolean inOrder;
    private boolean writableAllowed = true;
    private boolean ready;

    /** Next slot to pop and the device's view of the driver's avail wrap counter (virtio 1.2 §2.8.1). */
    private int lastAvail;
    private boolean availWrap = true;
    /** The furthest position popped: chains behind it that were {@link #discard}ed are not new work. */
    private int seenAvail;
    private boolean seenWrap = true;
    /** Next slot to write a used descriptor to and the used wrap counter (virtio 1.2 §2.8.1). */
    private int lastUsed;
    private boolean usedWrap = true;

    /** Ring descriptors each in-flight buffer id occupies (0: not in flight), by id. */
    private int[] descCount = new int[0];
    private int inFlightDescs;
    /** Pops, newest last, as (position | wrap << 15, id), so {@link #discard} can give chains back. */
    private int[] popPos = new int[0];
    private int[] popId = new int[0];
    private int popTop;
    private int popDepth;
    /** Where each in-flight id was popped (position | wrap << 15): IN_ORDER batches need consecutive ones. */
    private int[] popPosById = new int[0];

    /**
     * VIRTIO_F_IN_ORDER: buffers used in the order they were popped, held back as one batch that a single used
     * descriptor (the last id) will stand for (virtio 1.2 §2.8.8); -1 when none is pending.
     */
    private int batchId = -1;
    private int batchLen;
    private int batchDescs;

    /**
     * The first staged used descriptor's flags offset (-1: none): stored last, on publish, as a driver stores a
     * chain's first flags last (virtio 1.2 §2.8.21.2).
     */
    private int stagedFlagsAt = -1;
    private int stagedFlags;
    /**
     * The staged used descriptors, written to the ring in one pass on publish (DPDK's shadow used ring): as
     * (slot offset | id << 20 | flags << 36) and length. Writing each as its buffer is used stores into lines the
     * driver is working on (it reclaims used slots and fills them again right behind), taking a line from it
     * once per descriptor instead of once per batch. Entry 0 is the one at {@link #stagedFlagsAt}.
     */
    private long[] shadowSlot = new long[0];
    private int[] shadowLen = new int[0];
    private int shadowCount;
    /** Descriptors used since the last interrupt decision (the packed signalled_used). */
    private int usedSinceSignal;
    private boolean signalledValid;
    private int deviceEventFlags;

    private boolean broken;
    private volatile RingError error = RingError.NONE;

    public PackedDeviceQueue(int index) {
        this.index = index;
    }

    @Override
    public int index() {
        return index;
    }

    public void setBrokenListener(BrokenListener listener) {
        this.brokenListener = listener;
    }

    /**
     * Points the queue at a packed ring in guest memory and checks it: a size in [1, 32768] (not necessarily a
     * power of two, virtio 1.2 §2.8), the descriptor ring 16-byte and the event suppression areas 4-byte aligned
     * (§2.8.10.1), each wholly inside one region. Popping resumes from {@link #lastAvail()} (slot 0, wrap 1
     * after reset: §2.8.1), and used descriptors are written from the same position, as a vhost backend that
     * takes a ring over does.
     *
     * @param driverAddr the driver area (driver event suppression)
     * @param deviceAddr the device area (device event suppression)
     */
    public RingError configure(GuestMemory memory, int size, long descAddr, long driverAddr, long deviceAddr,
                               boolean eventIdx, boolean indirect) {
        this.ready = false;
        this.memory = memory;
        if (size == 0) {
            return fail(RingError.QUEUE_SIZE_ZERO);
        }
        if (size < 0 || size > MAX_QUEUE_SIZE) {
            return fail(RingError.QUEUE_SIZE_TOO_LARGE);
        }
        if ((descAddr & (DESC_ALIGN - 1)) != 0) {
            return fail(RingError.DESC_TABLE_MISALIGNED);
        }
        if ((driverAddr & (EVENT_ALIGN - 1)) != 0 || (deviceAddr & (EVENT_ALIGN - 1)) != 0) {
            return fail(RingError.PACKED_EVENT_AREA_MISALIGNED);
        }
        if (!view(desc, descAddr, descRingSize(size)) || !view(driverEvent, driverAddr, EVENT_SIZE)
                || !view(deviceEvent, deviceAddr, EVENT_SIZE)) {
            return fail(RingError.RING_OUTSIDE_MEMORY);
        }
        if (lastAvail >= size) {
            return fail(RingError.PACKED_BASE_OUT_OF_RANGE);
        }
        this.size = size;
        this.eventIdx = eventIdx;
        this.indirectAllowed = indirect;
        if (descCount.length < size) {
            descCount = new int[size];
            popPos = new int[size];
            popId = new int[size];
            popPosById = new int[size];
            shadowSlot = new long[size];
            shadowLen = new int[size];
        }
        restart();
        this.deviceEventFlags = deviceEvent.getShort(EVENT_FLAGS) & 0xffff;
        this.ready = true;
        return RingError.NONE;
    }

    /** Used descriptors continue where popping resumes; nothing is in flight. */
    private void restart() {
        seenAvail = lastAvail;
        seenWrap = availWrap;
        lastUsed = lastAvail;
        usedWrap = availWrap;
        Arrays.fill(descCount, 0);
        inFlightDescs = 0;
        popTop = 0;
        popDepth = 0;
        stagedFlagsAt = -1;
        shadowCount = 0;
        batchId = -1;
        batchDescs = 0;
        usedSinceSignal = 0;
        signalledValid = false;
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

    /** VIRTIO_F_IN_ORDER negotiated: {@link #addUsedN} may write one used descriptor for a batch (§2.8.8). */
    public void setInOrder(boolean inOrder) {
        this.inOrder = inOrder;
    }

    public boolean inOrder() {
        return inOrder;
    }

    @Override
    public void setDeviceWritableAllowed(boolean allowed) {
        this.writableAllowed = allowed;
    }

    /**
     * A chain sized for N direct descriptors or one indirect table of N; a longer table (up to
     * {@link DescriptorChain#MAX_INDIRECT_ENTRIES}) grows it once, on the pop that needs it.
     */
    @Override
    public DescriptorChain newChain() {
        return new DescriptorChain(2 * Math.max(size, 1));
    }

    @Override
    public boolean isReady() {
        return ready;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public boolean eventIdx() {
        return eventIdx;
    }

    @Override
    public GuestMemory memory() {
        return memory;
    }

    @Override
    public boolean isBroken() {
        return error != RingError.NONE;
    }

    @Override
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
     * Pops the next available chain into {@code chain}; its {@link DescriptorChain#head()} is the buffer id to
     * give back with {@link #addUsed}. False when there is none, or when the queue is (or just became) broken.
     */
    @Override
    public boolean nextAvail(DescriptorChain chain) {
        if (broken || !ready) {
            return false;
        }
        int flags = desc.getShort(lastAvail * DESC_SIZE + DESC_FLAGS) & 0xffff;
        // Acquire: the driver writes the rest of the chain, then the first descriptor's flags (virtio 1.2
        // §2.8.17, §2.8.21.2); everything is read after this load.
        VarHandle.acquireFence();
        if (!isAvail(flags, availWrap)) {
            if (((flags & DESC_F_AVAIL) != 0) == availWrap && ((flags & DESC_F_USED) != 0) == availWrap) {
                // Used in this lap at a slot the device has not reached: no driver writes that (§2.8.1).
                fail(RingError.PACKED_FLAGS_INVALID);
            }
            return false;
        }
        chain.ensureCapacity(2 * size);
        if ((flags & (DESC_F_NEXT | DESC_F_INDIRECT)) == 0) {
            return single(flags, chain);
        }
        RingError e = walk(flags, chain);
        if (e != RingError.NONE) {
            fail(e);
            return false;
        }
        return true;
    }

    /** Touches descriptors {@code from} slots on: on a ring of one-descriptor chains, the chains that far. */
    @Override
    public int touchAhead(int from, int count, int offset) {
        if (broken || !ready) {
            return 0;
        }
        int end = Math.min(from + count, size);
        int sum = 0;
        for (int k = from; k < end; k++) {
            int slot = lastAvail + k;
            boolean wrap = availWrap;
            if (slot >= size) {
                slot -= size;
                wrap = !wrap;
            }
            int d = slot * DESC_SIZE;
            int flags = desc.getShort(d + DESC_FLAGS) & 0xffff;
            VarHandle.acquireFence();
            if (!isAvail(flags, wrap)) {
                break; // the driver has not made it available (yet): nor any after it
            }
            long addr = desc.getLong(d + DESC_ADDR) + offset;
            int r = memory.regionOf(addr, 1);
            if (r >= 0) {
                GuestRegion region = memory.region(r);
                sum += region.buffer().getByte((int) (addr - region.guestBase()));
            }
        }
        return sum;
    }

    /**
     * The common one-descriptor chain without {@link #walk}'s loop: of the chain rules only the address
     * (§2.8.4), direction (§5.1.6.2) and id (§2.8.13) ones apply to it.
     */
    private boolean single(int flags, DescriptorChain chain) {
        int d = lastAvail * DESC_SIZE;
        long addr = desc.getLong(d + DESC_ADDR);
        long len = desc.getInt(d + DESC_LEN) & 0xffffffffL;
        int id = desc.getShort(d + DESC_ID) & 0xffff;
        int r = memory.regionOf(addr, len);
        if (r < 0) {
            fail(addressError(r, RingError.DESC_OUTSIDE_MEMORY));
            return false;
        }
        boolean writable = (flags & DESC_F_WRITE) != 0;
        if (writable && !writableAllowed) {
            fail(RingError.WRITABLE_ON_READ_ONLY_QUEUE);
            return false;
        }
        if (id >= size) {
            fail(RingError.PACKED_ID_OUT_OF_RANGE);
            return false;
        }
        if (descCount[id] != 0) {
            fail(RingError.PACKED_ID_IN_USE);
            return false;
        }
        if (inFlightDescs == size) {
            fail(RingError.PACKED_RING_OVERRUN);
            return false;
        }
        chain.single(id, memory, r, (int) (addr - memory.region(r).guestBase()), (int) len, writable);
        boolean wraps = lastAvail + 1 == size;
        popped(id, 1, wraps ? 0 : lastAvail + 1, wraps ? !availWrap : availWrap);
        return true;
    }

    /** Records a pop of {@code count} descriptors as buffer {@code id}; popping resumes at (pos, wrap). */
    private void popped(int id, int count, int pos, boolean wrap) {
        descCount[id] = count;
        inFlightDescs += count;
        int at = lastAvail | (availWrap ? WRAP_BIT : 0);
        popPosById[id] = at;
        popPos[popTop] = at;
        popId[popTop] = id;
        popTop = popTop + 1 == size ? 0 : popTop + 1;
        if (popDepth < size) {
            popDepth++;
        }
        if (lastAvail == seenAvail && availWrap == seenWrap) {
            seenAvail = pos; // the usual case: popping at the front
            seenWrap = wrap;
        } else {
            int ahead = linearDistance(seenAvail, seenWrap, pos, wrap);
            if (ahead != 0 && ahead <= size) {
                seenAvail = pos;
                seenWrap = wrap;
            }
        }
        lastAvail = pos;
        availWrap = wrap;
    }

    /** A failed translation as a ring error: wrapping is ADDRESS_OVERFLOW, anything else {@code outside}. */
    private static RingError addressError(int regionCode, RingError outside) {
        return GuestMemory.errorOf(regionCode) == MemoryError.ADDRESS_OVERFLOW ? RingError.ADDRESS_OVERFLOW : outside;
    }

    private RingError walk(int flags, DescriptorChain chain) {
        chain.reset(-1, memory);
        GuestMemory mem = memory;
        int pos = lastAvail;
        boolean wrap = availWrap;
        int count = 0;
        int id;
        boolean seenWritable = false;
        long total = 0;
        while (true) {
            int d = pos * DESC_SIZE;
            if (count > 0) {
                flags = desc.getShort(d + DESC_FLAGS) & 0xffff;
                // Every descriptor of a chain is made available, the first one last (virtio 1.2 §2.8.6); one
                // that is not was never written for this chain, on this lap.
                if (!isAvail(flags, wrap)) {
                    return RingError.PACKED_CHAIN_NOT_AVAIL;
                }
            }
            // At most queue size descriptors: a chain's descriptors are consecutive ring slots (virtio 1.2 §2.8.6),
            // so a longer one meets its own first slot on the other lap (caught above); kept as the loop bound.
            if (++count > size) {
                return RingError.CHAIN_TOO_LONG;
            }
            long addr = desc.getLong(d + DESC_ADDR);
            long len = desc.getInt(d + DESC_LEN) & 0xffffffffL;
            int bufferId = desc.getShort(d + DESC_ID) & 0xffff;
            // A chain may run past the ring's end: it continues at slot 0 with the wrap counter flipped (§2.8.6).
            if (++pos == size) {
                pos = 0;
                wrap = !wrap;
            }
            if ((flags & DESC_F_INDIRECT) != 0) {
                RingError e = walkIndirect(addr, len, flags, count, chain);
                if (e != RingError.NONE) {
                    return e;
                }
                id = bufferId;
                break;
            }
            int r = mem.regionOf(addr, len);
            if (r < 0) {
                return addressError(r, RingError.DESC_OUTSIDE_MEMORY);
            }
            total += len;
            if (total >= (1L << 32)) {
                return RingError.CHAIN_TOO_BIG; // lengths are le32 (virtio 1.2 §2.8.4)
            }
            boolean writable = (flags & DESC_F_WRITE) != 0;
            if (writable) {
                if (!writableAllowed) {
                    return RingError.WRITABLE_ON_READ_ONLY_QUEUE; // virtio 1.2 §5.1.6.2
                }
                seenWritable = true;
            } else if (seenWritable) {
                return RingError.READABLE_AFTER_WRITABLE; // virtio 1.2 §2.8.5
            }
            chain.add(r, (int) (addr - mem.region(r).guestBase()), (int) len, writable);
            if ((flags & DESC_F_NEXT) == 0) {
                // The buffer id is in the last descriptor of the chain (virtio 1.2 §2.8.6).
                id = bufferId;
                break;
            }
        }
        if (id >= size) {
            return RingError.PACKED_ID_OUT_OF_RANGE; // ids name one of N buffers (virtio 1.2 §2.8.13)
        }
        if (descCount[id] != 0) {
            return RingError.PACKED_ID_IN_USE; // an id is reused only after its used descriptor (§2.8.13)
        }
        if (inFlightDescs + count > size) {
            // The ring holds N descriptors: more in flight means slots the device has not used were overwritten.
            return RingError.PACKED_RING_OVERRUN;
        }
        chain.setHead(id);
        popped(id, count, pos, wrap);
        return RingError.NONE;
    }

    /** virtio 1.2 §2.8.7: one table of {@code len / 16} descriptors laid out in order. */
    private RingError walkIndirect(long addr, long len, int flags, int count, DescriptorChain chain) {
        if (!indirectAllowed) {
            return RingError.INDIRECT_NOT_NEGOTIATED; // §2.8.19
        }
        if ((flags & DESC_F_NEXT) != 0) {
            return RingError.INDIRECT_WITH_NEXT; // §2.8.19
        }
        if (count > 1) {
            // Linux, DPDK and QEMU put an indirect table alone in the ring; a direct prefix is not packed form.
            return RingError.PACKED_INDIRECT_IN_CHAIN;
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
        GuestMemory mem = memory;
        int r = mem.regionOf(addr, len);
        if (r < 0) {
            return addressError(r, RingError.INDIRECT_OUTSIDE_MEMORY);
        }
        GuestRegion region = mem.region(r);
        UnsafeBuffer table = indirect;
        table.wrap(region.buffer(), (int) (addr - region.guestBase()), (int) len);
        int entries = (int) (len / DESC_SIZE);
        chain.ensureCapacity(chain.segmentCount() + entries);
        boolean seenWritable = false;
        long total = 0;
        for (int i = 0; i < entries; i++) {
            int d = i * DESC_SIZE;
            long a = table.getLong(d + DESC_ADDR);
            long l = table.getInt(d + DESC_LEN) & 0xffffffffL;
            // WRITE is the only valid flag in an indirect table; the others and the id are ignored (§2.8.7).
            boolean writable = (table.getShort(d + DESC_FLAGS) & DESC_F_WRITE) != 0;
            int er = mem.regionOf(a, l);
            if (er < 0) {
                return addressError(er, RingError.DESC_OUTSIDE_MEMORY);
            }
            total += l;
            if (total >= (1L << 32)) {
                return RingError.CHAIN_TOO_BIG;
            }
            if (writable) {
                if (!writableAllowed) {
                    return RingError.WRITABLE_ON_READ_ONLY_QUEUE;
                }
                seenWritable = true;
            } else if (seenWritable) {
                return RingError.READABLE_AFTER_WRITABLE;
            }
            chain.add(er, (int) (a - mem.region(er).guestBase()), (int) l, writable);
        }
        return RingError.NONE;
    }

    /** Steps from (a, wa) to (b, wb) around the ring, modulo two laps. */
    private int linearDistance(int a, boolean wa, int b, boolean wb) {
        int la = a + (wa ? 0 : size);
        int lb = b + (wb ? 0 : size);
        int d = lb - la;
        return d < 0 ? d + 2 * size : d;
    }

    /**
     * Gives the {@code n} newest popped chains back unused (vhost_discard_vq_desc): the next pops return them
     * again. They must not have been used.
     */
    @Override
    public void discard(int n) {
        int k = Math.min(n, popDepth);
        for (int i = 0; i < k; i++) {
            popTop = popTop == 0 ? size - 1 : popTop - 1;
            int id = popId[popTop];
            inFlightDescs -= descCount[id];
            descCount[id] = 0;
            lastAvail = popPos[popTop] & ~WRAP_BIT;
            availWrap = (popPos[popTop] & WRAP_BIT) != 0;
        }
        popDepth -= k;
    }

    @Override
    public boolean addUsed(int id, int len) {
        if (!stageUsed(id, len)) {
            return false;
        }
        publishUsed();
        return true;
    }

    /**
     * Writes one used descriptor (virtio 1.2 §2.8.4: id, bytes written, AVAIL and USED set to the used wrap
     * counter) and skips the buffer's ring descriptors; its flags are stored only by {@link #publishUsed()} if it
     * is the first of a batch, so the driver sees the batch at once.
     */
    @Override
    public boolean stageUsed(int id, int len) {
        if (broken || !ready) {
            return false;
        }
        if (id < 0 || id >= size) {
            fail(RingError.USED_ID_OUT_OF_RANGE);
            return false;
        }
        int n = descCount[id];
        if (n == 0) {
            fail(RingError.PACKED_USED_ID_NOT_IN_FLIGHT);
            return false;
        }
        if (inOrder) {
            if (batchId >= 0 && (batchLen != 0 || popPosById[id] != position(lastUsed, usedWrap, batchDescs))) {
                // Only the batch's last buffer carries a length, and the batch is consecutive pops.
                flushBatch();
            }
            if (batchId >= 0 || popPosById[id] == position(lastUsed, usedWrap, 0)) {
                descCount[id] = 0;
                inFlightDescs -= n;
                batchId = id;
                batchLen = len;
                batchDescs += n;
                return true;
            }
        }
        descCount[id] = 0;
        inFlightDescs -= n;
        writeUsed(id, len, n);
        return true;
    }

    /** The ring position {@code k} descriptors after (pos, wrap), as position | wrap << 15. */
    private int position(int pos, boolean wrap, int k) {
        int p = pos + k;
        if (p >= size) {
            p -= size;
            wrap = !wrap;
        }
        return p | (wrap ? WRAP_BIT : 0);
    }

    private void flushBatch() {
        if (batchId >= 0) {
            int id = batchId;
            int n = batchDescs;
            batchId = -1;
            batchDescs = 0;
            writeUsed(id, batchLen, n);
        }
    }

    /** Writes a used descriptor for buffers already counted off (descCount, inFlightDescs) by the caller. */
    private void writeUsed(int id, int len, int descriptors) {
        int d = lastUsed * DESC_SIZE;
        // WRITE marks a used descriptor whose buffer the device wrote into, as DPDK's vhost does.
        int flags = usedFlags(usedWrap) | (len != 0 ? DESC_F_WRITE : 0);
        if (stagedFlagsAt < 0) {
            stagedFlagsAt = d + DESC_FLAGS;
            stagedFlags = flags;
        }
        if (shadowCount == shadowSlot.length) {
            writeShadow(); // more staged than the ring holds (a device model's bug, never a driver's)
        }
        shadowSlot[shadowCount] = d | ((long) id << 20) | ((long) flags << 36);
        shadowLen[shadowCount++] = len;
        usedSinceSignal += descriptors;
        int next = lastUsed + descriptors;
        if (next >= size) {
            next -= size;
            usedWrap = !usedWrap;
        }
        lastUsed = next;
    }

    /**
     * Uses {@code n} buffers with one publish. With VIRTIO_F_IN_ORDER, buffers used in the order they were
     * popped become one used descriptor carrying the last id (virtio 1.2 §2.8.8), as long as no length but the
     * last is non-zero (the others' lengths are not written).
     */
    @Override
    public boolean addUsedN(int[] ids, int[] lens, int n) {
        if (broken || !ready) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= size || descCount[ids[i]] == 0) {
                stageUsed(ids[i], lens[i]); // breaks the queue; none of the batch is staged
                return false;
            }
        }
        for (int i = 0; i < n; i++) {
            if (!stageUsed(ids[i], lens[i])) {
                return false;
            }
        }
        publishUsed();
        return true;
    }

    @Override
    public void publishUsed() {
        if (broken || !ready) {
            return;
        }
        storeStaged();
    }

    /**
     * Writes the staged used descriptors, all but the first's flags: the driver reads used descriptors in ring
     * order, so a later one is not looked at before the first of the batch, whose flags go last.
     */
    private void writeShadow() {
        int first = stagedFlagsAt - DESC_FLAGS;
        for (int i = 0, n = shadowCount; i < n; i++) {
            long e = shadowSlot[i];
            int d = (int) (e & 0xfffff);
            desc.putInt(d + DESC_LEN, shadowLen[i]);
            desc.putShort(d + DESC_ID, (short) (e >>> 20));
            if (d != first) {
                desc.putShort(d + DESC_FLAGS, (short) (e >>> 36));
            }
        }
        shadowCount = 0;
    }

    private void storeStaged() {
        flushBatch();
        if (stagedFlagsAt < 0) {
            return;
        }
        writeShadow();
        // Release: the used descriptors' ids and lengths and the buffer data are visible before the flags that
        // hand them to the driver (virtio 1.2 §2.8.21.2).
        VarHandle.releaseFence();
        desc.putShort(stagedFlagsAt, (short) stagedFlags);
        stagedFlagsAt = -1;
    }

    @Override
    public boolean hasStagedUsed() {
        return stagedFlagsAt >= 0 || batchId >= 0;
    }

    /**
     * Whether the driver wants an interrupt for what was used since the last decision (virtio 1.2 §2.8.10,
     * §2.8.14): ENABLE yes, DISABLE no, DESC (EVENT_IDX) when the used position passed the driver's off_wrap.
     */
    @Override
    public boolean needsInterrupt() {
        if (broken || !ready) {
            return false;
        }
        // Full fence between publishing the used flags and reading the driver's event suppression: the driver
        // writes it, then re-checks the ring (virtio 1.2 §2.8.21.3).
        VarHandle.fullFence();
        int flags = driverEvent.getShort(EVENT_FLAGS) & 0xffff;
        int moved = usedSinceSignal;
        boolean valid = signalledValid;
        usedSinceSignal = 0;
        signalledValid = true;
        if (!eventIdx || flags != EVENT_FLAG_DESC) {
            return flags != EVENT_FLAG_DISABLE;
        }
        if (!valid || moved >= size) {
            return true;
        }
        if (moved == 0) {
            return false;
        }
        int offWrap = driverEvent.getShort(EVENT_OFF_WRAP) & 0xffff;
        return PackedRing.needEvent(offWrap, lastUsed, moved, usedWrap, size);
    }

    /** Asks the driver not to kick: device event flags DISABLE (virtio 1.2 §2.8.10). */
    @Override
    public void disableNotifications() {
        if (broken || !ready) {
            return;
        }
        if (deviceEventFlags != EVENT_FLAG_DISABLE) {
            deviceEventFlags = EVENT_FLAG_DISABLE;
            deviceEvent.putShort(EVENT_FLAGS, (short) EVENT_FLAG_DISABLE);
        }
    }

    /**
     * Asks the driver to kick again (ENABLE, or with EVENT_IDX DESC at the first position not seen yet) and
     * re-checks the ring: true when a chain was made available past what this side has seen, which the driver
     * may not have kicked for. Chains given back with {@link #discard} do not count.
     */
    @Override
    public boolean enableNotifications() {
        if (broken || !ready) {
            return false;
        }
        if (eventIdx) {
            deviceEvent.putShort(EVENT_OFF_WRAP, (short) (seenAvail | (seenWrap ? WRAP_BIT : 0)));
            // The off_wrap before the flags that make the driver read it (DPDK's
            // vhost_enable_guest_notification_packed orders them the same way).
            VarHandle.releaseFence();
            deviceEventFlags = EVENT_FLAG_DESC;
            deviceEvent.putShort(EVENT_FLAGS, (short) EVENT_FLAG_DESC);
        } else if (deviceEventFlags != EVENT_FLAG_ENABLE) {
            deviceEventFlags = EVENT_FLAG_ENABLE;
            deviceEvent.putShort(EVENT_FLAGS, (short) EVENT_FLAG_ENABLE);
        }
        // Full fence between enabling and re-reading the ring (virtio 1.2 §2.8.21.3): otherwise the driver's
        // new descriptor and our re-read can cross, it skips the kick and we sleep with work pending.
        VarHandle.fullFence();
        int flags = desc.getShort(seenAvail * DESC_SIZE + DESC_FLAGS) & 0xffff;
        VarHandle.acquireFence();
        return isAvail(flags, seenWrap);
    }

    @Override
    public boolean hasAvail() {
        if (broken || !ready) {
            return false;
        }
        if (lastAvail != seenAvail || availWrap != seenWrap) {
            return true;
        }
        int flags = desc.getShort(lastAvail * DESC_SIZE + DESC_FLAGS) & 0xffff;
        VarHandle.acquireFence();
        return isAvail(flags, availWrap);
    }

    /** The slot after the furthest one popped holds a descriptor made available in its lap. */
    @Override
    public boolean hasNewAvail() {
        if (broken || !ready) {
            return false;
        }
        int flags = desc.getShort(seenAvail * DESC_SIZE + DESC_FLAGS) & 0xffff;
        VarHandle.acquireFence();
        return isAvail(flags, seenWrap);
    }

    /** GET_VRING_BASE for a packed ring: bits 0-14 the next slot to pop, bit 15 the avail wrap counter. */
    @Override
    public int lastAvail() {
        return lastAvail | (availWrap ? WRAP_BIT : 0);
    }

    /**
     * SET_VRING_BASE for a packed ring (bits 0-14 slot, bit 15 wrap counter): popping and used descriptors
     * resume there, nothing is in flight. A slot beyond the queue size breaks the queue at {@link #configure}.
     */
    @Override
    public void setLastAvail(int base) {
        lastAvail = base & ~WRAP_BIT & 0xffff;
        availWrap = (base & WRAP_BIT) != 0;
        if (ready && lastAvail >= size) {
            fail(RingError.PACKED_BASE_OUT_OF_RANGE);
            return;
        }
        restart();
    }

    /** The next used slot in the vring base form (bit 15 the used wrap counter). */
    @Override
    public int lastUsed() {
        return lastUsed | (usedWrap ? WRAP_BIT : 0);
    }

    /** Buffers popped and not used yet. */
    public int inFlightDescriptors() {
        return inFlightDescs;
    }

    @Override
    public void reset() {
        ready = false;
        broken = false;
        error = RingError.NONE;
        lastAvail = 0;
        availWrap = true;
        restart();
        deviceEventFlags = 0;
        eventIdx = false;
        indirectAllowed = false;
        size = 0;
    }

    @Override
    public RingError fail(RingError e) {
        errorCounts.incrementAndGet(e.ordinal());
        if (!broken) {
            if (ready) {
                // Buffers used before the break carried frames: the driver must still see them used.
                storeStaged();
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
        return "PackedDeviceQueue[" + index + " size=" + size + " lastAvail=" + lastAvail + "/" + (availWrap ? 1 : 0)
                + " lastUsed=" + lastUsed + "/" + (usedWrap ? 1 : 0) + (broken ? " broken " + error : "") + "]";
    }
}
