package dev.loomvisor.vmm.virtio;

import static dev.loomvisor.vmm.virtio.SplitRing.*;
import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.GuestRegion;
import dev.loomvisor.vmm.testing.GuardedMemory;
import dev.loomvisor.vmm.testing.TestRings;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * 100,000 random descriptor tables, avail rings and indirect tables, each followed by a random sequence of
 * device-side calls. Whatever the guest wrote: no exception escapes, a failure is a declared
 * {@link RingError}, every popped segment lies inside guest memory, no byte outside the region changes
 * (guard bands), and every call returns (the class has a timeout; chains are bounded by 2N segments).
 */
class RingPropertyTest {

    static final long BASE = 0x100000;
    static final long MEM = 0x10000;
    // 20k in CI (the coverage-guided fuzz target in vmm.fuzz covers the same ground); 1M under scripts/soak.
    static final int TABLES = Soak.size(20_000, 1_000_000);
    static final int[] SIZES = {1, 2, 4, 8, 16, 64, 256};

    @Test
    // A hang guard, not a timing target: a loaded 2-core CI machine once needed over 60 s for 100k tables.
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void randomTablesAndCallsNeverEscapeTheirRules() {
        Random rnd = new Random(0x5eed_1234L);
        long popped = 0;
        long broken = 0;
        long[] byError = new long[RingError.values().length];
        try (GuardedMemory g = new GuardedMemory(BASE, MEM)) {
            GuestMemory m = g.memory();
            GuestRegion region = m.region(0);
            UnsafeBuffer raw = region.buffer();
            byte[] noise = new byte[(int) MEM];
            for (int iter = 0; iter < TABLES; iter++) {
                int n = SIZES[rnd.nextInt(SIZES.length)];
                // Half the tables are mostly well-formed with rare faults, half are noise-heavy.
                wild = rnd.nextBoolean();
                TestRings rings = new TestRings(m, n);
                // Fill the whole ring area (and some data) with noise, then bias some fields to the edges.
                int ringBytes = (int) (rings.dataAddr() - BASE);
                rnd.nextBytes(noise);
                raw.putBytes(0, noise, 0, ringBytes + 256);
                for (int i = 0; i < n; i++) {
                    rings.desc(i, addr(rnd, rings), len(rnd), flags(rnd), next(rnd, n));
                }
                long table = rings.dataAddr() + 16 * rnd.nextInt(64);
                int tableEntries = 1 + rnd.nextInt(n + 2);
                for (int i = 0; i < tableEntries && table + 16L * (i + 1) <= BASE + MEM; i++) {
                    int f = flags(rnd) & ~(rnd.nextInt(4) == 0 ? 0 : DESC_F_INDIRECT);
                    rings.indirectDesc(table, i, addr(rnd, rings), len(rnd), f, next(rnd, tableEntries));
                }
                if (rnd.nextBoolean() && n > 0) {
                    rings.desc(rnd.nextInt(n), table, 16L * tableEntries + (rnd.nextInt(8) == 0 ? 8 : 0),
                            DESC_F_INDIRECT | (rnd.nextInt(4) == 0 ? DESC_F_NEXT : 0), next(rnd, n));
                }
                for (int i = 0; i < n; i++) {
                    rings.availRing(i, hostile(rnd, 8) ? rnd.nextInt(0x10000) : rnd.nextInt(n));
                }
                int start = rnd.nextInt(0x10000);
                rings.availIdx(hostile(rnd, 6) ? rnd.nextInt(0x10000) : start + rnd.nextInt(n + 1));
                boolean eventIdx = rnd.nextBoolean();
                boolean indirect = rnd.nextInt(4) != 0;
                DeviceQueue q = new DeviceQueue(0);
                RingError ce = q.configure(m, n, rings.descAddr(), rings.availAddr(), rings.usedAddr(), eventIdx, indirect);
                assertEquals(RingError.NONE, ce);
                q.setLastAvail(start);
                q.setDeviceWritableAllowed(rnd.nextBoolean());
                DescriptorChain c = q.newChain();
                int calls = 1 + rnd.nextInt(2 * n + 4);
                for (int k = 0; k < calls; k++) {
                    switch (rnd.nextInt(10)) {
                        case 0, 1, 2, 3 -> {
                            if (q.nextAvail(c)) {
                                popped++;
                                checkChain(c, m, n);
                                int len = (int) Math.min(c.writableLength(), 64);
                                int w = c.writeWritable(rnd.nextInt(16), raw, 0, len);
                                assertTrue(w <= len);
                                c.readReadable(rnd.nextInt(16), scratch, 0, 64);
                                if (rnd.nextBoolean()) {
                                    q.addUsed(c.head(), w);
                                } else {
                                    q.stageUsed(c.head(), w);
                                }
                            }
                        }
                        case 4 -> q.publishUsed();
                        case 5 -> q.disableNotifications();
                        case 6 -> q.enableNotifications();
                        case 7 -> q.needsInterrupt();
                        case 8 -> q.addUsed(rnd.nextInt(n + 2), rnd.nextInt());
                        default -> {
                            q.hasAvail();
                            if (rnd.nextBoolean()) {
                                q.discard(1);
                            }
                        }
                    }
                    if (q.isBroken()) {
                        assertNotEquals(RingError.NONE, q.error());
                        assertEquals(1, q.errorCount());
                        break;
                    }
                }
                if (q.isBroken()) {
                    broken++;
                    byError[q.error().ordinal()]++;
                }
                assertTrue(g.guardsIntact(), "iteration " + iter + " wrote outside guest memory");
            }
        }
        // The generator must reach both outcomes and many rules, or it tests nothing.
        assertTrue(popped > TABLES / 10, "chains popped: " + popped);
        assertTrue(broken > TABLES / 10, "rings broken: " + broken);
        int rulesHit = 0;
        for (long b : byError) {
            rulesHit += b > 0 ? 1 : 0;
        }
        assertTrue(rulesHit >= 14, "distinct rules hit: " + rulesHit);
    }

