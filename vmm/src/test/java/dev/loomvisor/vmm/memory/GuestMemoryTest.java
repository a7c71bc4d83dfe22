package dev.loomvisor.vmm.memory;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GuestMemoryTest {

    @Test
    void rangeEndingAtRegionEndTranslatesOneBytePastDoesNot() {
        try (GuestMemory m = GuestMemory.anonymous(0x1000, 0x1000)) {
            Translation t = new Translation();
            assertEquals(MemoryError.NONE, m.translate(0x1000, 0x1000, t));
            assertEquals(0, t.offset());
            assertEquals(MemoryError.NONE, m.translate(0x1fff, 1, t));
            assertEquals(0xfff, t.offset());
            assertEquals(MemoryError.CROSSES_REGION_END, m.translate(0x1fff, 2, t));
            assertEquals(MemoryError.CROSSES_REGION_END, m.translate(0x1000, 0x1001, t));
            assertEquals(MemoryError.UNMAPPED, m.translate(0x2000, 1, t));
            assertEquals(MemoryError.UNMAPPED, m.translate(0xfff, 2, t));
            assertEquals(MemoryError.NEGATIVE_LENGTH, m.translate(0x1000, -1, t));
        }
    }

    @Test
    void wrappingRangesAreOverflowNotTranslations() {
        try (GuestMemory m = GuestMemory.anonymous(0, 0x1000)) {
            Translation t = new Translation();
            assertEquals(MemoryError.ADDRESS_OVERFLOW, m.translate(-1L, 2, t));
            assertEquals(MemoryError.ADDRESS_OVERFLOW, m.translate(-0x10L, 0x10, t));
            assertEquals(MemoryError.UNMAPPED, m.translate(-0x10L, 0xf, t));
            assertEquals(MemoryError.ADDRESS_OVERFLOW, m.translate(Long.MIN_VALUE + 1, Long.MAX_VALUE, t));
            assertEquals(MemoryError.UNMAPPED, m.translate(Long.MIN_VALUE, 1, t));
        }
    }

    @Test
    void severalRegionsEachWhollyOrNothing() {
        try (GuestMemory m = GuestMemory.builder().anonymous(0x10000, 0x1000).anonymous(0, 0x1000)
                .anonymous(0x1000, 0x1000).build()) {
            assertEquals(3, m.regionCount());
            assertEquals(0, m.region(0).guestBase(), "sorted by base");
            assertEquals(1, m.regionOf(0x1000, 0x1000));
            assertEquals(-MemoryError.CROSSES_REGION_END.ordinal(), m.regionOf(0xff0, 0x20),
                    "adjacent regions are still separate mappings");
            assertEquals(MemoryError.UNMAPPED, GuestMemory.errorOf(m.regionOf(0x2000, 1)));
            assertEquals(2, m.regionOf(0x10fff, 1));
            byte[] b = {1, 2, 3};
            m.write(0x10ffd, b, 0, 3);
            byte[] r = new byte[3];
            m.read(0x10ffd, r, 0, 3);
            assertArrayEquals(b, r);
            assertThrows(IllegalArgumentException.class, () -> m.write(0x10ffe, b, 0, 3));
        }
    }

    @Test
    void overlappingRegionsRefused() {
        assertThrows(IllegalArgumentException.class,
                () -> GuestMemory.builder().anonymous(0, 0x2000).anonymous(0x1000, 0x1000).build());
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.anonymous(0, 0));
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.anonymous(Long.MAX_VALUE - 10, 0x1000));
    }

    @Test
    void fileBackedRegionIsSharedWithAnotherMapping(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("guest.mem");
        try (GuestMemory m = GuestMemory.builder().file(0x4000, 0x10000, f).build()) {
            assertEquals(GuestRegion.Backing.FILE, m.region(0).backing());
            m.write(0x4000 + 0x1234, new byte[] {42}, 0, 1);
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE);
                 Arena a = Arena.ofConfined()) {
                MemorySegment other = ch.map(FileChannel.MapMode.READ_WRITE, 0, 0x10000, a);
                assertEquals(42, other.get(ValueLayout.JAVA_BYTE, 0x1234));
                other.set(ValueLayout.JAVA_BYTE, 0x10, (byte) 7);
            }
            byte[] r = new byte[1];
            m.read(0x4010, r, 0, 1);
            assertEquals(7, r[0]);
        }
        assertEquals(0x10000, Files.size(f));
    }

    @Test
    void memfdRegionCanBeMappedAgainThroughItsFd() throws Exception {
        try (GuestMemory m = GuestMemory.builder().memfd(0, 0x10000, "guest-ram").build()) {
            GuestRegion r = m.region(0);
            assertEquals(GuestRegion.Backing.MEMFD, r.backing());
            assertTrue(r.fd() >= 0);
            m.write(0x100, new byte[] {9}, 0, 1);
            try (FileChannel ch = FileChannel.open(r.path(), StandardOpenOption.READ);
                 Arena a = Arena.ofConfined()) {
                MemorySegment other = ch.map(FileChannel.MapMode.READ_ONLY, 0, 0x10000, a);
                assertEquals(9, other.get(ValueLayout.JAVA_BYTE, 0x100));
            }
        }
    }

    /** VmRSS of this process from /proc/self/status, in bytes (-1 where there is no /proc). */
    private static long rssBytes() throws java.io.IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.exists(status)) {
            return -1;
        }
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return -1;
    }

    @Test
    void anonymousMemoryIsMappedNotTouchedAndUnmappedOnClose() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(rssBytes() > 0, "no /proc/self/status");
        long gib = 1L << 30;
        long before = rssBytes();
        GuestMemory m = GuestMemory.anonymous(0, gib);
        try {
            long mapped = rssBytes();
            // A zero-filled allocation would have touched all of it; the bound only has to tell the two apart.
            assertTrue(mapped - before < 128L << 20, "mapping 1 GiB grew RSS by " + (mapped - before) + " bytes");
            byte[] one = new byte[1];
            long step = 1L << 20;
            for (long gpa = 0; gpa < gib; gpa += step) {
                m.read(gpa, one, 0, 1);
                assertEquals(0, one[0], "untouched guest memory reads zero");
            }
            // Touch 256 MiB: those pages, and only those, become resident.
            for (long gpa = 0; gpa < gib / 4; gpa += 4096) {
                m.write(gpa, new byte[] {1}, 0, 1);
            }
            long touched = rssBytes();
            assertTrue(touched - mapped > 128L << 20, "touching 256 MiB grew RSS by only " + (touched - mapped));
        } finally {
            long beforeClose = rssBytes();
            m.close();
            long after = rssBytes();
            assertTrue(beforeClose - after > 128L << 20, "close gave back only " + (beforeClose - after) + " bytes");
        }
    }
}
