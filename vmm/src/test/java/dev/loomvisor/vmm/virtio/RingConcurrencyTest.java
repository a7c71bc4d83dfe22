package dev.loomvisor.vmm.virtio;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.testing.TestRings;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Driver and device in two threads exchange frames of random sizes through one queue, with kicks and
 * interrupts suppressed and re-enabled the way virtio_ring.c and vhost do. Each chain carries a frame to the
 * device and a buffer for its echo; the device checks every byte and the order, echoes, and the driver
 * checks the used len, every echoed byte and the order. A lost kick or interrupt shows as a bounded wait
 * that expires.
 */
class RingConcurrencyTest {

    static final int N = 256;
    static final int SLOT = 2048;
    static final long WAIT_S = 10;

    static int sizeOf(long seq) {
        long z = seq * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 31)) * 0xBF58476D1CE4E5B9L;
        return 16 + (int) Long.remainderUnsigned(z ^ (z >>> 29), 1485); // 16 ..= 1500 bytes
    }

    static void fill(UnsafeBuffer b, int off, long seq, int size) {
        b.putLong(off, seq);
        for (int j = 8; j < size; j++) {
            b.putByte(off + j, (byte) (seq * 131 + j));
        }
    }

    static String check(UnsafeBuffer b, int off, long seq, int size) {
        if (b.getLong(off) != seq) {
            return "seq " + b.getLong(off) + " where " + seq + " expected";
        }
        for (int j = 8; j < size; j++) {
            if (b.getByte(off + j) != (byte) (seq * 131 + j)) {
                return "frame " + seq + " byte " + j + " differs";
            }
        }
        return null;
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void millionFramesWithEventIdx() throws Exception {
        exchange(1_000_000, true);
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void framesWithFlagSuppression() throws Exception {
        exchange(200_000, false);
    }

    void exchange(int total, boolean eventIdx) throws Exception {
        try (GuestMemory m = GuestMemory.anonymous(0x100000, 4 << 20)) {
            TestRings rings = new TestRings(m, N);
            DriverQueue driver = rings.driver(eventIdx);
            DeviceQueue device = rings.device(eventIdx, false);
            Notifier kick = new Notifier();
            Notifier call = new Notifier();
            AtomicReference<Throwable> deviceFailure = new AtomicReference<>();
            long[] deviceSeen = new long[1];
            Thread worker = Thread.ofPlatform().name("device").start(() -> {
                try {
                    deviceLoop(device, kick, call, total, deviceSeen);
                } catch (Throwable t) {
                    deviceFailure.set(t);
                    call.signal();
                }
            });

            long base = rings.dataAddr();
            UnsafeBuffer data = new UnsafeBuffer(m.region(0).buffer(), (int) (base - m.region(0).guestBase()),
                    2 * N * SLOT);
            int[] freeSlots = new int[N];
            int freeTop = 0;
            for (int s = 0; s < N; s++) {
                freeSlots[freeTop++] = s;
            }
            long[] addrs = new long[2];
            int[] lens = new int[2];
            UsedElement u = new UsedElement();
            long nextSeq = 0;
            long expectReap = 0;
            while (expectReap < total) {
                boolean added = false;
                while (nextSeq < total && freeTop > 0 && driver.freeCount() >= 2) {
                    int slot = freeSlots[--freeTop];
                    int size = sizeOf(nextSeq);
                    fill(data, 2 * slot * SLOT, nextSeq, size);
                    addrs[0] = base + 2L * slot * SLOT;
                    lens[0] = size;
                    addrs[1] = addrs[0] + SLOT;
                    lens[1] = SLOT;
                    assertTrue(driver.add(addrs, lens, 1, 1, (nextSeq << 16) | slot) >= 0);
                    nextSeq++;
                    added = true;
                }
                if (added && driver.publishAndCheckKick()) {
                    kick.signal();
                }
                boolean reaped = false;
                while (driver.reap(u)) {
                    long seq = u.cookie() >>> 16;
                    int slot = (int) (u.cookie() & 0xffff);
                    assertEquals(expectReap, seq, "used entries out of order");
                    assertEquals(sizeOf(seq), u.len(), "used len of frame " + seq);
                    String bad = check(data, 2 * slot * SLOT + SLOT, seq, u.len());
                    assertNull(bad, bad);
                    freeSlots[freeTop++] = slot;
                    expectReap++;
                    reaped = true;
                }
                if (!reaped && !(nextSeq < total && freeTop > 0) && expectReap < total
                        && !driver.enableInterrupts()) {
                    assertNull(deviceFailure.get());
                    assertTrue(call.await(WAIT_S, TimeUnit.SECONDS) > 0,
                            "no interrupt for " + WAIT_S + " s with " + (nextSeq - expectReap) + " in flight");
                }
            }
            worker.join(TimeUnit.SECONDS.toMillis(WAIT_S));
            assertFalse(worker.isAlive());
            assertNull(deviceFailure.get());
            assertEquals(total, deviceSeen[0]);
            assertEquals(N, driver.freeCount());
            assertFalse(device.isBroken());
        }
    }

    static void deviceLoop(DeviceQueue q, Notifier kick, Notifier call, int total, long[] seen) throws Exception {
        DescriptorChain c = q.newChain();
        UnsafeBuffer frame = new UnsafeBuffer(new byte[SLOT]);
        long expect = 0;
        while (expect < total) {
            q.disableNotifications();
            boolean any = false;
            while (q.nextAvail(c)) {
                int len = (int) c.readableLength();
                int got = c.readReadable(0, frame, 0, SLOT);
                assertEquals(len, got);
                assertEquals(sizeOf(expect), len, "readable length of frame " + expect);
                String bad = check(frame, 0, expect, len);
                assertNull(bad, bad);
                int w = c.writeWritable(0, frame, 0, len);
                assertEquals(len, w);
                assertTrue(q.stageUsed(c.head(), w));
                expect++;
                any = true;
            }
            assertFalse(q.isBroken(), () -> q.error().toString());
            if (any) {
                q.publishUsed();
                if (q.needsInterrupt()) {
                    call.signal();
                }
            }
            if (q.enableNotifications()) {
                continue; // the driver added while kicks were off: drain again before sleeping
            }
            if (expect < total) {
                assertTrue(kick.await(WAIT_S, TimeUnit.SECONDS) > 0,
                        "no kick for " + WAIT_S + " s after " + expect + " frames");
            }
        }
        seen[0] = expect;
    }
}
