package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A busy-polling ring on a virtual worker lets the other virtual threads have its carrier while its ring is
 * empty (it yields, it does not spin), and a platform worker does not (the OS preempts it). Either way the poll
 * ends in its timeout once the frames stop and the worker goes back to an untimed sleep on its kick. Counts and
 * thread states, never timings.
 */
class BusyPollYieldTest {

    /** Long enough that an empty ring is looked at many times per poll, short enough to time out in the test. */
    private static final long BUSY_MICROS = 2_000;
    private static final long FRAMES = 500;

    @ParameterizedTest
    @EnumSource(value = WorkerModel.class, names = {"USER_WORKER", "KTHREAD_VIRTUAL", "USER_WORKER_PLATFORM", "KTHREAD"})
    void aPollOfAnEmptyRingYieldsOnAVirtualWorkerOnlyAndEndsInAnUntimedSleep(WorkerModel model) throws Exception {
        try (SwitchedVms vms = new SwitchedVms(model, BUSY_MICROS)) {
            var rx = vms.b.driver(0).pair(0).stats();
            vms.b.startVcpu(0, 0, null, RxSink.NONE, false);
            vms.a.startVcpu(0, 0, TrafficSource.fixed(64, 0, FRAMES, SwitchedVms.MAC_B), RxSink.NONE, false);
            SwitchedVms.awaitFrames(rx, FRAMES);
            var tx = vms.backendA.net().tx();
            awaitAsleep(vms.backendA, model);
            awaitAsleep(vms.backendB, model);
            String at = model + ": ";
            assertTrue(tx.counters().get(RingCounter.BUSY_POLL_TIMEOUTS) > 0, at + "the TX poll timed out");
            long yields = tx.counters().get(RingCounter.BUSY_POLL_YIELDS)
                    + vms.backendB.net().rx().counters().get(RingCounter.BUSY_POLL_YIELDS);
            if (model.carrier() == Carrier.VIRTUAL) {
                assertTrue(yields > 0, at + "the polls of empty rings yielded the carrier");
            } else {
                assertEquals(0, yields, at + "a platform worker's poll runs its idle strategy, it does not count yields");
            }
        }
    }

    /** Waits (bounded) until every worker of the device sleeps untimed (WAITING: not polling, not on a timer). */
    private static void awaitAsleep(VmmBackend backend, WorkerModel model) throws InterruptedException {
        long end = System.nanoTime() + 30_000_000_000L;
        for (VhostWorker w : backend.net().device().workers()) {
            Thread t = w.thread().task().thread();
            while (t.getState() != Thread.State.WAITING) {
                assertTrue(System.nanoTime() - end < 0, model + ": " + w + " never slept untimed: " + t.getState());
                Thread.sleep(1);
            }
        }
    }
}
