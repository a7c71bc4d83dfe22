package dev.loomvisor.vmm.testing;

import dev.loomvisor.vmm.memory.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Guest memory whose one region sits between two guard bands of host memory filled with a pattern. Reads
 * past the region are caught by the region buffer's bounds check (Agrona's, on unless disabled); writes
 * past it would change a guard band, which {@link #guardsIntact()} detects. Tests of hostile rings assert
 * both: no exception escaped and the guards are intact.
 */
public final class GuardedMemory implements AutoCloseable {

    public static final int GUARD = 4096;
    private static final byte PATTERN = (byte) 0xA5;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment whole;
    private final MemorySegment pattern;
    private final GuestMemory memory;

    public GuardedMemory(long guestBase, long size) {
        whole = arena.allocate(size + 2L * GUARD, 4096);
        pattern = arena.allocate(GUARD).fill(PATTERN);
        whole.asSlice(0, GUARD).fill(PATTERN);
        whole.asSlice(GUARD + size, GUARD).fill(PATTERN);
        memory = GuestMemory.builder().wrap(guestBase, whole.asSlice(GUARD, size)).build();
    }

    public GuestMemory memory() {
        return memory;
    }

    /** True if no byte of either guard band changed. */
    public boolean guardsIntact() {
        long size = whole.byteSize() - 2L * GUARD;
        return whole.asSlice(0, GUARD).mismatch(pattern) == -1
                && whole.asSlice(GUARD + size, GUARD).mismatch(pattern) == -1;
    }

    @Override
    public void close() {
        memory.close();
        arena.close();
    }
}
