package dev.loomvisor.vhost.user;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import dev.loomvisor.vhost.work.VhostWorker;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --busy-poll on the vhost-user server: each ring polls on a worker of its own, and once frames stop it goes
 * back to its kick: the worker's thread parks (its task state and its Java thread state say so, not a
 * timer), and a kick after that still brings the next frames in.
 */
class VhostUserBusyPollTest {

    /** Long enough that a poll round is seen, short enough that the fallback comes within the test. */
    static final long BUSY_MICROS = 2_000;
    static final long WAIT_NANOS = TimeUnit.SECONDS.toNanos(10);

    @TempDir
    Path dir;

    @Test
    void aPollingTxRingParksWhenTheFrontendStopsAndWakesOnTheNextKick() throws Exception {
        for (WorkerModel m : new WorkerModel[] {WorkerModel.USER_WORKER, WorkerModel.USER_WORKER_PLATFORM}) {
            Sessions sessions = new Sessions();
            var cfg = VhostUserServer.Config.defaults().withModel(m).withBusyPollMicros(BUSY_MICROS);
            try (VhostUserServer server = VhostUserServer.start(dir.resolve(m.modelName() + "-tx.sock"), cfg, sessions);
                 VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
                fe.handshake(VhostUserServerTest.WANTED);
                fe.setupVring(0, 256, true);
                fe.setupVring(1, 256, true);
                VhostUserSession s = sessions.nextOpened();
                VhostUserServerTest.send(fe, 1, 2000, 60);
                SinkBackend sink = VhostUserServerTest.sinkOf(s, 0);
                VhostUserServerTest.awaitFrames(sink, 2000);
                VhostNet net = s.net(0);
                assertNotSame(net.tx().worker(), net.rx().worker(), m + ": each polling ring has a worker of its own");
                awaitParked(net.tx(), m);
                awaitParked(net.rx(), m);
                assertTrue(net.tx().counters().get(RingCounter.BUSY_POLL_TIMEOUTS) > 0, m + ": the TX poll timed out");
                long kicks = net.tx().kicks();
                VhostUserServerTest.send(fe, 1, 10, 60);
                VhostUserServerTest.awaitFrames(sink, 2010);
                assertTrue(net.tx().kicks() > kicks, m + ": the frames after the fallback came with a kick");
                awaitParked(net.tx(), m);
            }
        }
    }

    @Test
    void aGeneratorPollsForRxBuffersAndParksWhenItHasNoMoreFrames() throws Exception {
        for (WorkerModel m : new WorkerModel[] {WorkerModel.USER_WORKER, WorkerModel.USER_WORKER_PLATFORM}) {
            Sessions sessions = new Sessions();
            var cfg = VhostUserServer.Config.defaults().withModel(m).withBusyPollMicros(BUSY_MICROS)
                    .withBackends((session, k) -> new GeneratorBackend(1, 2, 100, 3000));
            try (VhostUserServer server = VhostUserServer.start(dir.resolve(m.modelName() + "-rx.sock"), cfg, sessions);
                 VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
                fe.handshake(VhostUserServerTest.WANTED);
                fe.setupVring(0, 256, true);
                fe.setupVring(1, 256, true);
                VhostUserServerTest.receive(fe, 0, 3000, 100);
                VhostUserSession s = sessions.nextOpened();
                VhostNet net = s.net(0);
                awaitParked(net.rx(), m);
                awaitParked(net.tx(), m);
                assertEquals(3000, net.rx().counters().get(RingCounter.FRAMES), m + ": every generated frame, once");
            }
        }
    }

    /**
     * Waits (bounded) until the ring's worker sleeps on its notifications: the task committed to park and
     * its thread is parked. A worker still polling never gets there, so the bound is what fails it.
     */
    static void awaitParked(VhostVirtqueue vq, WorkerModel m) throws InterruptedException {
        VhostWorker w = vq.worker();
        Task t = w.thread().task();
        long deadline = System.nanoTime() + WAIT_NANOS;
        while (!(t.state() == Task.TASK_PARKED && t.thread().getState() == Thread.State.WAITING)) {
            assertTrue(System.nanoTime() < deadline, m + ": " + w + " still running " + WAIT_NANOS / 1_000_000
                    + " ms after the frames stopped (task state " + t.state() + ", thread " + t.thread().getState() + ")");
            Thread.sleep(1);
        }
    }
}
