package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.EchoBackend;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.backend.Inet;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.core.worker.WorkerModel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * DPDK 22.11's virtio-user (testpmd) as the frontend of Loomvisor's vhost-user server: a driver nobody
 * here wrote, negotiating features, mapping its memory and running its rings against ours.
 */
@Timeout(60)
class TestpmdPeerTest {

    private static final int FRAME = 64;
    private static final long MILLION = 1_000_000;
    private static final Duration WAIT = Duration.ofSeconds(40);
    private static final long HOST_MAC = 0x0200_0000_0001L;

    private Path dir;
    private Path sock;

    @BeforeEach
    void setUp() throws Exception {
        dir = Peers.tempDir();
        sock = dir.resolve("lv.sock");
    }

    @AfterEach
    void tearDown() {
        Peers.deleteTree(dir);
    }

    @Test
    void testpmdTxonlyIntoTheSink() throws Exception {
        try (Loomvisor lv = Loomvisor.serve(sock, 1, pair -> new SinkBackend(FRAME));
             Testpmd pmd = Testpmd.frontend(sock, 1)) {
            pmd.forward("txonly");
            pmd.txLength(FRAME);
            pmd.startForwarding();
            SinkBackend sink = lv.awaitBackend(0, 10_000);
            long frames = Peers.awaitAtLeast(() -> sink.counters().get(SinkBackend.Counter.FRAMES), MILLION, WAIT);
            pmd.stopForwarding();
            assertTrue(frames >= MILLION, () -> "the sink counted " + frames + " frames; " + lv.closes());
            Testpmd.Stats sent = pmd.stats();
            long all = Peers.awaitAtLeast(() -> sink.counters().get(SinkBackend.Counter.FRAMES), sent.txPackets(), Duration.ofSeconds(5));
            assertEquals(sent.txPackets(), all, "every frame testpmd sent reached the sink once");
            assertEquals(0, sink.counters().get(SinkBackend.Counter.WRONG_LENGTH), "frames of another length");
            assertEquals(all * FRAME, sink.counters().get(SinkBackend.Counter.BYTES));
            assertTrue(lv.closes().isEmpty(), () -> "sessions closed: " + lv.closes());
        }
    }

    /**
     * testpmd's mac forwarding through the echo: frames go round both ways, under every threading model
     * (each serves a real frontend).
     */
    @ParameterizedTest
    @EnumSource(WorkerModel.class)
    void testpmdMacForwardingThroughTheEcho(WorkerModel model) throws Exception {
        try (Loomvisor lv = Loomvisor.serve(sock, model, 1,
                pair -> new EchoBackend(HOST_MAC, Inet.parseIpv4("198.51.100.1")));
             Testpmd pmd = Testpmd.frontend(sock, 1)) {
            pmd.forward("mac");
            // One burst first: mac forwarding only forwards what it receives, so something must start the loop.
            pmd.startTxFirst();
            EchoBackend echo = lv.awaitBackend(0, 10_000);
            long echoed = Peers.awaitAtLeast(() -> echo.counters().get(EchoBackend.Counter.ECHOED), 100_000, WAIT);
            pmd.stopForwarding();
            Testpmd.Stats s = pmd.stats();
            assertTrue(echoed >= 100_000, () -> model + ": echoed " + echoed + "; testpmd " + s + "; " + echo.counters());
            assertTrue(s.rxPackets() >= 100_000 && s.txPackets() >= s.rxPackets(),
                    () -> model + ": frames go round both ways: testpmd " + s);
            assertEquals(0, echo.counters().get(EchoBackend.Counter.DROP_GROUP) + echo.counters().get(EchoBackend.Counter.DROP_RUNT));
            assertTrue(lv.closes().isEmpty(), () -> "sessions closed: " + lv.closes());
        }
    }

    @Test
    void generatorIntoTestpmdRxonly() throws Exception {
        try (Loomvisor lv = Loomvisor.serve(sock, 1,
                pair -> new GeneratorBackend(HOST_MAC, Frames.BROADCAST, FRAME, Long.MAX_VALUE));
             Testpmd pmd = Testpmd.frontend(sock, 1)) {
            pmd.forward("rxonly");
            pmd.startForwarding();
            Testpmd.Stats got = pmd.awaitStats(s -> s.rxPackets() >= MILLION, WAIT);
            pmd.stopForwarding();
            GeneratorBackend gen = lv.backend(0);
            assertTrue(got.rxPackets() >= MILLION, () -> "testpmd received " + got + "; " + lv.closes());
            assertEquals(FRAME * got.rxPackets(), got.rxBytes(), "64-byte frames");
            assertEquals(0, got.rxErrors());
            long generated = gen.counters().get(GeneratorBackend.Counter.GENERATED_FRAMES);
            assertTrue(generated >= got.rxPackets(), () -> "generated " + generated + " < received " + got.rxPackets());
            assertTrue(lv.closes().isEmpty(), () -> "sessions closed: " + lv.closes());
        }
    }

    @Test
    void twoQueuePairsBothCarryTraffic() throws Exception {
        try (Loomvisor lv = Loomvisor.serve(sock, 2, pair -> new SinkBackend(FRAME));
             Testpmd pmd = Testpmd.frontend(sock, 2)) {
            pmd.forward("txonly");
            pmd.txLength(FRAME);
            pmd.startForwarding();
            SinkBackend q0 = lv.awaitBackend(0, 10_000);
            SinkBackend q1 = lv.awaitBackend(1, 10_000);
            long f0 = Peers.awaitAtLeast(() -> q0.counters().get(SinkBackend.Counter.FRAMES), 200_000, WAIT);
            long f1 = Peers.awaitAtLeast(() -> q1.counters().get(SinkBackend.Counter.FRAMES), 200_000, WAIT);
            pmd.stopForwarding();
            Testpmd.Stats sent = pmd.stats();
            assertTrue(f0 >= 200_000 && f1 >= 200_000, () -> "pair 0: " + f0 + ", pair 1: " + f1 + " frames");
            LongSupplier both = () -> q0.counters().get(SinkBackend.Counter.FRAMES) + q1.counters().get(SinkBackend.Counter.FRAMES);
            assertEquals(sent.txPackets(), Peers.awaitAtLeast(both, sent.txPackets(), Duration.ofSeconds(5)),
                    "every frame sent on either queue arrived once");
            assertEquals(0, q0.counters().get(SinkBackend.Counter.WRONG_LENGTH) + q1.counters().get(SinkBackend.Counter.WRONG_LENGTH));
            assertTrue(lv.closes().isEmpty(), () -> "sessions closed: " + lv.closes());
        }
    }
}
