package dev.loomvisor.vmm.virtio;

import static dev.loomvisor.vmm.virtio.PackedRing.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.GuestRegion;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A packed ring laid out in guest memory for tests: the descriptor ring at the region's start, the driver and
 * device event suppression areas after it, a data area from the next 4 KiB; raw accessors write what a hostile
 * driver might.
 */
final class PackedTestRing {

    final GuestMemory memory;
    final int size;
    final long descAddr;
    final long driverAddr;
    final long deviceAddr;
    final long dataAddr;
    private final UnsafeBuffer view = new UnsafeBuffer(new byte[0]);

    PackedTestRing(GuestMemory memory, int size) {
        this.memory = memory;
        this.size = size;
        this.descAddr = memory.region(0).guestBase();
        this.driverAddr = descAddr + descRingSize(size);
        this.deviceAddr = driverAddr + EVENT_SIZE;
        this.dataAddr = (deviceAddr + EVENT_SIZE + 4095) & -4096L;
        at(descAddr, (int) (dataAddr - descAddr)).setMemory(0, (int) (dataAddr - descAddr), (byte) 0);
    }

    PackedDeviceQueue device(boolean eventIdx, boolean indirect) {
        PackedDeviceQueue q = new PackedDeviceQueue(0);
        RingError e = q.configure(memory, size, descAddr, driverAddr, deviceAddr, eventIdx, indirect);
        if (e != RingError.NONE) {
            throw new IllegalStateException("rejected: " + e);
        }
        return q;
    }

    PackedDriverQueue driver(boolean eventIdx) {
        return new PackedDriverQueue(memory, size, descAddr, driverAddr, deviceAddr, eventIdx, false);
    }

    PackedDriverQueue driver(boolean eventIdx, boolean inOrder) {
        return new PackedDriverQueue(memory, size, descAddr, driverAddr, deviceAddr, eventIdx, inOrder);
    }

    UnsafeBuffer at(long gpa, int len) {
        int r = memory.regionOf(gpa, len);
        GuestRegion region = memory.region(r);
        view.wrap(region.buffer(), (int) (gpa - region.guestBase()), len);
        return view;
    }

    /** Raw ring slot {@code i}. */
    void desc(int i, long addr, long len, int id, int flags) {
        descAt(descAddr + (long) i * DESC_SIZE, addr, len, id, flags);
    }

    void descAt(long gpa, long addr, long len, int id, int flags) {
        UnsafeBuffer b = at(gpa, DESC_SIZE);
        b.putLong(DESC_ADDR, addr);
        b.putInt(DESC_LEN, (int) len);
        b.putShort(DESC_ID, (short) id);
        b.putShort(DESC_FLAGS, (short) flags);
    }

    int flags(int i) {
        return at(descAddr + (long) i * DESC_SIZE, DESC_SIZE).getShort(DESC_FLAGS) & 0xffff;
    }

    int id(int i) {
        return at(descAddr + (long) i * DESC_SIZE, DESC_SIZE).getShort(DESC_ID) & 0xffff;
    }

    int len(int i) {
        return at(descAddr + (long) i * DESC_SIZE, DESC_SIZE).getInt(DESC_LEN);
    }

    void driverEvent(int offWrap, int flags) {
        UnsafeBuffer b = at(driverAddr, EVENT_SIZE);
        b.putShort(EVENT_OFF_WRAP, (short) offWrap);
        b.putShort(EVENT_FLAGS, (short) flags);
    }

    int deviceEventFlags() {
        return at(deviceAddr, EVENT_SIZE).getShort(EVENT_FLAGS) & 0xffff;
    }

    int deviceEventOffWrap() {
        return at(deviceAddr, EVENT_SIZE).getShort(EVENT_OFF_WRAP) & 0xffff;
    }

    void write(long gpa, byte[] bytes) {
        at(gpa, bytes.length).putBytes(0, bytes);
    }

    byte[] read(long gpa, int len) {
        byte[] out = new byte[len];
        at(gpa, len).getBytes(0, out);
        return out;
    }
}
