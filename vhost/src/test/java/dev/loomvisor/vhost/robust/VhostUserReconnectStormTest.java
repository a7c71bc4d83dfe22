package dev.loomvisor.vhost.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.user.CloseCause;
import dev.loomvisor.vhost.user.VhostUserServer;
import dev.loomvisor.vhost.user.VhostUserSession;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A front-end that wants more queue pairs than the server has gives up after GET_QUEUE_NUM and reconnects
 * at once, in a loop (QEMU with {@code queues=2} against one pair does so about 80 times a second, forever).
 * Meanwhile a well-behaved front-end connects and carries traffic, and the server holds nothing of the
 * refused ones afterwards. CI: 10 s; scripts/soak: one minute.
 */
class VhostUserReconnectStormTest {

    static final Duration STORM = Duration.ofSeconds(Soak.size(10, 60));
    static final int STORMERS = 2;

    @TempDir
    Path dir;

    @Test
    void aGoodFrontendIsServedDuringAReconnectStorm() throws Exception {
        Closes closes = new Closes();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("storm.sock"), VhostUserServer.Config.defaults(), closes)) {
            VhostUserChurnTest.Footprint before = VhostUserChurnTest.Footprint.settled(null);
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong attempts = new AtomicLong();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> stormers = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int i = 0; i < STORMERS; i++) {
                stormers.add(Thread.ofPlatform().name("stormer-" + i).start(() -> {
                    try (ShortClient c = new ShortClient(server.socket())) {
                        while (!stop.get()) {
                            long queues = c.queueNum();
                            if (queues != 1) {
                                throw new AssertionError("GET_QUEUE_NUM said " + queues);
                            }
                            attempts.incrementAndGet(); // wanted 2: gives up, closes, reconnects
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }));
            }
            // The good front-end comes in the middle of the storm, carries frames, and leaves.
            long half = t0 + STORM.toNanos() / 2;
            while (System.nanoTime() < half && failure.get() == null) {
                Thread.sleep(Math.max(1, (half - System.nanoTime()) / 1_000_000));
            }
            long goodStart = System.nanoTime();
            long frames = 1000;
            try (VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
                fe.handshake(Traffic.WANTED);
                fe.setupVring(0, 256, true);
                fe.setupVring(1, 256, true);
                VhostUserSession good = Traffic.await(() -> newest(server), s -> s != null && s.messages() > 10, "good session");
                for (int i = 0; i < frames; i++) {
                    Traffic.send(fe, 1, Traffic.unicast(60, i));
                }
                Traffic.awaitAccount(good, a -> a.txDelivered() == frames, "the good front-end's frames reached the sink");
                assertTrue(good.backend(0) instanceof SinkBackend);
            }
            double goodSeconds = (System.nanoTime() - goodStart) / 1e9;
            while (System.nanoTime() - t0 < STORM.toNanos() && failure.get() == null) {
                Thread.sleep(Math.max(1, (t0 + STORM.toNanos() - System.nanoTime()) / 1_000_000));
            }
            stop.set(true);
            for (Thread t : stormers) {
                t.join();
            }
            assertNull(failure.get());
            long n = attempts.get();
            assertTrue(closes.awaitClosed((int) n + 1, 60), "every refused session and the good one ended");
            double seconds = (System.nanoTime() - t0) / 1e9;

            VhostUserServer.Totals t = server.totals();
            assertEquals(0, t.open());
            assertEquals(t.opened(), t.closed() + t.open());
            assertEquals(n + 1, t.closed());
            assertEquals(n + 1, (long) t.closeCauses().get(CloseCause.PEER_CLOSED));
            assertEquals(frames, t.closedAccount().txDelivered(), "only the good front-end sent frames");
            VhostUserChurnTest.Footprint after = VhostUserChurnTest.Footprint.settled(before);
            String figures = String.format(Locale.ROOT,
                    "seconds=%.1f refused-reconnects=%d rate=%.0f/s good-session-seconds=%.2f threads-delta=%d "
                            + "fds-delta=%d direct-delta-kib=%d", seconds, n, n / seconds, goodSeconds,
                    after.threads() - before.threads(), after.fds() - before.fds(), (after.direct() - before.direct()) / 1024);
            Soak.report("vhost-user.reconnect-storm", figures);
            assertTrue(n > 100, "the storm reconnected often: " + figures);
            assertTrue(after.threads() <= before.threads() + VhostUserChurnTest.THREAD_SLACK, figures);
            assertTrue(after.fds() <= before.fds() + VhostUserChurnTest.FD_SLACK, figures);
            assertTrue(after.direct() <= before.direct() + VhostUserChurnTest.DIRECT_SLACK, figures);
        }
    }

    /** Beyond --max-sessions a connection is closed at once and counted as refused; a freed slot serves again. */
    @Test
    void connectionsBeyondTheLimitAreRefusedAtOnce() throws Exception {
        Closes closes = new Closes();
        var config = VhostUserServer.Config.defaults().withMaxSessions(2);
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("limit.sock"), config, closes);
             VhostUserFrontend a = VhostUserFrontend.connect(server.socket(), 1 << 20);
             ShortClient c = new ShortClient(server.socket())) {
            a.getFeatures();
            try (VhostUserFrontend b = VhostUserFrontend.connect(server.socket(), 1 << 20)) {
                b.getFeatures();
                for (int i = 0; i < 100; i++) {
                    assertFalse(c.shortSession(), "refused: two sessions are open");
                }
                assertTrue(closes.awaitRefused(100, 10));
                VhostUserServer.Totals t = server.totals();
                assertEquals(2, t.open());
                assertEquals(100, t.refused());
                assertEquals(100L, (long) t.refuseCauses().get(CloseCause.SESSION_LIMIT));
                assertEquals(0, t.opened() - t.closed() - t.open());
            }
            assertTrue(closes.awaitClosed(1, 10));
            assertTrue(c.shortSession(), "a slot freed: served again");
            assertTrue(closes.awaitClosed(1, 10));
        }
    }

    private static VhostUserSession newest(VhostUserServer server) {
        VhostUserSession last = null;
        for (VhostUserSession s : server.sessions()) {
            if (last == null || s.id() > last.id()) {
                last = s;
            }
        }
        return last;
    }
}