    static boolean wild;

    /** True when this choice should be hostile: always possible, much rarer on tame iterations. */
    static boolean hostile(Random rnd, int oneIn) {
        return rnd.nextInt(wild ? oneIn : oneIn * 40) == 0;
    }

    final UnsafeBuffer scratch = new UnsafeBuffer(new byte[64]);

    static void checkChain(DescriptorChain c, GuestMemory m, int n) {
        assertTrue(c.head() >= 0 && c.head() < n);
        // Up to n - 1 direct descriptors, then one indirect table of at most max(n, 1024) entries.
        assertTrue(c.segmentCount() <= n - 1 + DescriptorChain.indirectLimit(n));
        long total = 0;
        for (int i = 0; i < c.segmentCount(); i++) {
            long a = c.segmentAddress(i);
            int len = c.segmentLength(i);
            total += len;
            int r = m.regionOf(a, len);
            assertTrue(r >= 0, "segment outside memory");
            GuestRegion region = m.region(r);
            assertSame(region.buffer(), c.segmentBuffer(i));
            assertEquals(a - region.guestBase(), c.segmentOffset(i));
            if (i > 0 && c.isWritable(i - 1)) {
                assertTrue(c.isWritable(i), "readable after writable");
            }
        }
        assertEquals(total, c.readableLength() + c.writableLength());
    }

    /** Addresses: mostly inside, often at the edges, sometimes wild. */
    static long addr(Random rnd, TestRings rings) {
        if (!hostile(rnd, 2)) {
            return BASE + rnd.nextInt((int) MEM - 4096);
        }
        return switch (rnd.nextInt(8)) {
            case 0 -> rnd.nextLong();
            case 1 -> BASE + MEM - rnd.nextInt(64);
            case 2 -> BASE - rnd.nextInt(64);
            case 3 -> -1L - rnd.nextInt(64);
            default -> BASE + rnd.nextInt((int) MEM);
        };
    }

    static long len(Random rnd) {
        if (!hostile(rnd, 2)) {
            return rnd.nextInt(2048);
        }
        return switch (rnd.nextInt(8)) {
            case 0 -> rnd.nextInt() & 0xffffffffL;
            case 1 -> 0;
            case 2 -> 0xffffffffL - rnd.nextInt(4);
            default -> rnd.nextInt(2048);
        };
    }

    static int flags(Random rnd) {
        int f = rnd.nextInt(3) == 0 ? 0 : DESC_F_NEXT;
        if (rnd.nextInt(wild ? 3 : 12) == 0) {
            f |= DESC_F_WRITE;
        }
        if (hostile(rnd, 10)) {
            f |= DESC_F_INDIRECT;
        }
        if (hostile(rnd, 50)) {
            f |= rnd.nextInt(0x10000);
        }
        return f;
    }

    static int next(Random rnd, int n) {
        return hostile(rnd, 10) ? rnd.nextInt(0x10000) : hostile(rnd, 3) ? n : rnd.nextInt(n);
    }
}
