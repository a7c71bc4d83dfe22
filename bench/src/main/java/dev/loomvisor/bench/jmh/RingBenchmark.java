package dev.loomvisor.bench.jmh;

import dev.loomvisor.vmm.driver.GuestAllocator;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.SplitRing;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Control;

/**
 * One frame through the split ring core against the same bytes through Agrona's {@link OneToOneRingBuffer}.
 *
 * <p>virtq: the driver copies the frame into its guest buffer, adds a one-descriptor chain and publishes
 * avail.idx; the device pops the chain and copies the frame out; it returns the chain with addUsed
 * (publishing used.idx); the driver reaps it. Agrona: write the frame into the ring, read it out with a
 * handler that copies it. Both copy the frame in and out once, publish per frame and poll (no kicks or
 * interrupts: busy polling on both, as a vhost worker in busy-poll mode would).
 *
 * <p>Same thread: one op is one full round trip. Two threads ({@code @Group}; the driver reaps completions when half
 * the ring is in flight, the device publishes used.idx once per drained batch of at most 32 frames, as
 * vhost-net does): the producer (driver, or
 * ring writer) and the consumer (device, or ring reader) each count one op per frame; the consumer's score
 * is the frame rate.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class RingBenchmark {

    static final int QUEUE = 256;
    static final int SLOT = 2048;

    /** Rings and buffers shared by whoever runs the benchmark (one thread, or a producer/consumer group). */
    public abstract static class Rings {
        int size;
        GuestMemory memory;
        DriverQueue driver;
        DeviceQueue device;
        long dataAddr;
        UnsafeBuffer guestData;
        OneToOneRingBuffer agrona;

        void init() {
            memory = GuestMemory.anonymous(0x100000, 2 << 20);
            // The rings as a guest driver allocates them (virtio 1.2 §2.7: descriptor table 16-byte, avail ring
            // 2-byte, used ring 4-byte aligned), the used ring on its own page as in the legacy layout (§2.7.2)
            // so that the driver's and the device's writes share no cache line; then one SLOT per descriptor.
            GuestAllocator alloc = GuestAllocator.of(memory);
            long desc = alloc.allocate(SplitRing.descTableSize(QUEUE), 16);
            long avail = alloc.allocate(SplitRing.availRingSize(QUEUE), 2);
            long usedRing = alloc.allocate(SplitRing.usedRingSize(QUEUE), 4096);
            dataAddr = alloc.allocate((long) QUEUE * SLOT, 4096);
            driver = new DriverQueue(memory, QUEUE, desc, avail, usedRing, false);
            device = new DeviceQueue(0);
            RingError e = device.configure(memory, QUEUE, desc, avail, usedRing, false, false);
            if (e != RingError.NONE) {
                throw new IllegalStateException("benchmark rings rejected: " + e);
            }
            guestData = new UnsafeBuffer(memory.region(0).buffer(),
                    (int) (dataAddr - memory.region(0).guestBase()), QUEUE * SLOT);
            // Room for as many frames as the virtqueue holds, each with Agrona's 8-byte header, aligned.
            int capacity = Integer.highestOneBit(QUEUE * (SLOT + 64) - 1) << 1;
            agrona = new OneToOneRingBuffer(new UnsafeBuffer(
                    ByteBuffer.allocateDirect(capacity + RingBufferDescriptor.TRAILER_LENGTH)));
        }

        void close() {
            memory.close();
        }
    }

    @State(Scope.Thread)
    public static class SameThread extends Rings {
        @Param({"64", "1500"})
        public int frameSize;

        final UnsafeBuffer frame = new UnsafeBuffer(new byte[SLOT]);
        final UnsafeBuffer out = new UnsafeBuffer(new byte[SLOT]);
        final UsedElement used = new UsedElement();
        DescriptorChain chain;
        MessageHandler copyOut;
        long next;

        @Setup(Level.Trial)
        public void setUp() {
            size = frameSize;
            init();
            chain = device.newChain();
            copyOut = (type, buffer, index, length) -> buffer.getBytes(index, out, 0, length);
            for (int i = 0; i < SLOT; i++) {
                frame.putByte(i, (byte) i);
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            close();
        }
    }

    @State(Scope.Group)
    public static class Shared extends Rings {
        @Param({"64", "1500"})
        public int frameSize;

        @Setup(Level.Trial)
        public void setUp() {
            size = frameSize;
            init();
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            close();
        }
    }

    /** Per-thread scratch for the two-thread groups. */
    @State(Scope.Thread)
    public static class Local {
        final UnsafeBuffer frame = new UnsafeBuffer(new byte[SLOT]);
        final UnsafeBuffer out = new UnsafeBuffer(new byte[SLOT]);
        final UsedElement used = new UsedElement();
        DescriptorChain chain;
        MessageHandler copyOut;
        long next;
        int unpublished;

        @Setup(Level.Trial)
        public void setUp() {
            copyOut = (type, buffer, index, length) -> buffer.getBytes(index, out, 0, length);
            for (int i = 0; i < SLOT; i++) {
                frame.putByte(i, (byte) i);
            }
        }
    }

    // ---- same thread: one op = one round trip ----

    @Benchmark
    public int virtqRoundTrip(SameThread s) {
        int slot = (int) (s.next++ & (QUEUE - 1));
        s.guestData.putBytes(slot * SLOT, s.frame, 0, s.size);
        s.driver.add(s.dataAddr + (long) slot * SLOT, s.size, false, slot);
        s.driver.publish();
        s.device.nextAvail(s.chain);
        int n = s.chain.readReadable(0, s.out, 0, s.size);
        s.device.addUsed(s.chain.head(), 0);
        s.driver.reap(s.used);
        return n + s.out.getByte(0);
    }

    @Benchmark
    public int agronaRoundTrip(SameThread s) {
        s.agrona.write(1, s.frame, 0, s.size);
        return s.agrona.read(s.copyOut, 1) + s.out.getByte(0);
    }

    // ---- two threads: producer and consumer ----

    @Benchmark
    @Group("virtq2t")
    @GroupThreads(1)
    public long virtqDriver(Shared s, Local l, Control ctl) {
        DriverQueue d = s.driver;
        while (!ctl.stopMeasurement) {
            if (d.freeCount() < QUEUE / 2) {
                // Reap in batches, when half the ring is in flight, as a driver cleaning its TX ring does;
                // buffers are reused in order (the device completes in order).
                while (d.reap(l.used)) {
                    // each reaped chain frees its descriptor
                }
            }
            if (d.freeCount() > 0) {
                int slot = (int) (l.next++ & (QUEUE - 1));
                s.guestData.putBytes(slot * SLOT, l.frame, 0, s.size);
                d.add(s.dataAddr + (long) slot * SLOT, s.size, false, slot);
                d.publish();
                return l.next;
            }
            Thread.onSpinWait();
        }
        return l.next;
    }

    @Benchmark
    @Group("virtq2t")
    @GroupThreads(1)
    public int virtqDevice(Shared s, Local l, Control ctl) {
        if (l.chain == null) {
            l.chain = s.device.newChain();
        }
        DeviceQueue q = s.device;
        while (!ctl.stopMeasurement) {
            if (q.nextAvail(l.chain)) {
                int n = l.chain.readReadable(0, l.out, 0, s.size);
                q.stageUsed(l.chain.head(), 0);
                // Publish used.idx once per drained batch (or every 32), as a vhost worker does.
                if (++l.unpublished == 32 || !q.hasAvail()) {
                    q.publishUsed();
                    l.unpublished = 0;
                }
                return n + l.out.getByte(0);
            }
            if (l.unpublished > 0) {
                q.publishUsed();
                l.unpublished = 0;
            }
            Thread.onSpinWait();
        }
        return 0;
    }

    @Benchmark
    @Group("agrona2t")
    @GroupThreads(1)
    public boolean agronaWriter(Shared s, Local l, Control ctl) {
        while (!ctl.stopMeasurement) {
            if (s.agrona.write(1, l.frame, 0, s.size)) {
                return true;
            }
            Thread.onSpinWait();
        }
        return false;
    }

    @Benchmark
    @Group("agrona2t")
    @GroupThreads(1)
    public int agronaReader(Shared s, Local l, Control ctl) {
        while (!ctl.stopMeasurement) {
            if (s.agrona.read(l.copyOut, 1) > 0) {
                return l.out.getByte(0);
            }
            Thread.onSpinWait();
        }
        return 0;
    }
}
