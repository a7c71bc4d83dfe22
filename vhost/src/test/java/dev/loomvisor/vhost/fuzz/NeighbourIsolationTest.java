package dev.loomvisor.vhost.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.fixture.Guest;
import dev.loomvisor.vhost.fixture.VmLab;
import dev.loomvisor.vhost.fixture.VmPair;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vmm.memory.Translation;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.SplitRing;
import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A broken ring in one VM must not change a neighbour VM's delivered count (issue 8). Four VMs on one
 * switch, their vhost workers all of one model: a and b exchange a fixed number of frames each way while x
 * floods s (x's own flow is not checked: once its guest scribbles, x may resend old frames). Mid-traffic,
 * x's guest writes garbage into its own TX ring (descriptors and avail ring, again and again until the
 * device notices, as a guest racing its own driver would); a and b send half their frames around the
 * break and half after it, on the same workers. Then:
 * <ul>
 *   <li>a and b deliver exactly the frames they sent each other, intact and in order, and their rings are
 *       healthy;</li>
 *   <li>x's TX ring reports a declared {@link RingError} once (counted, err eventfd signalled) and stops:
 *       no frame leaves it after the break; x's RX ring still works.</li>
 * </ul>
 * Every model is tried, and the kthread pool also with one thread: one worker shared by all four VMs.
 */
class NeighbourIsolationTest {

    /** Frames each way between the neighbours (even: half before the break, half after). */
    static final int FRAMES = Soak.size(20_000, 500_000);
    static final Duration WAIT = Duration.ofSeconds(30);

    @ParameterizedTest
    @EnumSource(WorkerModel.class)
    void aGuestBreakingItsTxRingStopsOnlyItself(WorkerModel model) throws Exception {
        run(model, Runtime.getRuntime().availableProcessors());
    }

    @ParameterizedTest
    @ValueSource(ints = {1})
    void aBrokenRingOnAWorkerSharedByAllVmsStopsOnlyItself(int poolThreads) throws Exception {
        run(WorkerModel.KTHREAD_POOL, poolThreads);
    }

