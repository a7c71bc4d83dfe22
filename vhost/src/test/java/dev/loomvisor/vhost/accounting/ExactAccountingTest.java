package dev.loomvisor.vhost.accounting;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.accounting.Ledger.Drop;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.fixture.Guest;
import dev.loomvisor.vhost.fixture.VmLab;
import dev.loomvisor.vhost.fixture.VmPair;
import dev.loomvisor.vhost.testing.Owners;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Exact accounting under load: 16 VMs on one switch, each sending numbered, checksummed frames to the next
 * one (a ring of flows, so every receiver has exactly one sender), with RX rings made to overflow: rings of
 * 32 entries, small switch queues, and receivers whose vCPU is paused at random while their sender goes on
 * (a slow RX consumer), until the sender's frames back up through the full RX ring and overflow the switch
 * queue. One VM sends frames larger than the guests' RX buffers (no MRG_RXBUF), which the receiving RX
 * ring must drop. Afterwards, per flow and in total, every frame sent is delivered or dropped with a
 * counted reason (sent = delivered + dropped), every delivered frame's checksum matches, no frame arrives
 * twice or out of order, and the counting sites agree with each other (TX ring vs switch, switch queue in
 * vs out, RX ring vs guest). Meanwhile rings lose their backend for a moment and get it back, and a 17th
 * guest on the switch sends only malformed frames ({@link MalformedSender}), each of which must be dropped
 * under its own reason.
 *
 * <p>Run under every worker model, with MRG_RXBUF off (RX buffers of 1 KiB) and on (buffers of 256 bytes
 * that a frame spans several of). Each case: 500,000 frames in CI, 10,000,000 with
 * {@code -Dloomvisor.soak=full}. Frame sizes and pauses come from {@link Soak#seed()}; replay with
 * {@code -Dloomvisor.seed=N}.
 */
class ExactAccountingTest {

    static final int VMS = 16;
    static final int RING = 32;
    static final int RX_BUFFER = 1024;
    /** Larger than an RX buffer minus the virtio-net header: the receiver must drop every one. */
    static final int OVERSIZE = 1400;
    /** RX buffer size with MRG_RXBUF: a 1400-byte frame takes six. */
    static final int MERGED_RX_BUFFER = 256;

    /** Every worker model, with and without MRG_RXBUF (merged small buffers: a frame spans several). */
    static Stream<Arguments> cases() {
        return Arrays.stream(WorkerModel.values())
                .flatMap(m -> Stream.of(Arguments.of(m, false), Arguments.of(m, true)));
    }

    @ParameterizedTest(name = "{0} mrg_rxbuf={1}")
    @MethodSource("cases")
    void everyFrameIsDeliveredOrDroppedWithAReasonAcross16Vms(WorkerModel model, boolean mrgRxbuf) throws Exception {
        long seed = Soak.seed();
        long total = Soak.size(500_000L, 10_000_000L);
        long perVm = total / VMS;
        var rnd = new SplittableRandom(seed);
        // The seed also picks the notification scheme and busy-polling, the other paths a frame can take.
        boolean eventIdx = rnd.nextInt(4) != 0;
        long busyPollMicros = rnd.nextInt(3) == 0 ? 20 : 0;
        String setup = "event_idx=" + eventIdx + " busy_poll_us=" + busyPollMicros;
        String where = " (seed " + seed + ", model " + model.modelName() + ", mrg_rxbuf " + mrgRxbuf + ", " + setup
                + "; replay with -Dloomvisor.seed=" + seed + ")";

        // Without MRG_RXBUF a frame must fit one RX buffer; with it, small buffers make frames span several.
        var options = new VmPair.Options(RING, eventIdx, mrgRxbuf, mrgRxbuf ? MERGED_RX_BUFFER : RX_BUFFER,
                busyPollMicros, 1 << 14, true, null);
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        MalformedSender[] opened = new MalformedSender[1];
        try (WorkerFactory factory = model.factory(kernel);
             VmLab lab = new VmLab(vmm.mainTask(), factory, options)) {
            for (int i = 0; i < VMS; i++) {
                lab.addVm("vm" + i);
            }
            List<VmLab.Vm> vms = lab.vms();

            // Every VM announces itself with one broadcast frame (a gratuitous ARP), so that the switch
            // knows every MAC and the measured frames are all unicast: flooding would copy a frame to
            // ports that do not want it. The announcements are not part of the books below.
            for (VmLab.Vm vm : vms) {
                vm.guest().plan(Frames.BROADCAST, Guest.MIN_FRAME, 1, 0);
                vm.guest().start();
            }
            assertTrue(Owners.await(Duration.ofSeconds(20), () -> vms.stream().allMatch(
                    v -> v.guest().txDone() && v.guest().received() == VMS - 1)), "announcements" + where);
            for (VmLab.Vm vm : vms) {
                vm.guest().stop();
                assertFalse(vm.guest().isRunning(), vm.guest().name() + " did not stop" + where);
            }
            for (VmLab.Vm vm : vms) {
                assertEquals(vm.port().index(), lab.switchboard().lookup(vm.guest().mac()), "learned" + where);
            }

            List<Ledger> before = books(vms);
            long bad0 = vms.stream().mapToLong(v -> v.guest().badChecksums()).sum();
            long dup0 = vms.stream().mapToLong(v -> v.guest().reordered()).sum();
            int[] lengths = new int[VMS];
            for (int i = 0; i < VMS; i++) {
                lengths[i] = i == VMS - 1 ? OVERSIZE
                        : rnd.nextInt(4) == 0 ? rnd.nextInt(Guest.MIN_FRAME, RX_BUFFER - 12 + 1)
                        : rnd.nextInt(Guest.MIN_FRAME, 257);
                Guest g = vms.get(i).guest();
                g.plan(vms.get((i + 1) % VMS).guest().mac(), lengths[i], g.sent() + perVm, 0);
            }
            long t0 = System.nanoTime();
            MalformedSender malformed = new MalformedSender(lab.switchboard(), Soak.size(20_000L, 400_000L),
                    rnd.nextLong());
            opened[0] = malformed;
            for (VmLab.Vm vm : vms) {
                vm.guest().start();
            }
            malformed.start();

            // Slow RX consumers: pause one receiver at a time while its sender keeps sending, until the
            // sender's frames overflow the switch queue behind the full RX ring, then resume it. In between,
            // a VMM takes a ring's backend away and gives it back (VHOST_NET_SET_BACKEND fd -1, then the
            // port again), as on a link down/up: frames wait meanwhile, none may be lost or left behind.
            int pauses = 0;
            int detaches = 0;
            while (!vms.stream().allMatch(v -> v.guest().txDone())) {
                if (rnd.nextInt(3) == 0) {
                    VmLab.Vm vm = vms.get(rnd.nextInt(VMS));
                    int ring = rnd.nextBoolean() ? VirtioNet.RX : VirtioNet.TX;
                    vm.net().setBackend(vmm.mainTask(), ring, null);
                    LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(100 + rnd.nextInt(3000)));
                    vm.net().setBackend(vmm.mainTask(), ring, vm.port());
                    detaches++;
                    continue;
                }
                int k = 1 + rnd.nextInt(VMS - 2); // the sender k-1 is not the oversize one
                VmLab.Vm slow = vms.get(k);
                VmLab.Vm sender = vms.get(k - 1);
                if (sender.guest().txDone()) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
                    continue;
                }
                long full0 = sender.port().counters().get(PortCounter.TX_DROP_QUEUE_FULL);
                slow.guest().stop();
                assertFalse(slow.guest().isRunning(), slow.guest().name() + " did not pause" + where);
                Owners.await(Duration.ofSeconds(2), () -> sender.guest().txDone()
                        || sender.port().counters().get(PortCounter.TX_DROP_QUEUE_FULL) > full0);
                slow.guest().start();
                pauses++;
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1 + rnd.nextInt(20)));
                assertTrue(System.nanoTime() - t0 < TimeUnit.MINUTES.toNanos(5), "traffic did not finish" + where);
            }

            // Quiescence: every flow balances and every counting site agrees, within a bounded wait.
            List<Ledger> after = new ArrayList<>();
            boolean settled = Owners.await(Duration.ofSeconds(30), () -> {
                after.clear();
                List<Ledger> now = books(vms);
                for (int i = 0; i < VMS; i++) {
                    after.add(now.get(i).since(before.get(i)));
                }
                return after.stream().allMatch(ExactAccountingTest::agrees) && malformed.done()
                        && malformed.counted().equals(malformed.sent());
            });
            long elapsed = System.nanoTime() - t0;
            for (VmLab.Vm vm : vms) {
                assertEquals(null, vm.guest().failure(), vm.guest().name() + where);
            }
            Ledger all = Ledger.sum(after);
            long mismatches = vms.stream().mapToLong(v -> v.guest().badChecksums()).sum() - bad0;
            long duplicates = vms.stream().mapToLong(v -> v.guest().reordered()).sum() - dup0;
            String figures = String.format("frames=%d delivered=%d dropped=%d %s mismatches=%d duplicates=%d"
                    + " malformed=%d %s pauses=%d detaches=%d %s seed=%d %.1fs (%.2f Mframes/s)", all.sent(),
                    all.delivered(), all.dropped(), all.reasons(), mismatches, duplicates, malformed.total(),
                    Ledger.format(malformed.counted()), pauses, detaches, setup, seed,
                    elapsed / 1e9, all.sent() * 1e3 / elapsed);
            Soak.report("accounting.16vms." + model.modelName() + (mrgRxbuf ? ".mrg" : ""), figures);

            for (int i = 0; i < VMS; i++) {
                Ledger l = after.get(i);
                assertTrue(agrees(l), "vm" + i + " -> vm" + (i + 1) % VMS + " (" + lengths[i] + " B): " + l
                        + (settled ? "" : " [did not settle in 30 s]") + where);
                assertEquals(perVm, l.sent(), "vm" + i + where);
            }
            assertEquals(total - total % VMS, all.sent(), where);
            assertEquals(all.sent(), all.delivered() + all.dropped(), all + where);
            assertEquals(0, mismatches, "checksum mismatches" + where);
            assertEquals(0, duplicates, "frames twice or out of order" + where);
            // Every malformed frame was dropped, each under its own reason, and none went anywhere.
            assertEquals(null, malformed.failure(), where);
            assertTrue(malformed.done(), "malformed frames left in the TX ring" + where);
            assertEquals(malformed.sent(), malformed.counted(), "malformed frames by reason" + where);
            assertEquals(malformed.total(), malformed.sent().values().stream().mapToLong(Long::longValue).sum(), where);
            assertEquals(0, malformed.delivered(), where);
            assertEquals(malformed.counted().get(Drop.SWITCH_RUNT) + malformed.counted().get(Drop.SWITCH_SAME_PORT),
                    malformed.refusedByBackend(), where);
            // The overflow happened and was counted as such; without MRG_RXBUF the oversize flow died at
            // the RX ring, with it the oversize frames were merged over several buffers.
            assertTrue(all.drops().get(Drop.QUEUE_FULL) > 0, "no RX overflow: " + all + where);
            Ledger oversize = after.get(VMS - 1);
            if (mrgRxbuf) {
                assertEquals(0, all.drops().get(Drop.RX_TOO_BIG), all + where);
                assertTrue(oversize.delivered() > 0, oversize + where);
                return;
            }
            assertEquals(0, oversize.delivered(), oversize + where);
            assertEquals(oversize.sent(), oversize.drops().get(Drop.RX_TOO_BIG) + oversize.drops().get(Drop.QUEUE_FULL),
                    oversize + where);
            assertTrue(oversize.drops().get(Drop.RX_TOO_BIG) > 0, oversize + where);
        } finally {
            if (opened[0] != null) {
                opened[0].close();
            }
        }
    }

    /** Sender VM i's flow to VM i+1, for every i. */
    private static List<Ledger> books(List<VmLab.Vm> vms) {
        List<Ledger> l = new ArrayList<>(vms.size());
        for (int i = 0; i < vms.size(); i++) {
            l.add(Ledger.of(vms.get(i), vms.get((i + 1) % vms.size())));
        }
        return l;
    }

    /** The flow balances, and every two sites that count the same frames agree. */
    private static boolean agrees(Ledger l) {
        return l.balanced()
                && l.txBackendRefused() == l.switchDrops()
                && l.switchTxFrames() == l.switchAccepted()
                && l.sent() - l.drops().get(Drop.TX_BAD_HEADER) - l.drops().get(Drop.TX_TOO_BIG)
                        - l.drops().get(Drop.SWITCH_RUNT) - l.drops().get(Drop.SWITCH_TOO_LONG) == l.switchTxFrames()
                && l.queuedIn() == l.queuedOut()
                && l.queuedOut() == l.rxRingFrames() + l.rxDrops()
                && l.rxRingFrames() == l.guestReceived()
                && l.guestReceived() == l.delivered();
    }
}
