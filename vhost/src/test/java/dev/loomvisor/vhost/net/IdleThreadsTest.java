package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Task;
import dev.loomvisor.core.timer.HrtimerBase;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vmm.VM;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * An idle data path costs nothing: with two VMs' devices set up behind the switch and no frame moving, every
 * thread serving them (vhost workers, pool kthreads), the guests' vCPUs and the pacing clock block without a
 * timeout: none is seen RUNNABLE (spinning) or TIMED_WAITING (polling on a timer) over a sampled window,
 * before frames moved, after a closed-loop burst and after a paced one.
 */
class IdleThreadsTest {

    private static final int SAMPLES = 100;
    private static final long BURST = 2_000;

    @ParameterizedTest
    @EnumSource(WorkerModel.class)
    void workersOfIdleDevicesBlockWithoutATimeout(WorkerModel model) throws Exception {
        try (HrtimerBase clock = new HrtimerBase("test-hrtimer"); SwitchedVms vms = new SwitchedVms(model)) {
            VM a = vms.a;
            VM b = vms.b;
            VmmBackend ba = vms.backendA;
            VmmBackend bb = vms.backendB;
            byte[] macB = SwitchedVms.MAC_B;
            assertNotNull(ba.net(), "DRIVER_OK handed the rings to vhost-net");
            a.driver(0).pair(0).setPacingClock(clock);
            List<Thread> serving = servingThreads(ba, bb);
            serving.add(clock.clockThread());
            assertBlockedWithoutTimeout(model + ", set up, no frame sent", serving);

            // A burst, then silence: the workers and vCPUs must go back to an untimed sleep.
            a.startVcpu(0, 0, TrafficSource.fixed(64, 0, BURST, macB), RxSink.NONE, false);
            var rx = b.driver(0).pair(0).stats();
            b.startVcpu(0, 0, null, RxSink.NONE, false);
            SwitchedVms.awaitFrames(rx, BURST);
            List<Thread> all = servingThreads(ba, bb);
            all.add(clock.clockThread());
            all.addAll(vcpuThreads(a, b));
            assertBlockedWithoutTimeout(model + ", after a burst", all);

            // A paced burst (a send time every 20 us, through the clock), then silence again.
            a.driver(0).pair(0).transmit(TrafficSource.paced(64, 20_000, BURST, macB));
            SwitchedVms.awaitFrames(rx, 2 * BURST);
            assertTrue(clock.timers() == 1, "the paced vCPU armed its timer on the clock: " + clock.timers());
            assertBlockedWithoutTimeout(model + ", after a paced burst", all);
        }
    }

    /** Every vCPU thread of the VMs. */
    private static List<Thread> vcpuThreads(VM... vms) {
        List<Thread> threads = new ArrayList<>();
        for (VM vm : vms) {
            for (Task t : vm.vcpus()) {
                assertNotNull(t.thread(), vm.name() + "'s vCPU has a thread");
                threads.add(t.thread());
            }
        }
        return threads;
    }

    /** The threads of every vhost worker of both devices (a pool's kthreads for kthread-pool). */
    private static List<Thread> servingThreads(VmmBackend... backends) {
        Set<Thread> threads = new LinkedHashSet<>();
        for (VmmBackend be : backends) {
            for (VhostWorker w : be.net().device().workers()) {
                Thread t = w.thread().task().thread();
                assertNotNull(t, w + " has a thread");
                threads.add(t);
            }
        }
        assertTrue(!threads.isEmpty(), "the devices have workers");
        return new ArrayList<>(threads);
    }

    /**
     * Waits (bounded) for every thread to settle into WAITING, then samples them: any RUNNABLE or
     * TIMED_WAITING sighting fails. A thread mid-wake-up would show RUNNABLE once; with nothing to wake it,
     * none may.
     */
    private static void assertBlockedWithoutTimeout(String what, List<Thread> threads) throws InterruptedException {
        long end = System.nanoTime() + 30_000_000_000L;
        while (!threads.stream().allMatch(t -> t.getState() == Thread.State.WAITING)) {
            assertTrue(System.nanoTime() - end < 0, what + ": never all WAITING: " + states(threads));
            Thread.sleep(1);
        }
        for (int i = 0; i < SAMPLES; i++) {
            Thread.sleep(5);
            for (Thread t : threads) {
                Thread.State s = t.getState();
                assertTrue(s == Thread.State.WAITING, what + ": " + t + " seen " + s + " at sample " + i
                        + " of " + SAMPLES + "; " + states(threads));
            }
        }
    }

    private static String states(List<Thread> threads) {
        StringBuilder sb = new StringBuilder();
        for (Thread t : threads) {
            sb.append(t.getName()).append('=').append(t.getState()).append(' ');
        }
        return sb.toString();
    }
}
