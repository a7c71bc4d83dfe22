package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.EchoBackend;
import dev.loomvisor.vhost.backend.Inet;
import dev.loomvisor.vhost.backend.SinkBackend;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DPDK's virtio-user (testpmd) with packed virtqueues ({@code packed_vq=1}, with {@code in_order=0} and
 * {@code in_order=1}, its default) against Loomvisor's vhost-user server: VIRTIO_F_RING_PACKED (and IN_ORDER) negotiated, the wrap counters carried by
 * SET_VRING_BASE, a million frames each way the test sends them.
 */
@Timeout(90)
class TestpmdPackedPeerTest {

    private static final int FRAME = 64;
    private static final long MILLION = 1_000_000;
    private static final Duration WAIT = Duration.ofSeconds(60);
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

    @ParameterizedTest
    @ValueSource(strings = {"packed_vq=1,in_order=0", "packed_vq=1,in_order=1"})
    void txonlyIntoTheSink(String devargs) throws Exception {
        try (Loomvisor lv = Loomvisor.serve(sock, 1, pair -> new SinkBackend(FRAME));
             Testpmd pmd = Testpmd.frontend(sock, 1, devargs)) {
            pmd.forward("txonly");
            pmd.txLength(FRAME);
            pmd.startForwarding();
            SinkBackend sink = lv.awaitBackend(0, 10_000);
            long frames = Peers.awaitAtLeast(() -> sink.counters().get(SinkBackend.Counter.FRAMES), MILLION, WAIT);
            pmd.stopForwarding();
            assertTrue(lv.layout().startsWith("packed"), () -> "negotiated " + lv.layout());
            assertEquals(devargs.contains("in_order=1"), lv.layout().contains("in-order"), lv.layout());
            assertTrue(frames >= MILLION, () -> "the sink counted " + frames + " frames; " + lv.closes());
            Testpmd.Stats sent = pmd.stats();
            long all = Peers.awaitAtLeast(() -> sink.counters().get(SinkBackend.Counter.FRAMES), sent.txPackets(), Duration.ofSeconds(5));
            assertEquals(sent.txPackets(), all, "every frame testpmd sent reached the sink once");
            assertEquals(0, sink.counters().get(SinkBackend.Counter.WRONG_LENGTH));
            assertTrue(lv.closes().isEmpty(), () -> "sessions closed: " + lv.closes());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"packed_vq=1,in_order=0", "packed_vq=1,in_order=1"})
    void macForwardingThroughTheEcho(String devargs) throws Exception {
        try (Loomvisor lv = Loomvisor.serve(sock, 1, pair -> new EchoBackend(HOST_MAC, Inet.parseIpv4("198.51.100.1")));
             Testpmd pmd = Testpmd.frontend(sock, 1, devargs)) {
            pmd.forward("mac");
            pmd.startTxFirst();
            EchoBackend echo = lv.awaitBackend(0, 10_000);
            long echoed = Peers.awaitAtLeast(() -> echo.counters().get(EchoBackend.Counter.ECHOED), MILLION, WAIT);
            pmd.stopForwarding();
            Testpmd.Stats s = pmd.stats();
            assertTrue(lv.layout().startsWith("packed"), () -> "negotiated " + lv.layout());
            assertTrue(echoed >= MILLION, () -> "echoed " + echoed + "; testpmd " + s + "; " + echo.counters());
            assertTrue(s.rxPackets() >= MILLION && s.txPackets() >= s.rxPackets(), () -> "both ways: testpmd " + s);
            assertEquals(0, echo.counters().get(EchoBackend.Counter.DROP_GROUP) + echo.counters().get(EchoBackend.Counter.DROP_RUNT));
            assertTrue(lv.closes().isEmpty(), () -> "sessions closed: " + lv.closes());
        }
    }
}
