package dev.loomvisor.vhost.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Signal;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.fixture.VmPair;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vhost.work.VhostWorker;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The owner is SIGKILLed while traffic runs (6.10+ semantics): each user worker detaches from its rings,
 * runs its leftover work (a pending flush completes), the devices go inert and queueing fails, and
 * release (the exit closing the device files) completes in bounded time with no Java thread left.
 */
class OwnerKillTest {

    @ParameterizedTest
    @EnumSource(value = WorkerModel.class, names = {"USER_WORKER", "USER_WORKER_PLATFORM"})
    void sigkillUnderTrafficLeavesInertDevicesAndNoThreads(WorkerModel model) throws Exception {
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        Task owner = vmm.mainTask();
        try (WorkerFactory f = model.factory(kernel)) {
            VmPair pair = VmPair.open(owner, f, VmPair.Options.defaults());
            try {
                pair.guest(0).plan(pair.guest(1).mac(), 64, Long.MAX_VALUE, 0);
                pair.guest(1).plan(pair.guest(0).mac(), 64, Long.MAX_VALUE, 0);
                pair.guest(0).start();
                pair.guest(1).start();
                assertTrue(Owners.await(Duration.ofSeconds(20), () -> pair.guest(1).received() > 10_000
                        && pair.guest(0).received() > 10_000), "traffic flows");
                List<VhostWorker> workers = new ArrayList<>(pair.net(0).device().workers());
                workers.addAll(pair.net(1).device().workers());
                // A flush racing the kill must still return: the kill path runs it as leftover work.
                CompletableFuture<Void> flush = CompletableFuture.runAsync(() -> pair.net(0).device().flush());

                vmm.kill(Signal.SIGKILL);

                // The kill path marks the worker killed before it detaches the rings (as vhost_worker_killed
                // does), so wait until it has left, not just until it was marked.
                assertTrue(Owners.await(Duration.ofSeconds(10), () -> workers.stream()
                        .allMatch(w -> w.isKilled() && w.thread().task().isDead())), "every worker took the kill path");
                flush.get(10, TimeUnit.SECONDS);
                for (int i = 0; i < 2; i++) {
                    for (VhostVirtqueue vq : List.of(pair.net(i).rx(), pair.net(i).tx())) {
                        assertNull(vq.worker(), "detached from " + vq);
                        assertFalse(vq.queueHandler(), "queueing on an inert ring returns false");
                    }
                }
                for (VhostWorker w : workers) {
                    assertTrue(Owners.await(Duration.ofSeconds(10), () -> w.thread().task().isDead()), w + " exited");
                    assertFalse(w.hasPendingWork(), "leftover work ran");
                }
                // Inert: with the guests still pushing, nothing moves through the devices any more.
                long frames = pair.net(0).tx().counters().get(RingCounter.FRAMES);
                long kicksBefore = pair.net(0).tx().kicks();
                assertTrue(Owners.await(Duration.ofSeconds(10), () -> pair.net(0).tx().kicks() > kicksBefore
                        || !pair.guest(0).isRunning() || pair.guest(0).sent() == pair.guest(0).txCompleted() + 256),
                        "the guest keeps kicking or has filled its ring");
                assertEquals(frames, pair.net(0).tx().counters().get(RingCounter.FRAMES), "no frame after the kill");
            } finally {
                pair.stopGuests();
            }
            // The process exits: its file table closes both devices (release), within a bounded wait.
            CompletableFuture<Void> exit = CompletableFuture.runAsync(vmm::exit);
            exit.get(10, TimeUnit.SECONDS);
            assertTrue(pair.net(0).device().isReleased());
            assertTrue(pair.net(1).device().isReleased());
            pair.close();
        }
        assertTrue(Owners.await(Duration.ofSeconds(10),
                () -> kernel.liveThreads(Carrier.VIRTUAL) == 0 && kernel.liveThreads(Carrier.PLATFORM) == 0),
                "no Java thread left: " + kernel.liveThreads(Carrier.VIRTUAL) + " virtual, "
                        + kernel.liveThreads(Carrier.PLATFORM) + " platform");
    }
}
