package dev.loomvisor.vmm.fuzz;

import static dev.loomvisor.vmm.fuzz.GuardedGuest.A;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.A_SIZE;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.B;
import static dev.loomvisor.vmm.fuzz.GuardedGuest.B_SIZE;
import static dev.loomvisor.vmm.virtio.SplitRing.*;

import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.RingError;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The fuzz target over the device side of a split ring: one input decodes into a descriptor table, an avail
 * ring, used_event and flags, two indirect tables and a sequence of device calls (pop, read, write, add and
 * stage used, publish, notification calls, discard) interleaved with guest writes (a concurrent hostile
 * driver), all in a {@link GuardedGuest}. {@link #run(byte[])} throws {@link AssertionError} when an oracle
 * fails:
 *
 * <ul>
 *   <li>no exception escapes a device call (an out-of-region read throws from the region buffer's bounds
 *       check, so this also proves no read left guest memory);</li>
 *   <li>a failure is a declared {@link RingError}, reported once, and afterwards every call is a no-op that
 *       writes nothing;</li>
 *   <li>every pop matches a reference walk written straight from the rules of virtio 1.2 §2.7 (same head, same
 *       segments, or the same error), and every segment lies inside one region;</li>
 *   <li>the device changed guest bytes only in the used ring and in writable segments it popped, and no
 *       guard band byte;</li>
 *   <li>bounded work: a chain has at most 2N segments and the calls per input are capped; the time per
 *       input is measured ({@link #slowestNanos()}).</li>
 * </ul>
 *
 * The input layout is the decoder below; {@link InputBuilder} writes the same format for corpus seeds.
 */
final class SplitRingTarget implements AutoCloseable {

    static final int[] SIZES = {1, 2, 4, 8, 16, 32, 64, 256};

    // Where the decoder lays the rings out in region A (all aligned; the table fits N = 256).
    static final long DESC = A;
    static final long AVAIL = A + 0x1000;
    static final long USED = A + 0x2000;
    static final long TABLE0 = A + 0x3000;
    static final long TABLE1 = A + 0x4000;
    static final long DATA = A + 0x5000;
    static final long DATA_SIZE = A + A_SIZE - DATA;

    // cfg byte.
    static final int CFG_EVENT_IDX = 1 << 3;
    static final int CFG_INDIRECT = 1 << 4;
    static final int CFG_TX = 1 << 5;
    static final int CFG_AVAIL_AT_END = 1 << 6;

    static final int OPS = 16;
    static final int OP_PUBLISH = 6;
    static final int OP_DISABLE = 7;
    static final int OP_ENABLE = 8;
    static final int OP_NEEDS_INTERRUPT = 9;
    static final int OP_HAS_AVAIL = 10;
    static final int OP_DISCARD = 11;
    static final int OP_USE_HELD = 12;
    static final int OP_GUEST = 13;
    static final int OP_USE_ALL = 14;
    static final int OP_DEVICE_BUG = 15;

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final GuardedGuest g = new GuardedGuest();
    private final FuzzInput in = new FuzzInput();
    private final UnsafeBuffer scratch = new UnsafeBuffer(new byte[4096]);
    private final UnsafeBuffer source = new UnsafeBuffer(new byte[4096]);
    private final byte[] check = new byte[4096];
    private final long[] errors = new long[RingError.values().length];
    private final Reference ref = new Reference();
    /** Guest ranges the device may change in this input: [start, end) pairs. */
    private long[] allowed = new long[64];
    private int allowedCount;
    private int[] held = new int[1024];
    private int heldCount;
    private int discardable;
    private DeviceQueue queue;
    private DescriptorChain chain;
    private long inputs;
    private long pops;
    private long slowestNanos;
    private byte[] slowestInput;
    private int told;
    private RingError toldError;

    SplitRingTarget() {
        for (int i = 0; i < source.capacity(); i++) {
            source.putByte(i, (byte) (0x5A ^ i));
        }
    }

    long inputs() {
        return inputs;
    }

    long pops() {
        return pops;
    }

    /** Inputs that ended with the ring broken by each error (index: ordinal). */
    long[] errors() {
        return errors;
    }

    long declaredErrors() {
        long n = 0;
        for (int i = 1; i < errors.length; i++) {
            n += errors[i];
        }
        return n;
    }

    long slowestNanos() {
        return slowestNanos;
    }

    byte[] slowestInput() {
        return slowestInput;
    }

    /** Runs one input; returns the error that broke the ring, or NONE. Throws AssertionError on a fault. */
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

    private RingError execute(byte[] data) {
        in.reset(data);
        allowedCount = 0;
        heldCount = 0;
        discardable = 0;
        told = 0;
        toldError = null;

        int cfg = in.u8();
        int n = SIZES[cfg & 7];
        boolean eventIdx = (cfg & CFG_EVENT_IDX) != 0;
        boolean indirect = (cfg & CFG_INDIRECT) != 0;
        boolean tx = (cfg & CFG_TX) != 0;
        long avail = (cfg & CFG_AVAIL_AT_END) != 0 ? A + A_SIZE - availRingSize(n) : AVAIL;
        int start = in.u16();
        int usedIdx = in.u16();
        int idxMode = in.u8();
        int idxValue = in.u16();
        int availIdx = switch (idxMode & 7) {
            case 6 -> start - 1 - (idxValue & 0xff);
            case 7 -> idxValue;
            default -> start + idxValue % (n + 1);
        };
        int availFlags = in.u16();
        int usedEvent = in.u16();

        // The guest's rings: zero them, then write what the input says.
        g.regionA.asSlice(0, DATA - A).fill((byte) 0);
        if (avail != AVAIL) {
            g.regionA.asSlice(avail - A, availRingSize(n)).fill((byte) 0);
        }
        for (int i = 0; i < n; i++) {
            desc(DESC, i, n);
        }
        for (int i = 0; i < n; i++) {
            putShort(avail + AVAIL_RING + 2L * i, availEntry(n));
        }
        putShort(avail + AVAIL_FLAGS, availFlags);
        putShort(avail + AVAIL_IDX, availIdx);
        putShort(avail + usedEventOffset(n), usedEvent);
        putShort(USED + USED_IDX, usedIdx);
        int t0 = in.u8() % (n + 3);
        for (int i = 0; i < t0; i++) {
            desc(TABLE0, i, n);
        }
        int t1 = in.u8() % (n + 3);
        for (int i = 0; i < t1; i++) {
            desc(TABLE1, i, n);
        }
        g.snapshot();
        allow(USED, usedRingSize(n));

        DeviceQueue q = queue(n);
        RingError ce = q.configure(g.memory, n, DESC, avail, USED, eventIdx, indirect);
        check(ce == RingError.NONE, "well-formed ring addresses rejected: " + ce);
        q.setLastAvail(start);
        q.setDeviceWritableAllowed(!tx);
        check(q.lastUsed() == usedIdx, "used index not taken from the ring");
        DescriptorChain c = chain;
        ref.reset(g, n, indirect, !tx);

        int maxOps = 4 * n + 64;
        byte[] usedAtBreak = null;
        for (int k = 0; k < maxOps && !in.exhausted(); k++) {
            int op = in.u8() % OPS;
            switch (op) {
                case 0, 1, 2, 3, 4, 5 -> pop(q, c, n, avail);
                case OP_PUBLISH -> {
                    q.publishUsed();
                    if (!q.isBroken()) {
                        check((getShort(USED + USED_IDX)) == q.lastUsed(), "used.idx not published");
                    }
                }
                case OP_DISABLE -> q.disableNotifications();
                case OP_ENABLE -> q.enableNotifications();
                case OP_NEEDS_INTERRUPT -> q.needsInterrupt();
                case OP_HAS_AVAIL -> q.hasAvail();
                case OP_DISCARD -> {
                    if (discardable > 0) {
                        q.discard(1);
                        heldCount--;
                        discardable--;
                    }
                }
                case OP_USE_HELD -> useHeld(q, in.u8());
                case OP_GUEST -> guest(n, avail);
                case OP_USE_ALL -> {
                    while (heldCount > 0 && !q.isBroken()) {
                        useHeld(q, 0);
                    }
                    q.publishUsed();
                }
                default -> {
                    int v = in.u8();
                    if (v == 0xff) {
                        q.addUsed(n + (v & 1), 0); // a device-model bug: the used-id guard (§2.7.8) catches it
                    } else if (heldCount > 0) {
                        useHeld(q, v);
                    }
                }
            }
            if (q.isBroken() && usedAtBreak == null) {
                usedAtBreak = brokenChecks(q);
            }
        }
        if (q.isBroken() && usedAtBreak == null) {
            usedAtBreak = brokenChecks(q);
        }
        if (usedAtBreak != null) {
            // A broken ring is quiet: every call is a no-op and nothing more reaches the used ring.
            check(!q.nextAvail(c) && !q.addUsed(0, 0) && !q.enableNotifications() && !q.needsInterrupt()
                    && !q.hasAvail(), "a broken ring still acts");
            q.publishUsed();
            q.disableNotifications();
            byte[] now = g.regionA.asSlice(USED - A, usedRingSize(n)).toArray(ValueLayout.JAVA_BYTE);
            check(java.util.Arrays.equals(now, usedAtBreak), "the used ring changed after the ring broke");
            check(told == 1 && toldError == q.error(), "broken listener told " + told + " times");
        }
        verifyWrites();
        check(g.guardsIntact(), "a guard band changed: a write left guest memory");
        return q.error();
    }

    private DeviceQueue queue(int n) {
        // A fresh queue per input (a reset one would keep the error counts); its chain is reused while the
        // size allows, as a device does.
        DeviceQueue q = new DeviceQueue(0);
        q.setBrokenListener((qq, e) -> {
            told++;
            toldError = e;
        });
        queue = q;
        if (chain == null || chain.capacity() < 2 * n) {
            chain = new DescriptorChain(2 * n);
        }
        return q;
    }

    private byte[] brokenChecks(DeviceQueue q) {
        RingError e = q.error();
        check(e != RingError.NONE, "broken without an error");
        check(q.errorCount() == 1 && q.errorCount(e) == 1, "error counted " + q.errorCount() + " times");
        return g.regionA.asSlice(USED - A, usedRingSize(q.size())).toArray(ValueLayout.JAVA_BYTE);
    }

    private void pop(DeviceQueue q, DescriptorChain c, int n, long avail) {
        boolean wasBroken = q.isBroken();
        int before = q.lastAvail();
        boolean got = q.nextAvail(c);
        if (wasBroken) {
            check(!got, "a broken ring popped");
            return;
        }
        int slot = before & (n - 1);
        int head = getShort(avail + AVAIL_RING + 2L * slot);
        if (got) {
            pops++;
            check(q.lastAvail() == ((before + 1) & 0xffff), "lastAvail did not advance by one");
            check(c.head() == head, "popped head " + c.head() + " but the slot holds " + head);
            check(c.segmentCount() <= 2 * n, "chain of " + c.segmentCount() + " segments for N = " + n);
            RingError r = ref.walk(head);
            check(r == RingError.NONE, "device accepted a chain the reference rejects with " + r);
            ref.compare(c);
            useChain(q, c, n);
            return;
        }
        if (!q.isBroken()) {
            return; // nothing available
        }
        RingError e = q.error();
        int idx = getShort(avail + AVAIL_IDX);
        switch (e) {
            case AVAIL_IDX_TOO_FAR_AHEAD -> check(((idx - before) & 0xffff) > n, "avail.idx " + idx
                    + " is not more than " + n + " ahead of " + before);
            case HEAD_OUT_OF_RANGE -> check(head >= n, "head " + head + " is in range");
            default -> {
                RingError r = ref.walk(head);
                check(r == e, "device rejected head " + head + " with " + e + ", the reference says " + r);
            }
        }
    }

    private void useChain(DeviceQueue q, DescriptorChain c, int n) {
        int act = in.u8();
        int from = in.u8() & 31;
        int readLen = (act & 3) == 3 ? 4096 : (act & 3) * 40;
        int rd = c.readReadable(from, scratch, 0, readLen);
        check(rd == (int) Math.max(0, Math.min(c.readableLength() - from, readLen)), "readReadable returned " + rd);
        ref.checkRead(c, from, scratch, rd, check);
        for (int i = c.readableCount(); i < c.segmentCount(); i++) {
            allow(c.segmentAddress(i), c.segmentLength(i));
        }
        int writeLen = ((act >> 2) & 3) == 3 ? 4096 : ((act >> 2) & 3) * 64;
        int wr = (act & 0x40) != 0 ? c.zeroWritable(from, writeLen) : c.writeWritable(from, source, 0, writeLen);
        check(wr == (int) Math.max(0, Math.min(c.writableLength() - from, writeLen)), "write returned " + wr);
        if (heldCount == held.length) {
            useHeld(q, 0);
        }
        held[heldCount++] = c.head();
        discardable++;
        switch ((act >> 4) & 3) {
            case 0 -> useHeld(q, 1 | (act & 0x80));
            case 1 -> useHeld(q, 3 | (act & 0x80));
            default -> {
                // keep it: used later, or discarded
            }
        }
    }

    /** Returns a held chain used: bit 0 newest (else oldest), bit 1 stage only, bit 7 a garbage length. */
    private void useHeld(DeviceQueue q, int how) {
        if (heldCount == 0) {
            return;
        }
        int head;
        if ((how & 1) != 0) {
            head = held[--heldCount];
            discardable = 0;
        } else {
            head = held[0];
            System.arraycopy(held, 1, held, 0, --heldCount);
            discardable = Math.min(discardable, heldCount);
        }
        int len = (how & 0x80) != 0 ? how * 0x01010101 : 0;
        boolean ok = (how & 2) != 0 ? q.stageUsed(head, len) : q.addUsed(head, len);
        check(ok == !q.isBroken(), "used element refused on a healthy ring");
    }

    /** A concurrent hostile driver: writes between two device calls. */
    private void guest(int n, long avail) {
        int kind = in.u8() % 7;
        switch (kind) {
            case 0 -> guestShort(avail + AVAIL_IDX, getShort(avail + AVAIL_IDX) + in.u8() % (n + 2));
            case 1 -> guestShort(avail + AVAIL_IDX, in.u16());
            case 2 -> {
                long at = DESC + DESC_SIZE * (long) (in.u8() % n);
                desc(at, 0, n);
                sync(at, DESC_SIZE);
            }
            case 3 -> guestShort(avail + AVAIL_RING + 2L * (in.u8() % n), availEntry(n));
            case 4 -> guestShort(avail + usedEventOffset(n), in.u16());
            case 5 -> guestShort(avail + AVAIL_FLAGS, in.u16());
            default -> {
                long at = TABLE0 + DESC_SIZE * (long) (in.u8() % (n + 2));
                desc(at, 0, n);
                sync(at, DESC_SIZE);
            }
        }
    }

    private void guestShort(long gpa, int v) {
        putShort(gpa, v);
        sync(gpa, 2);
    }

    /** A guest write is not a device write: copy it into the shadow too. */
    private void sync(long gpa, long len) {
        MemorySegment r = g.regionAt(gpa);
        long off = gpa - GuardedGuest.baseOf(r, g);
        MemorySegment.copy(r, off, g.shadowOf(r), off, len);
    }

    private int availEntry(int n) {
        int e = in.u8();
        return e < 0xf0 ? e % n : in.u16();
    }

    /** Decodes one descriptor (see {@link InputBuilder#desc}) into entry {@code i} of the table at {@code table}. */
    private void desc(long table, int i, int n) {
        int mode = in.u8();
        long addr = switch (mode & 7) {
            case 0, 1, 2 -> DATA + in.u16() % DATA_SIZE;
            case 3 -> (in.u8() & 1) == 0 ? TABLE0 : TABLE1;
            case 4 -> {
                int sel = in.u8();
                int v = in.u8();
                yield switch (sel % 8) {
                    case 6 -> GuardedGuest.C + 4096L * v;
                    case 7 -> GuardedGuest.C + GuardedGuest.C_SIZE - v;
                    case 0 -> A + A_SIZE - v;
                    case 1 -> A - v;
                    case 2 -> B + B_SIZE - v;
                    case 3 -> B - v;
                    case 4 -> A + A_SIZE + 16L * v;
                    default -> -1L - v;
                };
            }
            case 5 -> B + in.u16() % B_SIZE;
            case 6 -> in.u64();
            default -> A + in.u16();
        };
        long len = switch ((mode >> 3) & 7) {
            case 0, 1, 2 -> in.u16() & 0x7ff;
            case 3 -> 0;
            case 4 -> in.u32();
            case 5 -> 0xffffffffL - in.u8();
            case 6 -> {
                int v = in.u8();
                yield 16L * ((v & 0x7f) % (n + 2)) + ((v & 0x80) != 0 ? 8 : 0);
            }
            default -> (1L << 31) - in.u8(); // with region C: chains past 2^32
        };
        int flags = switch ((mode >> 6) & 3) {
            case 0 -> in.u8() & 7;
            case 1 -> DESC_F_NEXT;
            case 2 -> (in.u8() & 1) != 0 ? DESC_F_WRITE | DESC_F_NEXT : DESC_F_WRITE;
            default -> in.u16();
        };
        int nx = in.u8();
        int next = nx < 0xf0 ? nx % (n + 1) : in.u16();
        long at = table + (long) DESC_SIZE * i;
        MemorySegment r = g.regionA;
        long off = at - A;
        r.set(LONG, off + DESC_ADDR, addr);
        r.set(INT, off + DESC_LEN, (int) len);
        r.set(SHORT, off + DESC_FLAGS, (short) flags);
        r.set(SHORT, off + DESC_NEXT, (short) next);
    }

    private void putShort(long gpa, int v) {
        g.regionA.set(SHORT, gpa - A, (short) v);
    }

    private int getShort(long gpa) {
        return g.regionA.get(SHORT, gpa - A) & 0xffff;
    }

    private void allow(long gpa, long len) {
        if (allowedCount == allowed.length) {
            allowed = java.util.Arrays.copyOf(allowed, allowed.length * 2);
        }
        allowed[allowedCount++] = gpa;
        allowed[allowedCount++] = gpa + len;
    }

    /** Every byte that differs from the shadow must lie in a range the device was allowed to write. */
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
            check(end >= 0, "the device wrote guest byte 0x" + Long.toHexString(gpa) + " outside the used ring"
                    + " and the writable buffers it popped");
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
