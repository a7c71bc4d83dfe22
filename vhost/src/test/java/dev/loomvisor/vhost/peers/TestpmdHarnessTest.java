package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The harness against the reference: testpmd's virtio-user txonly into DPDK's own vhost-user backend
 * (a second testpmd, rxonly). If this fails, the peers or the harness are broken, not Loomvisor. 200,000
 * frames: enough to show the harness drives and reads both sides; two pinned pollers on a loaded 2-core
 * machine can crawl (0.02 Mpps seen while other builds ran).
 */
@Timeout(60)
class TestpmdHarnessTest {

    private static final long FRAMES = 200_000;

    private Path dir;

    @BeforeEach
    void setUp() throws Exception {
        dir = Peers.tempDir();
    }

    @AfterEach
    void tearDown() {
        Peers.deleteTree(dir);
    }

    @Test
    void dpdkFrontendTxonlyReachesDpdkBackendRxonly() throws Exception {
        Path sock = dir.resolve("vhost.sock");
        try (Testpmd backend = Testpmd.start(Testpmd.Role.BACKEND, sock, 1, 0)) {
            backend.forward("rxonly");
            backend.startForwarding();
            try (Testpmd frontend = Testpmd.frontend(sock, 1)) {
                frontend.forward("txonly");
                frontend.txLength(64);
                frontend.startForwarding();
                Testpmd.Stats rx = backend.awaitStats(s -> s.rxPackets() >= FRAMES, Duration.ofSeconds(40));
                frontend.stopForwarding();
                Testpmd.Stats tx = frontend.stats();
                assertTrue(rx.rxPackets() >= FRAMES, () -> "backend received " + rx + "\n" + backend.log());
                assertTrue(tx.txPackets() >= rx.rxPackets(), () -> "frontend sent " + tx + ", backend received " + rx);
                Testpmd.Stats end = backend.awaitStats(s -> s.rxPackets() == tx.txPackets(), Duration.ofSeconds(5));
                assertEquals(tx.txPackets(), end.rxPackets(), "every frame sent arrives once forwarding stopped");
                assertEquals(64 * end.rxPackets(), end.rxBytes(), "64-byte frames");
            }
        }
    }
}
