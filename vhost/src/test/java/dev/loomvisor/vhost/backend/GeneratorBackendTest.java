package dev.loomvisor.vhost.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class GeneratorBackendTest {

    @Test
    void fillWritesTheSequenceThenByteIAsSeqPlusIModulo256() {
        UnsafeBuffer b = new UnsafeBuffer(new byte[1600]);
        long[] seqs = {0, 1, 7, 200, 249, 255, 256, 0x1234_5678_9abcL, -1};
        for (int length : new int[] {22, 23, 29, 30, 31, 64, 100, 1499, 1500, 1514}) {
            for (long seq : seqs) {
                b.setMemory(0, 1600, (byte) 0x5a);
                GeneratorBackend.fill(b, length, seq);
                assertEquals(seq, b.getLong(GeneratorBackend.SEQUENCE_OFFSET, ByteOrder.LITTLE_ENDIAN));
                for (int i = GeneratorBackend.SEQUENCE_OFFSET + 8; i < length; i++) {
                    assertEquals((byte) (seq + i), b.getByte(i), "length " + length + " seq " + seq + " byte " + i);
                }
                assertEquals((byte) 0x5a, b.getByte(length), "nothing past the frame");
            }
        }
    }

    @Test
        void everyFrameCarriesItsSequenceAndTheBytePatternOfIt() {
        var frame = new UnsafeBuffer(new byte[1514]);
        for (int length : new int[] {22, 23, 64, 300, 1500, 1514}) {
            for (long seq : new long[] {0, 1, 233, 255, 256, 1_000_003, Long.MAX_VALUE - 1}) {
                GeneratorBackend.fill(frame, length, seq);
                assertEquals(seq, frame.getLong(GeneratorBackend.SEQUENCE_OFFSET, ByteOrder.LITTLE_ENDIAN));
                for (int i = GeneratorBackend.SEQUENCE_OFFSET + 8; i < length; i++) {
                    assertEquals((byte) (seq + i), frame.getByte(i), "byte " + i + " of frame " + seq + ", " + length + " B");
                }
            }
        }
    }

    @Test
    void aBatchHandsOverConsecutiveFramesUpToTheLimit() {
        var gen = new GeneratorBackend(2, 1, 1500, 100);
        long[] expected = {0};
        int n = gen.receive((b, o, l) -> {
            assertEquals(1500, l);
            assertEquals(expected[0], b.getLong(o + GeneratorBackend.SEQUENCE_OFFSET, ByteOrder.LITTLE_ENDIAN));
            assertEquals((byte) (expected[0] + 700), b.getByte(o + 700));
            expected[0]++;
            return true;
        }, 64);
        assertEquals(64, n);
        assertEquals(36, gen.receive((b, o, l) -> true, 64), "the rest of the 100");
        assertEquals(false, gen.rxPending());
    }
}
