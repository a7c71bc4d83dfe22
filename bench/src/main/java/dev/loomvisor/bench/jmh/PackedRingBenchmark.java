package dev.loomvisor.bench.jmh;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.PackedDriverQueue;
import dev.loomvisor.vmm.virtio.PackedRing;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.SplitRing;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One frame round trip through the packed ring core against the split one, same thread, same run: the driver
 * copies the frame into its guest buffer, adds a one-descriptor chain and publishes; the device pops it, copies
 * the frame out and uses it (publishing); the driver reaps it. Rings of 256, no notifications (busy polling).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@State(Scope.Thread)
public class PackedRingBenchmark {

    static final int QUEUE = 256;
    static final int SLOT = 2048;
    static final long BASE = 0x100000;

    @Param({"64", "1500"})
    public int frameSize;

    GuestMemory memory;
    DriverQueue splitDriver;
    DeviceQueue splitDevice;
    PackedDriverQueue packedDriver;
    PackedDeviceQueue packedDevice;
    DescriptorChain splitChain;
    DescriptorChain packedChain;
    UnsafeBuffer guestData;
    long dataAddr;
    final UnsafeBuffer frame = new UnsafeBuffer(new byte[SLOT]);
    final UnsafeBuffer out = new UnsafeBuffer(new byte[SLOT]);
    final UsedElement used = new UsedElement();
    long next;

    @Setup(Level.Trial)
    public void setUp() {
        memory = GuestMemory.anonymous(BASE, 4 << 20);
        long split = BASE;
        long avail = split + SplitRing.descTableSize(QUEUE);
        long usedRing = split + 0x2000;
        long packed = BASE + 0x4000;
        long driverArea = packed + PackedRing.descRingSize(QUEUE);
        long deviceArea = driverArea + PackedRing.EVENT_SIZE;
        dataAddr = BASE + 0x10000;
        memory.region(0).buffer().setMemory(0, 0x10000, (byte) 0);
        splitDriver = new DriverQueue(memory, QUEUE, split, avail, usedRing, false);
        splitDevice = new DeviceQueue(0);
        check(splitDevice.configure(memory, QUEUE, split, avail, usedRing, false, false));
        packedDriver = new PackedDriverQueue(memory, QUEUE, packed, driverArea, deviceArea, false);
        packedDevice = new PackedDeviceQueue(1);
        check(packedDevice.configure(memory, QUEUE, packed, driverArea, deviceArea, false, false));
        splitChain = splitDevice.newChain();
        packedChain = packedDevice.newChain();
        guestData = new UnsafeBuffer(memory.region(0).buffer(), (int) (dataAddr - BASE), QUEUE * SLOT);
        for (int i = 0; i < SLOT; i++) {
            frame.putByte(i, (byte) i);
        }
    }

    private static void check(RingError e) {
        if (e != RingError.NONE) {
            throw new IllegalStateException(e.toString());
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        memory.close();
    }

    @Benchmark
    public int split() {
        int slot = (int) (next++ & (QUEUE - 1));
        guestData.putBytes(slot * SLOT, frame, 0, frameSize);
        splitDriver.add(dataAddr + (long) slot * SLOT, frameSize, false, slot);
        splitDriver.publish();
        splitDevice.nextAvail(splitChain);
        int n = splitChain.readReadable(0, out, 0, SLOT);
        splitDevice.addUsed(splitChain.head(), 0);
        splitDriver.reap(used);
        return n + used.head();
    }

    @Benchmark
    public int packed() {
        int slot = (int) (next++ & (QUEUE - 1));
        guestData.putBytes(slot * SLOT, frame, 0, frameSize);
        packedDriver.add(dataAddr + (long) slot * SLOT, frameSize, false, slot);
        packedDriver.publish();
        packedDevice.nextAvail(packedChain);
        int n = packedChain.readReadable(0, out, 0, SLOT);
        packedDevice.addUsed(packedChain.head(), 0);
        packedDriver.reap(used);
        return n + used.head();
    }
}
