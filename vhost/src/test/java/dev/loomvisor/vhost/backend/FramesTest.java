package dev.loomvisor.vhost.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.HashSet;
import java.util.Set;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class FramesTest {

    @Test
    void checksumIsTheSameOverAHeapBufferAndOverNativeMemoryAndChecksItsRange() {
        byte[] bytes = new byte[1514 + 5];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) (i * 13 + 1);
        }
        var native_ = new UnsafeBuffer(java.nio.ByteBuffer.allocateDirect(bytes.length));
        native_.putBytes(0, bytes);
        // ExpandableArrayBuffer is no UnsafeBuffer: it takes the buffer's own bounds-checked loads.
        var checked = new org.agrona.ExpandableArrayBuffer(bytes.length);
        checked.putBytes(0, bytes);
        var heap = new UnsafeBuffer(bytes);
        for (int off : new int[] {0, 3, 5}) {
            for (int length : new int[] {31, 32, 33, 64, 100, 1500, 1514}) {
                long expected = Frames.checksum(checked, off, length);
                assertEquals(expected, Frames.checksum(heap, off, length), "heap, offset " + off + ", length " + length);
                assertEquals(expected, Frames.checksum(native_, off, length), "native, offset " + off + ", length " + length);
            }
        }
        org.junit.jupiter.api.Assertions.assertThrows(IndexOutOfBoundsException.class,
                () -> Frames.checksum(heap, 6, 1514), "a range past the buffer's end");
    }

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
