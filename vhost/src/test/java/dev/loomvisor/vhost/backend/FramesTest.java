package dev.loomvisor.vhost.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.HashSet;
import java.util.Set;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class FramesTest {

    @Test
    void checksumChangesWithAnyByteAndWithTheOrderOfWords() {
        UnsafeBuffer b = new UnsafeBuffer(new byte[1514]);
        for (int i = 0; i < 1514; i++) {
            b.putByte(i, (byte) (i * 31 + 7));
        }
        for (int length : new int[] {1, 7, 8, 31, 32, 33, 64, 100, 1500, 1514}) {
            long base = Frames.checksum(b, 0, length);
            assertEquals(base, Frames.checksum(b, 0, length), "a function of the bytes");
            Set<Long> seen = new HashSet<>();
            for (int i = 0; i < length; i++) {
                byte was = b.getByte(i);
                b.putByte(i, (byte) (was ^ 1));
                long c = Frames.checksum(b, 0, length);
                assertNotEquals(base, c, "length " + length + ": byte " + i + " changed");
                seen.add(c);
                b.putByte(i, was);
            }
            assertEquals(length, seen.size(), "length " + length + ": each changed byte gives its own checksum");
            if (length >= 16) {
                long w0 = b.getLong(0);
                long w1 = b.getLong(8);
                b.putLong(0, w1);
                b.putLong(8, w0);
                assertNotEquals(base, Frames.checksum(b, 0, length), "length " + length + ": two words swapped");
                b.putLong(0, w0);
                b.putLong(8, w1);
            }
        }
    }
}
