package dev.loomvisor.vmm.fuzz;

import static dev.loomvisor.vmm.fuzz.GuardedGuest.A;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.A_SIZE;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.B;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.B_SIZE;
import static dev.loomvisor.vmm.virtio.PackedRing.*;

import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.RingError;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The fuzz target over the device side of a packed ring (virtio 1.2 §2.8). One input decodes into a ring
 * written by a mostly honest driver model (chains in consecutive slots with the right wrap counters, ids
 * not in flight) that a hostility byte perturbs field by field, and a sequence of device calls (pop, use,
 * stage, batch, publish, notifications, discard) interleaved with driver writes, all in a
 * {@link GuardedGuest}. {@link #run(byte[])} throws {@link AssertionError} when an oracle fails:
 *
 * <ul>
 *   <li>no exception escapes a device call (so no read left guest memory);</li>
 *   <li>a failure is a declared {@link RingError}, told once; afterwards every call is a no-op and the ring
 *       and the device event area do not change;</li>
 *   <li>every pop matches a reference walk written from the rules of §2.8 (same id, same segments, or the
 *       same error);</li>
 *   <li>the device wrote guest bytes only in the descriptor ring, its event area and the writable segments it
 *       popped, and no guard band byte.</li>
 * </ul>
 */
final class PackedRingTarget implements AutoCloseable {

    static final int[] SIZES = {1, 2, 3, 4, 7, 8, 16, 64};

    static final long DESC = A;
    static final long DRIVER = A + 0x1000;
    static final long DEVICE = A + 0x1004;
    static final long TABLE = A + 0x2000;
    static final long DATA = A + 0x3000;
    static final long DATA_SIZE = A + A_SIZE - DATA;

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final GuardedGuest g = new GuardedGuest();
    private final FuzzInput in = new FuzzInput();
    private final org.agrona.concurrent.UnsafeBuffer source = new org.agrona.concurrent.UnsafeBuffer(new byte[4096]);
    private final long[] errors = new long[RingError.values().length];
    private long[] allowed = new long[64];
    private int allowedCount;
    private final int[] held = new int[256];
    private int heldCount;
    private int discardable;
    private DescriptorChain chain = new DescriptorChain(2);
    private long inputs;
    private long pops;
    private long slowestNanos;
    private byte[] slowestInput;
    private int told;

    // The driver model.
    private int n;
    private int hostility;
    private int drvPos;
    private boolean drvWrap;
    private final boolean[] drvIdBusy = new boolean[256];
    private int drvOutstanding;
    private final int[] drvIdDescs = new int[256];

    // The reference's view of the device.
    private int refPos;
    private boolean refWrap;
    private final boolean[] refInFlight = new boolean[256];
    private final int[] refDescs = new int[256];
    private int refInFlightDescs;
    private boolean indirect;
    private boolean writable;
    private final long[] refSeg = new long[3 * 2 * 256];
    private int refSegCount;
    private int refId;
    private int refCount;

    long inputs() {
        return inputs;
    }

    long pops() {
        return pops;
    }

    long[] errors() {
        return errors;
    }

    long declaredErrors() {
        long s = 0;
        for (int i = 1; i < errors.length; i++) {
            s += errors[i];
        }
        return s;
    }

    long slowestNanos() {
        return slowestNanos;
    }

    byte[] slowestInput() {
        return slowestInput;
    }

    RingError run(byte[] data) {
        long t0 = System.nanoTime();
        RingError e;
        try {
            e = execute(data);
        } catch (AssertionError a) {
            throw a;
        } catch (Throwable t) {
            throw new AssertionError("escaped " + t, t);
        }
        long took = System.nanoTime() - t0;
        if (took > slowestNanos) {
            slowestNanos = took;
            slowestInput = data.clone();
        }
        inputs++;
        errors[e.ordinal()]++;
        return e;
    }

    private boolean hostile() {
        return in.u8() < hostility;
    }

    private RingError execute(byte[] data) {
        in.reset(data);
        allowedCount = 0;
        heldCount = 0;
        discardable = 0;
        told = 0;
        int cfg = in.u8();
        n = SIZES[cfg & 7];
        boolean eventIdx = (cfg & 8) != 0;
        indirect = (cfg & 16) != 0;
        writable = (cfg & 32) == 0;
        boolean inOrder = (cfg & 64) != 0;
        hostility = in.u8() >> 3;
        int base = in.u16();
        drvPos = (base & 0x7fff) % n;
        drvWrap = (base & WRAP_BIT) != 0;
        refPos = drvPos;
        refWrap = drvWrap;
        int start = drvPos | (drvWrap ? WRAP_BIT : 0);
        Arrays.fill(drvIdBusy, false);
        Arrays.fill(refInFlight, false);
        drvOutstanding = 0;
        refInFlightDescs = 0;

        g.regionA.asSlice(0, DATA - A).fill((byte) 0);
        // Slots not yet written hold used descriptors of the previous lap: not available.
        for (int i = 0; i < n; i++) {
            putShort(DESC + (long) i * DESC_SIZE + DESC_FLAGS, usedFlags(!drvWrap));
        }
        putShort(DRIVER + EVENT_OFF_WRAP, in.u16());
        putShort(DRIVER + EVENT_FLAGS, in.u8() % 4);
        int initial = in.u8() % (n + 1);
        for (int i = 0; i < initial; i++) {
            driverAdd();
        }
        g.snapshot();
        allow(DESC, descRingSize(n));
        allow(DEVICE, EVENT_SIZE);

        PackedDeviceQueue q = new PackedDeviceQueue(0);
        q.setBrokenListener((qq, e) -> told++);
        q.setLastAvail(start);
        RingError ce = q.configure(g.memory, n, DESC, DRIVER, DEVICE, eventIdx, indirect);
        check(ce == RingError.NONE, "well-formed ring rejected: " + ce);
        q.setDeviceWritableAllowed(writable);
        q.setInOrder(inOrder);
        check(q.lastAvail() == start, "base not restored");
        if (chain.capacity() < 2 * n) {
            chain = q.newChain();
        }
        DescriptorChain c = chain;

        int maxOps = 4 * n + 64;
        byte[] ringAtBreak = null;
        for (int k = 0; k < maxOps && !in.exhausted(); k++) {
            int op = in.u8() % 14;
            switch (op) {
                case 0, 1, 2, 3 -> pop(q, c);
                case 4 -> useHeld(q, in.u8());
                case 5 -> q.publishUsed();
                case 6 -> q.disableNotifications();
                case 7 -> q.enableNotifications();
                case 8 -> q.needsInterrupt();
                case 9 -> q.hasAvail();
                case 10 -> {
                    if (discardable > 0) {
                        q.discard(1);
                        int id = held[--heldCount];
                        discardable--;
                        refInFlight[id] = false;
                        refInFlightDescs -= refDescs[id];
                        rewindRef(refDescs[id]);
                    }
                }
                case 11 -> {
                    int m = in.u8() % 6;
                    for (int i = 0; i < m; i++) {
                        driverAdd();
                    }
                }
                case 12 -> useBatch(q);
                default -> {
                    int v = in.u8();
                    if (v == 0xff) {
                        q.addUsed(n + (in.u8() & 1), 0); // a device-model bug, caught by the used-id guard
                    } else if (v == 0xfe) {
                        int id = in.u8() % n;
                        if (!refInFlight[id]) {
                            q.addUsed(id, 0);
                            check(q.error() == RingError.PACKED_USED_ID_NOT_IN_FLIGHT || q.isBroken(),
                                    "a used id not in flight was accepted");
                        }
                    } else {
                        hostileWrite();
                    }
                }
            }
            if (q.isBroken() && ringAtBreak == null) {
                ringAtBreak = brokenState(q);
                // From here the device may write nothing: check what it wrote so far, then allow no more.
                verifyWrites();
                g.snapshot();
                allowedCount = 0;
            }
        }
        if (ringAtBreak != null) {
            check(!q.nextAvail(c) && !q.addUsed(0, 0) && !q.enableNotifications() && !q.needsInterrupt()
                    && !q.hasAvail(), "a broken ring still acts");
            q.publishUsed();
            q.disableNotifications();
            check(told == 1, "broken listener told " + told + " times");
            check(q.errorCount() == 1, "error counted " + q.errorCount() + " times");
        }
        verifyWrites();
        check(g.guardsIntact(), "a guard band changed: a write left guest memory");
        return q.error();
    }

    /** The ring and device area at the break; the driver may go on writing the ring, the device may not. */
    private byte[] brokenState(PackedDeviceQueue q) {
        byte[] ring = g.regionA.asSlice(0, descRingSize(n)).toArray(ValueLayout.JAVA_BYTE);
        byte[] dev = g.regionA.asSlice(DEVICE - A, EVENT_SIZE).toArray(ValueLayout.JAVA_BYTE);
        byte[] out = Arrays.copyOf(ring, ring.length + dev.length);
        System.arraycopy(dev, 0, out, ring.length, dev.length);
        return out;
    }

    private void rewindRef(int descs) {
        for (int i = 0; i < descs; i++) {
            if (refPos == 0) {
                refPos = n - 1;
                refWrap = !refWrap;
            } else {
                refPos--;
            }
        }
    }

    /** The honest driver adds one chain (if it has room), perturbed by the hostility byte. */
    private void driverAdd() {
        int kind = in.u8();
        int len = indirect && (kind & 3) == 0 ? 1 : 1 + (kind >> 2) % 3;
        if (drvOutstanding + len > n && !hostile()) {
            return;
        }
        int id = -1;
        for (int i = 0; i < n; i++) {
            int cand = (in.u8() + i) % n;
            if (!drvIdBusy[cand]) {
                id = cand;
                break;
            }
        }
        if (id < 0) {
            return;
        }
        if (hostile()) {
            id = in.u8() < 128 ? n + in.u8() : in.u8() % n;
        } else {
            drvIdBusy[id] = true;
            drvIdDescs[id] = len;
        }
        drvOutstanding += len;
        int readable = writable ? in.u8() % (len + 1) : len;
        int firstAt = -1;
        int firstFlags = 0;
        for (int k = 0; k < len; k++) {
            long at = DESC + (long) drvPos * DESC_SIZE;
            int flags = (k + 1 < len ? DESC_F_NEXT : 0) | (k >= readable ? DESC_F_WRITE : 0) | availFlags(drvWrap);
            long addr = DATA + in.u16() % (DATA_SIZE - 2048);
            long l = in.u16() & 0x7ff;
            if (indirect && (kind & 3) == 0) {
                int entries = 1 + in.u8() % Math.min(n + 1, 16);
                writeTable(entries);
                addr = TABLE;
                l = 16L * entries;
                flags = DESC_F_INDIRECT | availFlags(drvWrap);
            }
            if (hostile()) {
                switch (in.u8() % 10) {
                    case 0 -> addr = in.u64();
                    case 1 -> addr = (in.u8() & 1) == 0 ? A + A_SIZE - in.u8() : B + B_SIZE - in.u8();
                    case 2 -> l = (1L << 31) + in.u16();
                    case 3 -> flags ^= 1 << (in.u8() % 16);
                    case 4 -> flags = in.u16();
                    case 5 -> {
                        addr = GuardedGuest.C;
                        l = (1L << 31) - in.u8(); // three of them pass 2^32
                    }
                    case 8 -> {
                        addr = -1L - in.u8();
                        l = 0x1000;
                    }
                    case 9 -> l = 0xffff_ffffL - in.u8();
                    case 6 -> l = 16L * (in.u8() % (n + 2)) + (in.u8() & 8);
                    default -> flags = (flags & ~(DESC_F_AVAIL | DESC_F_USED)) | (in.u8() & 1) * DESC_F_AVAIL
                            | (in.u8() & 1) * DESC_F_USED;
                }
            }
            g.regionA.set(LONG, at - A + DESC_ADDR, addr);
            g.regionA.set(INT, at - A + DESC_LEN, (int) l);
            g.regionA.set(SHORT, at - A + DESC_ID, (short) id);
            if (k == 0) {
                firstAt = (int) (at - A);
                firstFlags = flags;
            } else {
                g.regionA.set(SHORT, at - A + DESC_FLAGS, (short) flags);
            }
            if (++drvPos == n) {
                drvPos = 0;
                drvWrap = !drvWrap;
            }
            if (indirect && (kind & 3) == 0) {
                break;
            }
        }
        g.regionA.set(SHORT, firstAt + DESC_FLAGS, (short) firstFlags);
        sync(A, descRingSize(n));
    }

    private void writeTable(int entries) {
        int readable = writable ? in.u8() % (entries + 1) : entries;
        for (int i = 0; i < entries; i++) {
            long at = TABLE - A + 16L * i;
            long addr = DATA + in.u16() % (DATA_SIZE - 2048);
            int flags = i >= readable ? DESC_F_WRITE : 0;
            if (hostile()) {
                flags = in.u16();
                addr = in.u8() < 128 ? in.u64() : addr;
            }
            g.regionA.set(LONG, at + DESC_ADDR, addr);
            g.regionA.set(INT, at + DESC_LEN, in.u16() & 0x7ff);
            g.regionA.set(SHORT, at + DESC_ID, (short) in.u8());
            g.regionA.set(SHORT, at + DESC_FLAGS, (short) flags);
        }
        sync(TABLE, 16L * entries);
    }

    private void hostileWrite() {
        switch (in.u8() % 4) {
            case 0 -> {
                long at = DESC + (long) (in.u8() % n) * DESC_SIZE;
                g.regionA.set(SHORT, at - A + DESC_FLAGS, (short) in.u16());
                sync(at + DESC_FLAGS, 2);
            }
            case 1 -> {
                long at = DESC + (long) (in.u8() % n) * DESC_SIZE;
                g.regionA.set(SHORT, at - A + DESC_ID, (short) in.u16());
                sync(at + DESC_ID, 2);
            }
            case 2 -> {
                putShort(DRIVER + EVENT_OFF_WRAP, in.u16());
                putShort(DRIVER + EVENT_FLAGS, in.u8() % 4);
                sync(DRIVER, EVENT_SIZE);
            }
            default -> {
                long at = TABLE + 16L * (in.u8() % 17);
                g.regionA.set(SHORT, at - A + DESC_FLAGS, (short) in.u16());
                sync(at + DESC_FLAGS, 2);
            }
        }
    }

    private void pop(PackedDeviceQueue q, DescriptorChain c) {
        boolean was = q.isBroken();
        RingError expected = reference();
        boolean got = q.nextAvail(c);
        if (was) {
            check(!got, "a broken ring popped");
            return;
        }
        if (got) {
            pops++;
            check(expected == RingError.NONE, "device popped a chain the reference rejects with " + expected);
            check(refId >= 0 && c.head() == refId, "popped id " + c.head() + ", the reference says " + refId);
            check(c.segmentCount() == refSegCount, "segments " + c.segmentCount() + " vs " + refSegCount);
            for (int i = 0; i < refSegCount; i++) {
                check(c.segmentAddress(i) == refSeg[3 * i] && (c.segmentLength(i) & 0xffffffffL) == refSeg[3 * i + 1]
                        && c.isWritable(i) == (refSeg[3 * i + 2] != 0), "segment " + i + " differs");
            }
            refInFlight[refId] = true;
            refDescs[refId] = refCount;
            refInFlightDescs += refCount;
            for (int i = 0; i < refCount; i++) {
                if (++refPos == n) {
                    refPos = 0;
                    refWrap = !refWrap;
                }
            }
            check(q.lastAvail() == (refPos | (refWrap ? WRAP_BIT : 0)), "lastAvail differs from the reference");
            for (int i = c.readableCount(); i < c.segmentCount(); i++) {
                allow(c.segmentAddress(i), c.segmentLength(i));
            }
            c.writeWritable(0, source, 0, in.u8() < 128 ? 64 : 4096);
            held[heldCount++] = c.head();
            discardable++;
            if ((in.u8() & 1) == 0) {
                useHeld(q, in.u8());
            }
            return;
        }
        if (q.isBroken()) {
            check(q.error() == expected, "device broke with " + q.error() + ", the reference says " + expected);
        } else {
            check(expected == null, "device saw nothing, the reference says " + expected);
        }
    }

    /** The reference walk (virtio 1.2 §2.8.1, §2.8.6, §2.8.7): null when nothing is available. */
    private RingError reference() {
        refSegCount = 0;
        refId = -1;
        int pos = refPos;
        boolean wrap = refWrap;
        int count = 0;
        boolean seenW = false;
        long total = 0;
        while (true) {
            long at = DESC - A + (long) pos * DESC_SIZE;
            int flags = g.regionA.get(SHORT, at + DESC_FLAGS) & 0xffff;
            boolean av = (flags & DESC_F_AVAIL) != 0;
            boolean us = (flags & DESC_F_USED) != 0;
            if (!(av == wrap && us != wrap)) {
                if (count == 0) {
                    return av == wrap && us == wrap ? RingError.PACKED_FLAGS_INVALID : null;
                }
                return RingError.PACKED_CHAIN_NOT_AVAIL;
            }
            count++;
            long addr = g.regionA.get(LONG, at + DESC_ADDR);
            long len = g.regionA.get(INT, at + DESC_LEN) & 0xffffffffL;
            int id = g.regionA.get(SHORT, at + DESC_ID) & 0xffff;
            if (++pos == n) {
                pos = 0;
                wrap = !wrap;
            }
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (!indirect) {
                    return RingError.INDIRECT_NOT_NEGOTIATED;
                }
                if ((flags & DESC_F_NEXT) != 0) {
                    return RingError.INDIRECT_WITH_NEXT;
                }
                if (count > 1) {
                    return RingError.PACKED_INDIRECT_IN_CHAIN;
                }
                if (len == 0 || len % 16 != 0) {
                    return RingError.INDIRECT_BAD_LENGTH;
                }
                if (len / 16 > Math.max(n, 1024)) {
                    return RingError.INDIRECT_TOO_LARGE;
                }
                RingError r = inside(addr, len, RingError.INDIRECT_OUTSIDE_MEMORY);
                if (r != RingError.NONE) {
                    return r;
                }
                MemorySegment region = g.regionAt(addr);
                long base = GuardedGuest.baseOf(region, g);
                for (int i = 0; i < len / 16; i++) {
                    long e = addr - base + 16L * i;
                    long a = region.get(LONG, e + DESC_ADDR);
                    long l = region.get(INT, e + DESC_LEN) & 0xffffffffL;
                    boolean w = (region.get(SHORT, e + DESC_FLAGS) & DESC_F_WRITE) != 0;
                    RingError s = segment(a, l, w, seenW, total);
                    if (s != RingError.NONE) {
                        return s;
                    }
                    seenW |= w;
                    total += l;
                }
                refId = id;
                break;
            }
            boolean w = (flags & DESC_F_WRITE) != 0;
            RingError s = segment(addr, len, w, seenW, total);
            if (s != RingError.NONE) {
                return s;
            }
            seenW |= w;
            total += len;
            if ((flags & DESC_F_NEXT) == 0) {
                refId = id;
                break;
            }
        }
        if (refId >= n) {
            return RingError.PACKED_ID_OUT_OF_RANGE;
        }
        if (refInFlight[refId]) {
            return RingError.PACKED_ID_IN_USE;
        }
        if (refInFlightDescs + count > n) {
            return RingError.PACKED_RING_OVERRUN;
        }
        refCount = count;
        return RingError.NONE;
    }

    private RingError segment(long addr, long len, boolean w, boolean seenW, long total) {
        RingError r = inside(addr, len, RingError.DESC_OUTSIDE_MEMORY);
        if (r != RingError.NONE) {
            return r;
        }
        if (total + len >= 1L << 32) {
            return RingError.CHAIN_TOO_BIG;
        }
        if (w && !writable) {
            return RingError.WRITABLE_ON_READ_ONLY_QUEUE;
        }
        if (!w && seenW) {
            return RingError.READABLE_AFTER_WRITABLE;
        }
        refSeg[3 * refSegCount] = addr;
        refSeg[3 * refSegCount + 1] = len;
        refSeg[3 * refSegCount + 2] = w ? 1 : 0;
        refSegCount++;
        return RingError.NONE;
    }

    /** Inside one of the three regions, by plain comparison (not the translation under test). */
    private static RingError inside(long addr, long len, RingError outside) {
        if (Long.compareUnsigned(addr + len, addr) < 0) {
            return RingError.ADDRESS_OVERFLOW;
        }
        long end = addr + len;
        boolean ok = in(addr, end, A, A_SIZE) || in(addr, end, B, B_SIZE) || in(addr, end, GuardedGuest.C, GuardedGuest.C_SIZE);
        return ok ? RingError.NONE : outside;
    }

    private static boolean in(long addr, long end, long base, long size) {
        return Long.compareUnsigned(addr, base) >= 0 && Long.compareUnsigned(end, base + size) <= 0
                && Long.compareUnsigned(addr, end) <= 0;
    }

    private void useHeld(PackedDeviceQueue q, int how) {
        if (heldCount == 0) {
            return;
        }
        int id;
        if ((how & 1) != 0) {
            id = held[--heldCount];
            discardable = 0;
        } else {
            id = held[0];
            System.arraycopy(held, 1, held, 0, --heldCount);
            discardable = Math.min(discardable, heldCount);
        }
        boolean ok = (how & 2) != 0 ? q.stageUsed(id, how) : q.addUsed(id, how & 0x80);
        check(ok == !q.isBroken(), "used descriptor refused on a healthy ring");
        released(id);
    }

    private void useBatch(PackedDeviceQueue q) {
        int m = Math.min(heldCount, in.u8() % 5);
        if (m == 0) {
            return;
        }
        int[] ids = Arrays.copyOf(held, m);
        int[] lens = new int[m];
        lens[m - 1] = in.u8();
        System.arraycopy(held, m, held, 0, heldCount - m);
        heldCount -= m;
        discardable = Math.min(discardable, heldCount);
        boolean ok = q.addUsedN(ids, lens, m);
        check(ok == !q.isBroken(), "batch refused on a healthy ring");
        for (int id : ids) {
            released(id);
        }
    }

    private void released(int id) {
        refInFlight[id] = false;
        refInFlightDescs -= refDescs[id];
        if (drvIdBusy[id]) {
            drvIdBusy[id] = false;
            drvOutstanding -= drvIdDescs[id];
        }
    }

    private void putShort(long gpa, int v) {
        g.regionA.set(SHORT, gpa - A, (short) v);
    }

    private void sync(long gpa, long len) {
        MemorySegment r = g.regionAt(gpa);
        long off = gpa - GuardedGuest.baseOf(r, g);
        MemorySegment.copy(r, off, g.shadowOf(r), off, len);
    }

    private void allow(long gpa, long len) {
        if (allowedCount == allowed.length) {
            allowed = Arrays.copyOf(allowed, allowed.length * 2);
        }
        allowed[allowedCount++] = gpa;
        allowed[allowedCount++] = gpa + len;
    }

    private void verifyWrites() {
        verifyRegion(g.regionA, g.shadowA, A);
        verifyRegion(g.regionB, g.shadowB, B);
    }

    private void verifyRegion(MemorySegment live, MemorySegment shadow, long base) {
        long size = live.byteSize();
        long from = 0;
        while (from < size) {
            long m = live.asSlice(from).mismatch(shadow.asSlice(from));
            if (m < 0) {
                return;
            }
            long gpa = base + from + m;
            long end = -1;
            for (int i = 0; i < allowedCount; i += 2) {
                if (gpa >= allowed[i] && gpa < allowed[i + 1]) {
                    end = Math.max(end, allowed[i + 1]);
                }
            }
            check(end >= 0, "the device wrote guest byte 0x" + Long.toHexString(gpa)
                    + " outside the ring, its event area and the writable buffers it popped");
            from = end - base;
        }
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    @Override
    public void close() {
        g.close();
    }
}
