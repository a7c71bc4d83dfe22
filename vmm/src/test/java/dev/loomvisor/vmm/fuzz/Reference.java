package dev.loomvisor.vmm.fuzz;

import static dev.loomvisor.vmm.fuzz.SplitRingTarget.check;
import static dev.loomvisor.vmm.virtio.SplitRing.*;

import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.RingError;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A second, deliberately plain reading of the split-ring rules a device must not trust (virtio 1.2 §2.7) for the
 * differential oracle: walks a chain from the guest's memory with its own range arithmetic (no
 * {@code GuestMemory}, no fast path) and records the segments the device should have produced. The checks
 * run in the order the rules are listed, the order {@code DeviceQueue} documents.
 */
final class Reference {

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private GuardedGuest g;
    private int n;
    private boolean indirect;
    private boolean writable;
    private long[] addrs = new long[512];
    private long[] lens = new long[512];
    private boolean[] writes = new boolean[512];
    private int count;

    void reset(GuardedGuest g, int n, boolean indirect, boolean writable) {
        this.g = g;
        this.n = n;
        this.indirect = indirect;
        this.writable = writable;
    }

    /** True if [addr, addr + len) is inside one region, computed without any possible wrap. */
    static boolean inside(long addr, long len, long base, long size) {
        // addr >= base and len <= size and addr - base <= size - len, all unsigned.
        return Long.compareUnsigned(addr, base) >= 0 && Long.compareUnsigned(len, size) <= 0
                && Long.compareUnsigned(addr - base, size - len) <= 0;
    }

    /** True if addr + len exceeds 2^64 - 1... or reaches 2^64: the end address is not representable. */
    static boolean wraps(long addr, long len) {
        return len != 0 && Long.compareUnsigned(addr, -len) >= 0;
    }

    private boolean mapped(long addr, long len) {
        return inside(addr, len, GuardedGuest.A, GuardedGuest.A_SIZE) || inside(addr, len, GuardedGuest.B, GuardedGuest.B_SIZE)
                || inside(addr, len, GuardedGuest.C, GuardedGuest.C_SIZE);
    }

    /** The host segment under a mapped guest address. */
    private MemorySegment at(long addr, long len) {
        if (inside(addr, len, GuardedGuest.A, GuardedGuest.A_SIZE)) {
            return g.regionA.asSlice(addr - GuardedGuest.A, len);
        }
        if (inside(addr, len, GuardedGuest.B, GuardedGuest.B_SIZE)) {
            return g.regionB.asSlice(addr - GuardedGuest.B, len);
        }
        return g.regionC.asSlice(addr - GuardedGuest.C, len);
    }

    RingError walk(int head) {
        count = 0;
        long table = SplitRingTarget.DESC;
        int tableSize = n;
        boolean inIndirect = false;
        int visited = 0;
        long total = 0;
        int i = head;
        while (true) {
            if (++visited > tableSize) {
                return RingError.CHAIN_TOO_LONG;
            }
            MemorySegment d = at(table + (long) DESC_SIZE * i, DESC_SIZE);
            long addr = d.get(LONG, DESC_ADDR);
            long len = d.get(INT, DESC_LEN) & 0xffffffffL;
            int flags = d.get(SHORT, DESC_FLAGS) & 0xffff;
            int next = d.get(SHORT, DESC_NEXT) & 0xffff;
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (!indirect) {
                    return RingError.INDIRECT_NOT_NEGOTIATED;
                }
                if (inIndirect) {
                    return RingError.INDIRECT_NESTED;
                }
                if ((flags & DESC_F_NEXT) != 0) {
                    return RingError.INDIRECT_WITH_NEXT;
                }
                if (len == 0 || len % DESC_SIZE != 0) {
                    return RingError.INDIRECT_BAD_LENGTH;
                }
                if (len / DESC_SIZE > Math.max(n, 1024)) {
                    return RingError.INDIRECT_TOO_LARGE;
                }
                if (wraps(addr, len)) {
                    return RingError.ADDRESS_OVERFLOW;
                }
                if (!mapped(addr, len)) {
                    return RingError.INDIRECT_OUTSIDE_MEMORY;
                }
                table = addr;
                tableSize = (int) (len / DESC_SIZE);
                inIndirect = true;
                visited = 0;
                i = 0;
                continue;
            }
            if (wraps(addr, len)) {
                return RingError.ADDRESS_OVERFLOW;
            }
            if (!mapped(addr, len)) {
                return RingError.DESC_OUTSIDE_MEMORY;
            }
            total += len;
            if (total >= 1L << 32) {
                return RingError.CHAIN_TOO_BIG;
            }
            boolean w = (flags & DESC_F_WRITE) != 0;
            if (w && !writable) {
                return RingError.WRITABLE_ON_READ_ONLY_QUEUE;
            }
            if (!w && count > 0 && writes[count - 1]) {
                return RingError.READABLE_AFTER_WRITABLE;
            }
            addrs[count] = addr;
            lens[count] = len;
            writes[count] = w;
            count++;
            if ((flags & DESC_F_NEXT) == 0) {
                return RingError.NONE;
            }
            if (next >= tableSize) {
                return RingError.NEXT_OUT_OF_RANGE;
            }
            i = next;
        }
    }

    /** The device's chain must be the reference's: same segments, same directions, same totals. */
    void compare(DescriptorChain c) {
        check(c.segmentCount() == count, "device chain has " + c.segmentCount() + " segments, reference " + count);
        long readable = 0;
        long writableLen = 0;
        for (int i = 0; i < count; i++) {
            check(c.segmentAddress(i) == addrs[i] && (c.segmentLength(i) & 0xffffffffL) == lens[i]
                    && c.isWritable(i) == writes[i], "segment " + i + " differs from the reference");
            // The device's view must be the very bytes at that guest address.
            check(c.segmentLength(i) >= 0 && c.segmentOffset(i) >= 0
                    && (long) c.segmentOffset(i) + c.segmentLength(i) <= c.segmentBuffer(i).capacity(),
                    "segment " + i + " view leaves its region buffer");
            MemorySegment host = at(addrs[i], lens[i]);
            check(c.segmentBuffer(i).addressOffset() + c.segmentOffset(i) == host.address(),
                    "segment " + i + " maps to the wrong host address");
            if (writes[i]) {
                writableLen += lens[i];
            } else {
                readable += lens[i];
            }
        }
        check(c.readableLength() == readable && c.writableLength() == writableLen, "chain totals differ");
    }

    /** The bytes readReadable copied are the readable part's bytes from {@code from}. */
    void checkRead(DescriptorChain c, int from, UnsafeBuffer got, int n, byte[] tmp) {
        int done = 0;
        long skip = from;
        for (int i = 0; i < count && !writes[i] && done < n; i++) {
            if (skip >= lens[i]) {
                skip -= lens[i];
                continue;
            }
            int k = (int) Math.min(lens[i] - skip, n - done);
            MemorySegment.copy(at(addrs[i], lens[i]), ValueLayout.JAVA_BYTE, skip, tmp, 0, k);
            for (int j = 0; j < k; j++) {
                check(got.getByte(done + j) == tmp[j], "readReadable byte " + (done + j) + " differs");
            }
            done += k;
            skip = 0;
        }
        check(done == n, "reference read " + done + " bytes, device " + n);
    }
}
