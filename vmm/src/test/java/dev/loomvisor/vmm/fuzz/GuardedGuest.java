package dev.loomvisor.vmm.fuzz;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.GuestRegion;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Guest memory of two regions with an unmapped gap between them, each region between two guard bands of
 * host memory (a pattern no guest write produces by chance in the oracle: any change is caught), plus a
 * shadow copy of each region so that an oracle can tell which guest bytes the device changed.
 *
 * <pre>
 * host:  [guard 4K][region A 64K][guard 4K]   [guard 4K][region B 16K][guard 4K]   [guard 4K][region C 2G-1][guard 4K]
 * guest:  0x100000  region A  0x110000   gap (unmapped)   0x120000 region B 0x124000 ... 2^32 region C 2^32+2^31-1
 * </pre>
 *
 * Region C is a sparse shared file mapping of the largest region size, so that chains can total 2^32 bytes
 * and more (virtio 1.2 §2.7.5.2) without committing memory; it is too big for a shadow, so only its guard bands are
 * checked.
 *
 * Reads outside a region cannot reach a guard band: the ring core reads through Agrona buffers whose capacity
 * is exactly the region, so such a read throws (an escaped exception the oracle reports). Writes are
 * checked both ways: the guard bands must keep their pattern and the regions may change only where the
 * device was allowed to write.
 */
final class GuardedGuest implements AutoCloseable {

    static final int GUARD = 4096;
    static final byte PATTERN = (byte) 0xA5;

    static final long A = 0x100000;
    static final long A_SIZE = 0x10000;
    static final long B = 0x120000;
    static final long B_SIZE = 0x4000;

    static final long C = 1L << 32;
    static final long C_SIZE = GuestRegion.MAX_SIZE;

    private final Arena arena = Arena.ofShared();
    private final Path cFile;
    private final MemorySegment wholeC;
    final MemorySegment regionC;
    private final MemorySegment wholeA = arena.allocate(A_SIZE + 2L * GUARD, 4096);
    private final MemorySegment wholeB = arena.allocate(B_SIZE + 2L * GUARD, 4096);
    private final MemorySegment pattern = arena.allocate(GUARD).fill(PATTERN);
    final MemorySegment regionA = wholeA.asSlice(GUARD, A_SIZE);
    final MemorySegment regionB = wholeB.asSlice(GUARD, B_SIZE);
    final MemorySegment shadowA = arena.allocate(A_SIZE, 16);
    final MemorySegment shadowB = arena.allocate(B_SIZE, 16);
    final GuestMemory memory;

    GuardedGuest() {
        wholeA.fill(PATTERN);
        wholeB.fill(PATTERN);
        regionA.fill((byte) 0);
        regionB.fill((byte) 0);
        try {
            cFile = Files.createTempFile("fuzz-region-c", ".mem");
            try (FileChannel ch = FileChannel.open(cFile, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                wholeC = ch.map(FileChannel.MapMode.READ_WRITE, 0, C_SIZE + 2L * GUARD, arena);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        wholeC.asSlice(0, GUARD).fill(PATTERN);
        wholeC.asSlice(GUARD + C_SIZE, GUARD).fill(PATTERN);
        regionC = wholeC.asSlice(GUARD, C_SIZE);
        memory = GuestMemory.builder().wrap(A, regionA).wrap(B, regionB).wrap(C, regionC).build();
    }

    /** True if no byte of any guard band changed. */
    boolean guardsIntact() {
        return intact(wholeA, A_SIZE) && intact(wholeB, B_SIZE) && intact(wholeC, C_SIZE);
    }

    private boolean intact(MemorySegment whole, long size) {
        return whole.asSlice(0, GUARD).mismatch(pattern) == -1
                && whole.asSlice(GUARD + size, GUARD).mismatch(pattern) == -1;
    }

    /** Makes the shadows equal to the regions: from now on every difference is a device write. */
    void snapshot() {
        shadowA.copyFrom(regionA);
        shadowB.copyFrom(regionB);
    }

    /** The live region holding {@code gpa}, or null (for the oracle's own writes, which must be inside). */
    MemorySegment regionAt(long gpa) {
        if (gpa >= A && gpa < A + A_SIZE) {
            return regionA;
        }
        if (gpa >= B && gpa < B + B_SIZE) {
            return regionB;
        }
        // The reference walk reads indirect tables in region C too (a hostile input may put one there).
        if (gpa >= C && gpa < C + C_SIZE) {
            return regionC;
        }
        return null;
    }

    MemorySegment shadowOf(MemorySegment region) {
        return region == regionA ? shadowA : shadowB;
    }

    static long baseOf(MemorySegment region, GuardedGuest g) {
        return region == g.regionA ? A : region == g.regionB ? B : C;
    }

    @Override
    public void close() {
        memory.close();
        arena.close();
        try {
            Files.deleteIfExists(cFile);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
