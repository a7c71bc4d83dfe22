package dev.loomvisor.bench.scenario;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongPredicate;
import org.agrona.BitUtil;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

/**
 * The local ceilings a data-path figure is read against, measured between two platform threads in the
 * same process run: Agrona's {@link OneToOneRingBuffer} carrying small frames, and a plain copy loop moving
 * large frames through a ring of slots (copy in on one thread, copy out on the other). Nothing here
 * notifies or parks: these are the best two threads can do with the same bytes.
 */
public final class Ceilings {

    /** Frames moved and the time it took. */
    public record Rate(long frames, long nanos, int frameSize) {
        public double framesPerSecond() {
            return frames * 1e9 / nanos;
        }

        public double gbitPerSecond() {
            return framesPerSecond() * frameSize * 8 / 1e9;
        }
    }

    private static final int RING_BYTES = 1 << 20;
    private static final int SLOTS = 256;

    private Ceilings() {}

    /** Agrona's one-to-one ring buffer carrying {@code frameSize}-byte messages for {@code duration}. */
    public static Rate agronaRing(int frameSize, Duration duration) throws InterruptedException {
        var ring = new OneToOneRingBuffer(new UnsafeBuffer(
                ByteBuffer.allocateDirect(RING_BYTES + RingBufferDescriptor.TRAILER_LENGTH)));
        var frame = new UnsafeBuffer(ByteBuffer.allocateDirect(frameSize));
        var sink = new UnsafeBuffer(ByteBuffer.allocateDirect(frameSize));
        var received = new AtomicLong();
        var stop = new java.util.concurrent.atomic.AtomicBoolean();
        var ready = new CountDownLatch(1);
        MessageHandler handler = (type, buffer, index, length) -> {
            sink.putBytes(0, buffer, index, length);
            received.lazySet(received.get() + 1);
        };
        Thread consumer = Thread.ofPlatform().name("loomvisor-ceiling-ring-rx").start(() -> {
            ready.countDown();
            while (!stop.get()) {
                if (ring.read(handler) == 0) {
                    Thread.onSpinWait();
                }
            }
            while (ring.read(handler) > 0) {
                // drain what the producer published before it stopped
            }
        });
        ready.await();
        long t0 = System.nanoTime();
        long sent = produceUntil(t0 + duration.toNanos(), seq -> {
            if (!ring.write(1, frame, 0, frameSize)) {
                return false;
            }
            frame.putLong(0, seq + 1);
            return true;
        });
        while (received.get() < sent) {
            Thread.onSpinWait();
        }
        long nanos = System.nanoTime() - t0;
        stop.set(true);
        consumer.join();
        return new Rate(received.get(), nanos, frameSize);
    }

    /**
     * A plain copy loop: the producer copies each frame into the next of 256 slots and publishes a
     * sequence; the consumer copies it out and publishes its own. Two copies per frame, as in the data path
     * (guest TX buffer to switch, switch to guest RX buffer).
     */
    public static Rate copyLoop(int frameSize, Duration duration) throws InterruptedException {
        int slotSize = BitUtil.align(frameSize, 64);
        var slots = new UnsafeBuffer(ByteBuffer.allocateDirect(slotSize * SLOTS));
        var frame = new UnsafeBuffer(ByteBuffer.allocateDirect(frameSize));
        var sink = new UnsafeBuffer(ByteBuffer.allocateDirect(frameSize));
        var head = new AtomicLong();
        var tail = new AtomicLong();
        var stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread consumer = Thread.ofPlatform().name("loomvisor-ceiling-copy-rx").start(() -> {
            long t = 0;
            while (true) {
                long h = head.get();
                if (t == h) {
                    if (stop.get() && head.get() == t) {
                        return;
                    }
                    Thread.onSpinWait();
                    continue;
                }
                while (t < h) {
                    sink.putBytes(0, slots, (int) (t % SLOTS) * slotSize, frameSize);
                    t++;
                }
                tail.lazySet(t);
            }
        });
        long t0 = System.nanoTime();
        long sent = produceUntil(t0 + duration.toNanos(), seq -> {
            if (seq - tail.get() >= SLOTS) {
                return false;
            }
            frame.putLong(0, seq);
            slots.putBytes((int) (seq % SLOTS) * slotSize, frame, 0, frameSize);
            head.lazySet(seq + 1);
            return true;
        });
        while (tail.get() < sent) {
            Thread.onSpinWait();
        }
        long nanos = System.nanoTime() - t0;
        stop.set(true);
        consumer.join();
        return new Rate(sent, nanos, frameSize);
    }

    /**
     * The producer side of both ceilings: offers frame after frame (sequence 0, 1, ...) until {@code end} on
     * the nanoTime clock, spinning while the consumer is full; reads the clock once per 1,024 frames so the
     * clock does not cost more than the frame. Returns the number of frames that went.
     */
    private static long produceUntil(long end, LongPredicate offer) {
        long sent = 0;
        while (true) {
            if (offer.test(sent)) {
                sent++;
                if ((sent & 1023) == 0 && System.nanoTime() >= end) {
                    return sent;
                }
            } else {
                Thread.onSpinWait();
                if (System.nanoTime() >= end) {
                    return sent;
                }
            }
        }
    }
}
