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
}
