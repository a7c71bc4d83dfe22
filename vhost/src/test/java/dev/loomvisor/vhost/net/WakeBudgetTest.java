package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Task;
import dev.loomvisor.core.timer.HrtimerBase;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vmm.VM;
import dev.loomvisor.vmm.driver.PairStats;
import dev.loomvisor.vmm.driver.QueuePairDriver;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import java.util.LinkedHashSet;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The wake-up budget of a frame from one VM to another through the switch, at a rate where every thread goes
 * back to sleep between frames: the sender's vCPU is woken by its send time, kicks its TX ring once (waking its
 * vhost worker once), the switch wakes the receiver's worker once, which interrupts the receiving vCPU once. No
 * more: with EVENT_IDX a receiving guest that refills its RX ring before it runs out never kicks the RX ring, TX
 * completions raise no interrupt while the sender has more to send, and a worker woken for one frame is never
 * preempted (its time slice starts when it wakes). Counts, never timings.
 */
class WakeBudgetTest {

    private static final int WARM_UP = 8;
    private static final int FRAMES = 40;
    /** A send time every 4 ms: every thread on the path sleeps between frames, even on a loaded machine. */
    private static final double INTERVAL_NANOS = 4e6;

    @ParameterizedTest
    @EnumSource(WorkerModel.class)
    void aFrameCostsOneKickOneInterruptAndOneWakeOfEachThread(WorkerModel model) throws Exception {
        try (HrtimerBase clock = new HrtimerBase("test-hrtimer"); SwitchedVms vms = new SwitchedVms(model)) {
            VM a = vms.a;
            VM b = vms.b;
            VmmBackend ba = vms.backendA;
            VmmBackend bb = vms.backendB;
            byte[] macB = SwitchedVms.MAC_B;
            QueuePairDriver sender = a.driver(0).pair(0);
            QueuePairDriver receiver = b.driver(0).pair(0);
            sender.setPacingClock(clock);
            a.startVcpu(0, 0, TrafficSource.paced(64, INTERVAL_NANOS, WARM_UP, macB), RxSink.NONE, false);
            b.startVcpu(0, 0, null, RxSink.NONE, false);
            SwitchedVms.awaitFrames(receiver.stats(), WARM_UP);

            Snapshot before = Snapshot.of(sender, receiver, ba, bb);
            sender.transmit(TrafficSource.paced(64, INTERVAL_NANOS, FRAMES, macB));
            SwitchedVms.awaitFrames(receiver.stats(), WARM_UP + FRAMES);
            Snapshot after = Snapshot.of(sender, receiver, ba, bb);

            String at = model + ", " + FRAMES + " frames: ";
            long txKicks = after.senderKicks - before.senderKicks - (after.senderRxKicks - before.senderRxKicks);
            assertTrue(txKicks <= FRAMES, at + "TX kicks " + txKicks);
            assertEquals(0, after.receiverRxKicks - before.receiverRxKicks,
                    at + "RX kicks of a receiver that refills before it runs out (EVENT_IDX)");
            assertEquals(0, after.deviceRxKicks - before.deviceRxKicks, at + "kicks the receiver's RX ring got");
            assertEquals(0, after.senderRxKicks - before.senderRxKicks, at + "RX kicks of the sender");
            long interrupts = after.receiverInterrupts - before.receiverInterrupts;
            assertTrue(interrupts <= FRAMES, at + "interrupts taken by the receiver " + interrupts);
            // The receiver halts only to wait for an interrupt; the sender once per send time, once more
            // for the new plan's signal and once when its plan is done (it then wants its TX completions).
            long receiverHalts = after.receiverHalts - before.receiverHalts;
            assertTrue(receiverHalts <= FRAMES + 1, at + "receiver vCPU halts " + receiverHalts);
            long senderHalts = after.senderHalts - before.senderHalts;
            assertTrue(senderHalts <= FRAMES + 2, at + "sender vCPU halts " + senderHalts);
            long txRuns = after.txRuns - before.txRuns;
            long rxRuns = after.rxRuns - before.rxRuns;
            assertTrue(txRuns <= FRAMES + 1, at + "TX handler runs " + txRuns);
            assertTrue(rxRuns <= FRAMES + 1, at + "RX handler runs " + rxRuns);
            // TX interrupts are off while frames are due: one may come for the completion that crossed the
            // used_event the idle sender left, one for the last frame (the plan done, it asks for them again).
            long txCalls = after.txCalls - before.txCalls;
            assertTrue(txCalls <= 2, at + "TX completion interrupts " + txCalls);
            // One sleep per frame for each device's worker (a pool's kthreads may serve both devices).
            long sleeps = after.workerSleeps - before.workerSleeps;
            assertTrue(sleeps <= 2L * (FRAMES + 1), at + "worker sleeps " + sleeps);
            // A worker's slice starts when it wakes: one woken per frame is never preempted. (Only a kick that
            // lands between its last empty round and its sleep keeps it awake into the next frame; a quarter
            // leaves room for that and still fails a slice that outlives the sleeps, one preemption per run.)
            long preemptions = after.workerPreemptions - before.workerPreemptions;
            assertTrue(preemptions < FRAMES / 4, at + "worker preemptions " + preemptions);
        }
    }

    /** The counters the budget is about, read at one moment. */
    private record Snapshot(long senderKicks, long senderRxKicks, long senderHalts, long receiverRxKicks,
                            long receiverInterrupts, long receiverHalts, long deviceRxKicks, long txRuns, long rxRuns,
                            long txCalls, long workerSleeps, long workerPreemptions) {

        static Snapshot of(QueuePairDriver sender, QueuePairDriver receiver, VmmBackend a, VmmBackend b) {
            PairStats s = sender.stats();
            PairStats r = receiver.stats();
            Set<Task> tasks = new LinkedHashSet<>();
            long preemptions = 0;
            for (VmmBackend be : new VmmBackend[] {a, b}) {
                for (VhostWorker w : be.net().device().workers()) {
                    assertNotNull(w.thread(), w + " has a thread");
                    tasks.add(w.thread().task());
                    preemptions += w.preemptions();
                }
            }
            long sleeps = 0;
            for (Task t : tasks) {
                sleeps += t.voluntarySwitches();
            }
            return new Snapshot(s.kicks(), s.rxKicks(), s.halts(), r.rxKicks(), r.interrupts(), r.halts(),
                    b.net().rx().kicks(), a.net().tx().counters().get(RingCounter.RUNS),
                    b.net().rx().counters().get(RingCounter.RUNS), a.net().tx().counters().get(RingCounter.INTERRUPTS),
                    sleeps, preemptions);
        }
    }
}