    private void run(WorkerModel model, int poolThreads) throws Exception {
        long seed = Soak.seed();
        String where = model + " (pool " + poolThreads + ", seed " + seed + ")";
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        VmPair.Options o = VmPair.Options.defaults();
        // Port queues big enough for every frame: a drop would be a counted reason, but here none may occur.
        o = new VmPair.Options(o.queueSize(), o.eventIdx(), o.mrgRxbuf(), o.rxBufferSize(), 0, 1 << 24,
                o.virtualVcpus(), null);
        try (WorkerFactory f = model.factory(kernel, poolThreads);
             VmLab lab = new VmLab(vmm.mainTask(), f, o)) {
            VmLab.Vm a = lab.addVm("a");
            VmLab.Vm b = lab.addVm("b");
            VmLab.Vm x = lab.addVm("x");
            VmLab.Vm s = lab.addVm("s");
            Notifier xErr = new Notifier();
            x.net().device().setVringErr(vmm.mainTask(), VirtioNet.TX, xErr);
            Guest ga = a.guest();
            Guest gb = b.guest();
            Guest gx = x.guest();
            Guest gs = s.guest();

            // The switch learns every port first, so no frame of the run is flooded to a bystander: a's frame
            // to b is flooded to all (b is unknown yet), then b, x and s answer a (known by then) directly.
            Guest[] all = {ga, gb, gx, gs};
            ga.plan(gb.mac(), 64, 1, 0);
            for (Guest g : new Guest[] {gb, gx, gs}) {
                g.plan(ga.mac(), 64, 0, 0); // receive only
            }
            for (Guest g : all) {
                g.start();
            }
            assertTrue(Owners.await(WAIT, () -> gb.received() == 1 && gx.received() == 1 && gs.received() == 1),
                    "learning frame from a, " + where);
            for (Guest g : all) {
                g.stop();
            }
            for (Guest g : new Guest[] {gb, gx, gs}) {
                g.plan(ga.mac(), 64, 1, 0);
            }
            for (Guest g : all) {
                g.start();
            }
            assertTrue(Owners.await(WAIT, () -> ga.received() == 3), "learning frames to a, " + where);
            for (Guest g : all) {
                g.stop();
            }

            // Half the frames while x floods s and breaks its ring, half after the break.
            int half = FRAMES / 2;
            gx.plan(gs.mac(), 64, Long.MAX_VALUE, 0); // x floods s until its ring breaks
            ga.plan(gb.mac(), 64, 1 + half, 0);
            gb.plan(ga.mac(), 64, 1 + half, 0);
            for (Guest g : all) {
                g.start();
            }
            assertTrue(Owners.await(WAIT, () -> gb.receivedFrom(ga.mac()) > 1 && ga.receivedFrom(gb.mac()) > 1
                    && gs.receivedFrom(gx.mac()) > 1), "traffic, " + where);

            // Mid-traffic, x's guest scribbles over its own TX descriptors and avail ring until the device
            // finds a violation.
            SplittableRandom rnd = new SplittableRandom(seed);
            var xtx = x.net().tx();
            long deadline = System.nanoTime() + WAIT.toNanos();
            int scribbles = 0;
            while (xtx.ringError() == RingError.NONE && System.nanoTime() < deadline) {
                scribble(gx, rnd, o.queueSize());
                scribbles++;
                Thread.onSpinWait();
            }
            RingError e = xtx.ringError();
            assertNotEquals(RingError.NONE, e, "x's TX ring never broke after " + scribbles + " scribbles, " + where);
            // The handler run that found the violation adds the frames it sent before it to the counters as
            // it ends: wait for it (vhost_dev_flush), then nothing more may be sent.
            x.net().device().flush();
            long xSentAtBreak = xtx.counters().get(RingCounter.FRAMES);
            long aAtBreak = gb.receivedFrom(ga.mac());
            long bAtBreak = ga.receivedFrom(gb.mac());
            assertTrue(Owners.await(WAIT, () -> ga.receivedFrom(gb.mac()) == 1 + half
                    && gb.receivedFrom(ga.mac()) == 1 + half), "neighbours' frames before the break, " + where);
            ga.stop();
            gb.stop();
            ga.plan(gb.mac(), 64, 1 + FRAMES, 0);
            gb.plan(ga.mac(), 64, 1 + FRAMES, 0);
            ga.start();
            gb.start();
            assertTrue(Owners.await(WAIT, () -> ga.receivedFrom(gb.mac()) == 1 + FRAMES
                    && gb.receivedFrom(ga.mac()) == 1 + FRAMES), "neighbours' frames, " + where + ": a got "
                    + ga.receivedFrom(gb.mac()) + ", b got " + gb.receivedFrom(ga.mac()) + " of " + (1 + FRAMES));
            assertTrue(Owners.await(WAIT, () -> ga.txCompleted() == 1 + FRAMES && gb.txCompleted() == 1 + FRAMES),
                    "neighbours' TX completions, " + where);
            lab.close();

            // The neighbours: exactly what they sent, intact, in order, rings healthy.
            assertEquals(1 + FRAMES, ga.sent(), where);
            assertEquals(1 + FRAMES, gb.sent(), where);
            assertEquals(1 + FRAMES, ga.receivedFrom(gb.mac()), where);
            assertEquals(1 + FRAMES, gb.receivedFrom(ga.mac()), where);
            assertEquals(0, ga.badChecksums() + gb.badChecksums(), where);
            assertEquals(0, ga.reordered() + gb.reordered() + ga.gaps() + gb.gaps(), where);
            assertEquals(3 + FRAMES, ga.received(), "a received only b's frames after learning, " + where);
            assertEquals(1 + FRAMES, gb.received(), "b received only a's frames, " + where);
            assertNull(ga.failure(), where);
            assertNull(gb.failure(), where);
            for (VmLab.Vm vm : new VmLab.Vm[] {a, b}) {
                assertEquals(RingError.NONE, vm.net().tx().ringError(), where);
                assertEquals(RingError.NONE, vm.net().rx().ringError(), where);
                assertEquals(0, vm.net().tx().counters().get(RingCounter.RING_ERRORS), where);
                assertEquals(0, vm.net().rx().counters().get(RingCounter.RING_ERRORS), where);
            }
            // x: one declared error on its TX ring, told through its err eventfd; nothing sent after it;
            // its RX ring untouched.
            assertEquals(1, xtx.counters().get(RingCounter.RING_ERRORS), where);
            assertEquals(1, xtx.queue().errorCount(), where);
            assertTrue(xErr.poll() >= 1, "x's err eventfd, " + where);
            assertEquals(xSentAtBreak, xtx.counters().get(RingCounter.FRAMES), "x sent after its ring broke, " + where);
            assertEquals(RingError.NONE, x.net().rx().ringError(), where);
            Soak.report("fuzz.neighbour-isolation." + model.name().toLowerCase() + (poolThreads == 1 ? ".shared" : ""),
                    "frames-each-way=" + (1 + FRAMES) + " delivered-a=" + ga.receivedFrom(gb.mac()) + " delivered-b="
                    + gb.receivedFrom(ga.mac()) + " broken=" + e.name() + " scribbles=" + scribbles
                    + " x-sent-before-break=" + xSentAtBreak + " a-b-delivered-at-break=" + aAtBreak + "/" + bAtBreak);
        }
    }

    /** One pass of garbage over x's TX descriptor table and avail ring. */
    private static void scribble(Guest g, SplittableRandom rnd, int n) {
        Translation t = new Translation();
        g.memory().translate(g.txDescAddr(), SplitRing.descTableSize(n), t);
        for (int i = 0; i < n; i++) {
            int d = t.offset() + i * SplitRing.DESC_SIZE;
            t.buffer().putLong(d + SplitRing.DESC_ADDR, rnd.nextLong());
            t.buffer().putInt(d + SplitRing.DESC_LEN, rnd.nextInt());
            t.buffer().putShort(d + SplitRing.DESC_FLAGS, (short) (SplitRing.DESC_F_NEXT | rnd.nextInt(8)));
            t.buffer().putShort(d + SplitRing.DESC_NEXT, (short) rnd.nextInt(2 * n));
        }
        g.memory().translate(g.txAvailAddr(), SplitRing.availRingSize(n), t);
        for (int i = 0; i < n; i++) {
            t.buffer().putShort(t.offset() + SplitRing.AVAIL_RING + 2 * i, (short) rnd.nextInt(2 * n));
        }
    }
}
