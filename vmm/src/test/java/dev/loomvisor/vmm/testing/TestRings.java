package dev.loomvisor.vmm.testing;

import static dev.loomvisor.vmm.virtio.SplitRing.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.Translation;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.SplitRing;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A split ring laid out in guest memory for tests (of this module and of vhost): the descriptor table, avail
 * and used rings at aligned guest addresses, a data area after them, and raw accessors to write whatever a
 * hostile guest might (any descriptor, any avail index) as well as well-formed sides ({@link #driver},
 * {@link #device}).
 *
 * <pre>
 * base            descriptor table  16*N
 * base + 16*N     avail ring        6+2*N
 * next 4 KiB      used ring         6+8*N
 * next 4 KiB      data area         up to the end of the memory
 * </pre>
 */
public final class TestRings {

    private final GuestMemory memory;
    private final int size;
    private final long descAddr;
    private final long availAddr;
    private final long usedAddr;
    private final long dataAddr;
    private final long end;

    /** Rings of queue size {@code size} at the start of {@code memory}'s first region. */
    public TestRings(GuestMemory memory, int size) {
        this(memory, size, memory.region(0).guestBase());
    }

    /** Rings of queue size {@code size} starting at guest address {@code base} (16-byte aligned). */
    public TestRings(GuestMemory memory, int size, long base) {
        this.memory = memory;
        this.size = size;
        this.descAddr = base;
        this.availAddr = base + SplitRing.descTableSize(size);
        this.usedAddr = alignUp(availAddr + SplitRing.availRingSize(size), 4096);
        this.dataAddr = alignUp(usedAddr + SplitRing.usedRingSize(size), 4096);
        this.end = memory.region(0).guestEnd();
        zero(descAddr, (int) (dataAddr - descAddr));
    }

    private static long alignUp(long v, long a) {
        return (v + a - 1) & -a;
    }

    public GuestMemory memory() {
        return memory;
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

    /** First byte of the data area, 4 KiB aligned. */
    public long dataAddr() {
        return dataAddr;
    }

    /** Bytes from the data area to the end of the region. */
    public long dataSize() {
        return end - dataAddr;
    }

    /** A device side configured on these rings; check {@link DeviceQueue#error()} for hostile set-ups. */
    public DeviceQueue device(boolean eventIdx, boolean indirect) {
        DeviceQueue q = new DeviceQueue(0);
        RingError e = q.configure(memory, size, descAddr, availAddr, usedAddr, eventIdx, indirect);
        if (e != RingError.NONE) {
            throw new IllegalStateException("test rings rejected: " + e);
        }
        return q;
    }

    /** A driver side on these rings. */
    public DriverQueue driver(boolean eventIdx) {
        return new DriverQueue(memory, size, descAddr, availAddr, usedAddr, eventIdx);
    }

    // Raw access, as a hostile guest would write.

    public void desc(int i, long addr, long len, int flags, int next) {
        UnsafeBuffer b = at(descAddr + (long) i * DESC_SIZE, DESC_SIZE);
        int o = off;
        b.putLong(o + DESC_ADDR, addr);
        b.putInt(o + DESC_LEN, (int) len);
        b.putShort(o + DESC_FLAGS, (short) flags);
        b.putShort(o + DESC_NEXT, (short) next);
    }

    /** Writes an entry of an indirect table at {@code table}. */
    public void indirectDesc(long table, int i, long addr, long len, int flags, int next) {
        UnsafeBuffer b = at(table + (long) i * DESC_SIZE, DESC_SIZE);
        int o = off;
        b.putLong(o + DESC_ADDR, addr);
        b.putInt(o + DESC_LEN, (int) len);
        b.putShort(o + DESC_FLAGS, (short) flags);
        b.putShort(o + DESC_NEXT, (short) next);
    }

    public void availRing(int slot, int head) {
        putShort(availAddr + AVAIL_RING + 2L * (slot & (size - 1)), head);
    }

    public void availIdx(int idx) {
        putShort(availAddr + AVAIL_IDX, idx);
    }

    public int availIdx() {
        return getShort(availAddr + AVAIL_IDX);
    }

    public void availFlags(int flags) {
        putShort(availAddr + AVAIL_FLAGS, flags);
    }

    public void usedEvent(int idx) {
        putShort(availAddr + SplitRing.usedEventOffset(size), idx);
    }

    public int usedIdx() {
        return getShort(usedAddr + USED_IDX);
    }

    public void usedIdx(int idx) {
        putShort(usedAddr + USED_IDX, idx);
    }

    public int usedFlags() {
        return getShort(usedAddr + USED_FLAGS);
    }

    public int availEvent() {
        return getShort(usedAddr + SplitRing.availEventOffset(size));
    }

    public int usedId(int slot) {
        UnsafeBuffer b = at(usedAddr + USED_RING + (long) USED_ELEM_SIZE * (slot & (size - 1)), 8);
        return b.getInt(off);
    }

    public int usedLen(int slot) {
        UnsafeBuffer b = at(usedAddr + USED_RING + (long) USED_ELEM_SIZE * (slot & (size - 1)), 8);
        return b.getInt(off + 4);
    }

    /** Makes one chain available: puts {@code head} at the next avail slot and bumps avail.idx. */
    public void pushAvail(int head) {
        int idx = availIdx();
        availRing(idx, head);
        availIdx(idx + 1);
    }

    public void write(long gpa, byte[] bytes) {
        memory.write(gpa, bytes, 0, bytes.length);
    }

    public byte[] read(long gpa, int len) {
        byte[] b = new byte[len];
        memory.read(gpa, b, 0, len);
        return b;
    }

    public void zero(long gpa, int len) {
        memory.zero(gpa, len);
    }

    private final Translation t = new Translation();
    private int off;

    private UnsafeBuffer at(long gpa, int len) {
        if (memory.translate(gpa, len, t) != dev.loomvisor.vmm.memory.MemoryError.NONE) {
            throw new IllegalArgumentException("test ring access outside memory: 0x" + Long.toHexString(gpa));
        }
        off = t.offset();
        return t.buffer();
    }

    private void putShort(long gpa, int v) {
        UnsafeBuffer b = at(gpa, 2);
        b.putShort(off, (short) v);
    }

    private int getShort(long gpa) {
        UnsafeBuffer b = at(gpa, 2);
        return b.getShort(off) & 0xffff;
    }
}
