package dev.loomvisor.vhost.fuzz;

import static dev.loomvisor.vmm.virtio.SplitRing.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vmm.net.FrameLimits;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.testing.GuardedMemory;
import dev.loomvisor.vmm.testing.TestRings;
import dev.loomvisor.vmm.virtio.RingError;
import java.util.HexFormat;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * One level up from the split-ring fuzz target: random RX and TX rings handed to a real vhost-net device
 * (a user worker running {@code TxHandler} and {@code RxHandler}'s copy paths) in a guest memory with guard
 * bands, with a generator backend feeding RX frames of random lengths and a sink taking TX frames, under
 * each combination of MRG_RXBUF, EVENT_IDX and INDIRECT_DESC. Per input the oracle checks: no exception in
 * a handler (the worker counts them), no guard byte changed, a broken ring signalled its err eventfd and
 * counted one error, and a healthy TX ring returned every chain it popped: sent or dropped with a reason.
 */
class HandlerFuzzTest {

    static final long BASE = 0x10000;
    static final long SIZE = 1 << 20;
    static final int N = 16;
    static final long RX_RING = BASE;
    static final long TX_RING = BASE + 0x4000;
    static final long DATA = BASE + 0x10000;
    static final long DATA_SIZE = BASE + SIZE - DATA;
    static final long[] FEATURES = {
        NetFeatures.VERSION_1,
        NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF,
        NetFeatures.VERSION_1 | NetFeatures.EVENT_IDX | NetFeatures.INDIRECT_DESC,
        NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX
                | NetFeatures.INDIRECT_DESC,
    };

    @Test
    void randomRingsThroughTheTxAndRxHandlers() throws Exception {
        long seed = Soak.seed();
        int inputs = Soak.size(8_000, 250_000);
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        Task owner = vmm.mainTask();
        long broken = 0;
        long txFrames = 0;
        long rxFrames = 0;
        long slowest = 0;
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel);
             GuardedMemory g = new GuardedMemory(BASE, SIZE)) {
            Rig[] rigs = new Rig[FEATURES.length];
            for (int i = 0; i < rigs.length; i++) {
                rigs[i] = new Rig(owner, f, g, FEATURES[i]);
            }
            SplittableRandom rnd = new SplittableRandom(seed);
            byte[] input = new byte[2048];
            try {
                for (int i = 0; i < inputs; i++) {
                    int len = 16 + rnd.nextInt(input.length - 16);
                    rnd.nextBytes(input);
                    Rig rig = rigs[rnd.nextInt(rigs.length)];
                    long t0 = System.nanoTime();
                    try {
                        Outcome o = rig.run(new Cursor(input, len));
                        broken += o.broken;
                        txFrames += o.txFrames;
                        rxFrames += o.rxFrames;
                    } catch (AssertionError e) {
                        fail("fault on input " + i + " of seed " + seed + " (replay: -Dloomvisor.seed=" + seed + "), "
                                + "features 0x" + Long.toHexString(rig.features) + ": " + e.getMessage() + "\ninput: "
                                + HexFormat.of().formatHex(input, 0, len), e);
                    }
                    slowest = Math.max(slowest, System.nanoTime() - t0);
                    assertTrue(g.guardsIntact(), "a guard band changed on input " + i + " of seed " + seed);
                }
            } finally {
                for (Rig r : rigs) {
                    r.net.close();
                }
            }
        }
        // The inputs must reach both healthy traffic and broken rings, or they test little.
        assertTrue(txFrames > inputs / 20, "TX frames: " + txFrames + " (seed " + seed + ")");
        assertTrue(rxFrames > inputs / 20, "RX frames: " + rxFrames + " (seed " + seed + ")");
        assertTrue(broken > inputs / 10, "broken rings: " + broken + " (seed " + seed + ")");
        Soak.report("fuzz.vhost-handlers", "inputs=" + inputs + " tx-frames=" + txFrames + " rx-frames=" + rxFrames
                + " broken-rings=" + broken + " slowest-input-us=" + slowest / 1000 + " faults=0");
    }

    record Outcome(int broken, long txFrames, long rxFrames) {
    }

    /** Reads an input as fields; zeros past its end. */
    static final class Cursor {
        final byte[] b;
        final int len;
        int pos;

        Cursor(byte[] b, int len) {
            this.b = b;
            this.len = len;
        }

        int u8() {
            return pos < len ? b[pos++] & 0xff : 0;
        }

        int u16() {
            return u8() | u8() << 8;
        }

        long u32() {
            return (u16() | (long) u16() << 16) & 0xffffffffL;
        }

        long u64() {
            return u32() | u32() << 32;
        }
    }

    /** One vhost-net device with rings in the shared guarded memory, restarted for every input. */
    static final class Rig {
        final Task owner;
        final long features;
        final VhostNet net;
        final GuardedMemory g;
        final TestRings rx;
        final TestRings tx;
        final Notifier rxKick = new Notifier();
        final Notifier txKick = new Notifier();
        final Notifier call = new Notifier();
        final Notifier err = new Notifier();
        final SinkBackend sink = new SinkBackend();

        Rig(Task owner, WorkerFactory f, GuardedMemory g, long features) throws Exception {
            this.owner = owner;
            this.features = features;
            this.g = g;
            net = VhostNet.open(owner, f);
            var d = net.device();
            d.setOwner(owner);
            d.setFeatures(owner, features);
            d.setMemTable(owner, g.memory());
            rx = new TestRings(g.memory(), N, RX_RING);
            tx = new TestRings(g.memory(), N, TX_RING);
            TestRings[] rings = {rx, tx};
            Notifier[] kicks = {rxKick, txKick};
            for (int i = 0; i < 2; i++) {
                d.setVringNum(owner, i, N);
                d.setVringAddr(owner, i, rings[i].descAddr(), rings[i].availAddr(), rings[i].usedAddr());
                d.setVringKick(owner, i, kicks[i]);
                d.setVringCall(owner, i, call);
                d.setVringErr(owner, i, err);
            }
        }

        Outcome run(Cursor in) throws Exception {
            // Stop both rings (flushes the worker), lay out new ones, restart them at the input's indexes.
            net.setBackend(owner, VirtioNet.RX, null);
            net.setBackend(owner, VirtioNet.TX, null);
            int rxStart = layOut(rx, in, true);
            int txStart = layOut(tx, in, false);
            net.device().setVringBase(owner, VirtioNet.RX, rxStart);
            net.device().setVringBase(owner, VirtioNet.TX, txStart);
            int length = 22 + in.u16() % (FrameLimits.MAX_FRAME - 21);
            int count = 1 + in.u8() % (2 * N);
            GeneratorBackend gen = new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), length, count);
            err.poll();
            VhostVirtqueue rq = net.rx();
            VhostVirtqueue tq = net.tx();
            long[] before = {tq.counters().get(RingCounter.FRAMES), tq.counters().get(RingCounter.DROP_BAD_HEADER)
                    + tq.counters().get(RingCounter.DROP_TOO_BIG) + tq.counters().get(RingCounter.DROP_BACKEND),
                    rq.counters().get(RingCounter.FRAMES), sink.counters().get(SinkBackend.Counter.FRAMES),
                    tq.counters().get(RingCounter.RING_ERRORS) + rq.counters().get(RingCounter.RING_ERRORS)};
            net.setBackend(owner, VirtioNet.TX, sink);
            net.setBackend(owner, VirtioNet.RX, gen);
            txKick.signal();
            rxKick.signal();
            quiesce();
            VhostWorker w = tq.worker();
            assertEquals(0, w.workFailures(), "an exception escaped a handler");
            int brokenRings = (tq.ringError() != RingError.NONE ? 1 : 0) + (rq.ringError() != RingError.NONE ? 1 : 0);
            long errors = tq.counters().get(RingCounter.RING_ERRORS) + rq.counters().get(RingCounter.RING_ERRORS) - before[4];
            assertEquals(brokenRings, errors, "ring errors counted");
            if (brokenRings > 0) {
                assertTrue(err.poll() >= 1, "a broken ring did not signal its err eventfd");
            }
            long sent = tq.counters().get(RingCounter.FRAMES) - before[0];
            assertEquals(sent, sink.counters().get(SinkBackend.Counter.FRAMES) - before[3], "TX frames vs sink");
            if (tq.ringError() == RingError.NONE) {
                // Every chain the guest offered came back used: sent, or dropped with a counted reason.
                long dropped = tq.counters().get(RingCounter.DROP_BAD_HEADER) + tq.counters().get(RingCounter.DROP_TOO_BIG)
                        + tq.counters().get(RingCounter.DROP_BACKEND) - before[1];
                int offered = (tx.availIdx() - txStart) & 0xffff;
                assertEquals(offered, (tx.usedIdx() - txStart) & 0xffff, "TX chains returned");
                assertEquals(offered, sent + dropped, "TX chains sent or dropped");
            }
            if (rq.ringError() == RingError.NONE) {
                int usedCount = (rx.usedIdx() - rxStart) & 0xffff;
                assertTrue(usedCount <= ((rx.availIdx() - rxStart) & 0xffff), "RX used more chains than offered");
                for (int i = 0; i < usedCount; i++) {
                    assertTrue(rx.usedId(rxStart + i) < N, "RX used id out of range");
                }
            }
            return new Outcome(brokenRings, sent, rq.counters().get(RingCounter.FRAMES) - before[2]);
        }

        /** Waits until the worker has run everything queued, including handlers that requeued themselves. */
        private void quiesce() {
            VhostVirtqueue rq = net.rx();
            VhostVirtqueue tq = net.tx();
            for (int i = 0; i < 100_000; i++) {
                long runs = rq.counters().get(RingCounter.RUNS) + tq.counters().get(RingCounter.RUNS);
                net.device().flush();
                if (runs == rq.counters().get(RingCounter.RUNS) + tq.counters().get(RingCounter.RUNS)) {
                    return;
                }
            }
            fail("the handlers never went idle");
        }

        /** Writes a hostile ring from the input; returns the index the device starts from. */
        private int layOut(TestRings r, Cursor in, boolean writable) {
            r.zero(r.descAddr(), (int) (r.dataAddr() - r.descAddr()));
            // Most rings are a well-behaved driver's with rare faults, so the handlers' healthy paths (MRG
            // across buffers, batches, weights) are reached; the rest are noise.
            tame = in.u8() < 0xa0;
            int start = in.u16();
            for (int i = 0; i < N; i++) {
                desc(r, in, writable, -1, i);
            }
            // An indirect table in the data area, from the same descriptor encoding.
            long table = DATA + 16L * (in.u8() % 256);
            int entries = in.u8() % (N + 2);
            for (int i = 0; i < entries; i++) {
                desc(r, in, writable, table, i);
            }
            for (int i = 0; i < N; i++) {
                int e = in.u8();
                r.availRing(start + i, e < 0xf0 || tame ? e % N : in.u16());
            }
            int mode = in.u8();
            int idx = switch (tame && (mode & 0x70) != 0 ? 0 : mode & 7) {
                case 6 -> in.u16(); // anything
                case 7 -> start + N + 1 + in.u8(); // too far ahead
                default -> start + in.u8() % (N + 1);
            };
            r.availIdx(idx);
            r.usedIdx(start);
            r.usedEvent(in.u16());
            r.availFlags(in.u8() & 1);
            return start;
        }

        private boolean tame;

        private void desc(TestRings r, Cursor in, boolean rx, long table, int i) {
            int mode = in.u8();
            if (tame && (mode & 0xc0) != 0) {
                // A plain buffer: in the data area, a small or a full-frame length, the ring's direction,
                // now and then chained to the next entry.
                long addr = DATA + in.u32() % (DATA_SIZE - 4096);
                long len = (mode & 1) == 0 ? VirtioNetHeader.SIZE + in.u16() % 1600 : 1526 + in.u8();
                int flags = (rx ? DESC_F_WRITE : 0) | ((mode & 0x0e) == 0 ? DESC_F_NEXT : 0);
                int n = table < 0 ? N : N + 2;
                if (table < 0) {
                    r.desc(i, addr, len, flags, (i + 1) % n);
                } else {
                    r.indirectDesc(table, i, addr, len, flags, i + 1);
                }
                return;
            }
            long addr = switch (mode & 7) {
                case 5 -> BASE + SIZE - in.u8(); // the region's end
                case 6 -> (mode & 0x80) != 0 ? BASE - in.u8() : in.u64(); // the guard before it, or anywhere
                case 7 -> DATA + 16L * (in.u8() % 256); // where indirect tables go
                default -> DATA + in.u32() % DATA_SIZE;
            };
            long len = switch ((mode >> 3) & 7) {
                case 0, 1 -> in.u16() & 0x7ff;
                case 2 -> VirtioNetHeader.SIZE + (in.u8() & 3) - 1; // around the header's length
                case 3 -> 0;
                case 4 -> 16L * (in.u8() % (N + 2)); // an indirect table's length
                case 5 -> in.u32();
                default -> 1526 + in.u8(); // a full frame and its header
            };
            int f = in.u8();
            // Mostly the ring's direction, sometimes the other, sometimes anything.
            int flags = (f & 0x80) == 0 ? (f & DESC_F_NEXT) | (rx ? DESC_F_WRITE : 0)
                    : (f & 0x40) == 0 ? (f & 7) : f | in.u8() << 8;
            int next = in.u8() % (N + 2);
            if (table < 0) {
                r.desc(i, addr, len, flags, next);
            } else {
                r.indirectDesc(table, i, addr, len, flags, next);
            }
        }
    }
}
