package dev.loomvisor.vhost.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class SinkBackendTest {

    @Test
    void countsArePublishedAtTheEndOfEachBatch() {
        var sink = new SinkBackend(64);
        var frame = new UnsafeBuffer(new byte[128]);
        for (int i = 0; i < 10; i++) {
            sink.transmit(frame, 0, 64);
        }
        sink.transmit(frame, 0, 100);
        assertEquals(0, sink.counters().get(SinkBackend.Counter.FRAMES), "nothing published inside a batch");
        sink.flushTransmit();
        assertEquals(11, sink.counters().get(SinkBackend.Counter.FRAMES));
        assertEquals(740, sink.counters().get(SinkBackend.Counter.BYTES));
        assertEquals(1, sink.counters().get(SinkBackend.Counter.WRONG_LENGTH));
        sink.flushTransmit();
        assertEquals(11, sink.counters().get(SinkBackend.Counter.FRAMES), "an empty batch adds nothing");
    }

    @Test
    void theChecksumCatchesAnyChangedByteAndAnySwappedWords() {
        var a = new UnsafeBuffer(new byte[1514]);
        for (int i = 0; i < a.capacity(); i++) {
            a.putByte(i, (byte) (i * 31 + 7));
        }
        for (int length : new int[] {1, 7, 8, 31, 32, 33, 64, 100, 1500, 1514}) {
            long base = Frames.checksum(a, 0, length);
            for (int i = 0; i < length; i++) {
                byte was = a.getByte(i);
                a.putByte(i, (byte) (was ^ 0x10));
                assertNotEquals(base, Frames.checksum(a, 0, length), "byte " + i + " of " + length + " changed");
                a.putByte(i, was);
            }
            for (int w = 0; w + 16 <= length; w += 8) {
                long x = a.getLong(w);
                long y = a.getLong(w + 8);
                if (x != y) {
                    a.putLong(w, y);
                    a.putLong(w + 8, x);
                    assertNotEquals(base, Frames.checksum(a, 0, length), "words at " + w + " swapped, " + length + " B");
                    a.putLong(w, x);
                    a.putLong(w + 8, y);
                }
            }
        }
    }
}
