package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.Resched;
import dev.loomvisor.core.testing.CarrierHogs;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A busy-polling ring ends its poll in its timeout once the frames stop, and its worker goes back to an untimed
 * sleep on its kick. On a virtual worker the poll also ends as soon as another virtual thread waits for a carrier
 * (vhost_net_busy_poll's need_resched()), however long its timeout: a poll must never keep the threads that fill
 * its ring off the carrier. Counts and thread states, never timings.
 */
class BusyPollReschedTest {

    /** Long enough that an empty ring is looked at many times per poll, short enough to time out in the test. */
    private static final long BUSY_MICROS = 2_000;
    /** A timeout no test waits for: a poll that ends before it ended for another reason. */
    private static final long ENDLESS_MICROS = 600_000_000;
    private static final long FRAMES = 500;

    @ParameterizedTest
    @EnumSource(value = WorkerModel.class, names = {"USER_WORKER", "KTHREAD_VIRTUAL", "USER_WORKER_PLATFORM", "KTHREAD"})
    void aPollOfAnEmptyRingEndsAndTheWorkerSleepsUntimed(WorkerModel model) throws Exception {
        try (SwitchedVms vms = new SwitchedVms(model, BUSY_MICROS)) {
            var rx = vms.b.driver(0).pair(0).stats();
            vms.b.startVcpu(0, 0, null, RxSink.NONE, false);
            vms.a.startVcpu(0, 0, TrafficSource.fixed(64, 0, FRAMES, SwitchedVms.MAC_B), RxSink.NONE, false);
            SwitchedVms.awaitFrames(rx, FRAMES);
            var tx = vms.backendA.net().tx();
            awaitAsleep(vms.backendA, model);
            awaitAsleep(vms.backendB, model);
            String at = model + ": ";
            assertTrue(tx.counters().get(RingCounter.BUSY_POLL_TIMEOUTS)
                    + tx.counters().get(RingCounter.BUSY_POLL_RESCHEDS) > 0, at + "the TX poll ended without a frame");
            if (model.carrier() != Carrier.VIRTUAL) {
                long rescheds = tx.counters().get(RingCounter.BUSY_POLL_RESCHEDS)
                        + vms.backendB.net().rx().counters().get(RingCounter.BUSY_POLL_RESCHEDS);
                assertEquals(0, rescheds, at + "a platform worker's poll runs its idle strategy; the OS preempts it");
            }
        }
    }

    /**
     * The sender's TX ring polls with a timeout of ten minutes. Once the frames have arrived, more virtual threads
     * than there are carriers start spinning, one by one: one of them waits, the poll sees it and ends, and the
     * worker sleeps untimed. (Only that ring polls: a poll holds its ring's mutex, as in the kernel, and the
     * teardown from this platform thread, which no poll can see waiting, must not wait ten minutes for it.)
     */
    @ParameterizedTest
    @EnumSource(value = WorkerModel.class, names = {"USER_WORKER", "KTHREAD_VIRTUAL"})
    void aVirtualWorkersPollEndsWhenAVirtualThreadWaitsForACarrier(WorkerModel model) throws Exception {
        assertTrue(Resched.seesScheduler(), "scripts/jvm.options opens java.lang, so the scheduler's queues are read");
        try (SwitchedVms vms = new SwitchedVms(model)) {
            var device = vms.backendA.net().device();
            device.setVringBusyloopTimeout(vms.qemu.mainTask(), VirtioNet.TX, ENDLESS_MICROS);
            var rx = vms.b.driver(0).pair(0).stats();
            vms.b.startVcpu(0, 0, null, RxSink.NONE, false);
            vms.a.startVcpu(0, 0, TrafficSource.fixed(64, 0, FRAMES, SwitchedVms.MAC_B), RxSink.NONE, false);
            SwitchedVms.awaitFrames(rx, FRAMES);
            var tx = vms.backendA.net().tx();
            try (CarrierHogs hogs = new CarrierHogs()) {
                hogs.addUntil(() -> tx.counters().get(RingCounter.BUSY_POLL_RESCHEDS) != 0,
                        model + ": the TX poll never saw the waiting thread");
            }
            awaitAsleep(vms.backendA, model);
            assertEquals(0, tx.counters().get(RingCounter.BUSY_POLL_TIMEOUTS), model + ": no poll reached its timeout");
            device.setVringBusyloopTimeout(vms.qemu.mainTask(), VirtioNet.TX, 0);
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
