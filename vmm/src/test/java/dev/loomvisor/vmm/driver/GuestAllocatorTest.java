package dev.loomvisor.vmm.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loomvisor.vmm.memory.GuestMemory;
import org.junit.jupiter.api.Test;

class GuestAllocatorTest {

    @Test
    void rangesAreZeroWhetherTheRegionIsFreshOrWrittenBefore() {
        try (GuestMemory memory = GuestMemory.anonymous(0, 1 << 20)) {
            // The first allocator of a fresh mapping: zero pages, handed out without writing them.
            long a = GuestAllocator.of(memory).allocate(8192, 64);
            assertZero(memory, a, 8192);
            byte[] junk = new byte[8192];
            java.util.Arrays.fill(junk, (byte) 0x5a);
            memory.write(a, junk, 0, junk.length);
            // A second allocator over the same region hands out the written range again: it must zero it.
            long b = GuestAllocator.of(memory).allocate(8192, 64);
            assertEquals(a, b);
            assertZero(memory, b, 8192);
        }
    }

    private static void assertZero(GuestMemory memory, long gpa, int len) {
        byte[] got = new byte[len];
        memory.read(gpa, got, 0, len);
        for (int i = 0; i < len; i++) {
            assertEquals(0, got[i], "byte " + i);
        }
    }
}
