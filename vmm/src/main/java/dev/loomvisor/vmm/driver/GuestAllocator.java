package dev.loomvisor.vmm.driver;

import dev.loomvisor.vmm.memory.GuestMemory;

/**
 * The guest kernel's page allocator, reduced to a bump pointer: hands out aligned, zeroed ranges of guest
 * memory for rings and buffers. Ranges never cross a region end. Over a fresh mapping (the first allocator
 * of an anonymous or memfd region) the ranges are zero pages already and are not written: zeroing would
 * touch every page of every buffer, so an idle guest would cost its whole buffer memory.
 */
public final class GuestAllocator {

    private final GuestMemory memory;
    private long next;
    private long end;
    private final boolean zeroFilled;

    /** Allocates from {@code [start, start + size)}, which must lie inside one region. */
    public GuestAllocator(GuestMemory memory, long start, long size) {
        int region = memory.regionOf(start, size);
        if (region < 0) {
            throw new IllegalArgumentException("allocator range outside guest memory");
        }
        this.zeroFilled = memory.region(region).claimZeroFilled();
        this.memory = memory;
        this.next = start;
        this.end = start + size;
    }

    /** All of the first region. */
    public static GuestAllocator of(GuestMemory memory) {
        return new GuestAllocator(memory, memory.region(0).guestBase(), memory.region(0).size());
    }

    public long allocate(long size, long align) {
        long at = (next + align - 1) & -align;
        if (size < 0 || at + size > end) {
            throw new IllegalStateException("guest out of memory: " + size + " bytes wanted, "
                    + Math.max(0, end - at) + " left");
        }
        next = at + size;
        if (zeroFilled) {
            return at;
        }
        int chunk = 1 << 20;
        for (long z = 0; z < size; z += chunk) {
            memory.zero(at + z, (int) Math.min(chunk, size - z));
        }
        return at;
    }

    public long remaining() {
        return end - next;
    }
}
