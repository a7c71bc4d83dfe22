package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.TapBackend;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Real frontends plugged into the host kernel's network stack through the TAP backend, the TAP inside a
 * namespace the test makes (198.51.100.1/24 on the host side, nothing routed out): a Linux guest under QEMU
 * pings the host, and testpmd's frames show up in the TAP interface's counters.
 */
@Timeout(120)
class TapPeerTest {

    private Path dir;
    private NetNs ns;
    private TapBackend tap;
    private String ifname;

    @BeforeEach
    void setUp() throws Exception {
        ns = NetNs.create();
        dir = Peers.tempDir();
        ifname = "lvp" + ProcessHandle.current().pid() % 100_000;
        tap = TapBackend.open(ifname);
        ns.adopt(ifname, "02:00:00:00:00:01");
    }

    @AfterEach
    void tearDown() throws Exception {
        if (tap != null) {
            tap.shutdown();
        }
        if (ns != null) {
            ns.close();
        }
        Peers.deleteTree(dir);
    }

    @Test
    void aLinuxGuestPingsTheHostThroughTheTap() throws Exception {
        Path sock = dir.resolve("lv.sock");
        try (Loomvisor lv = Loomvisor.serve(sock, 1, pair -> tap);
             QemuGuest guest = QemuGuest.boot(sock, dir)) {
            QemuGuest.PingResult r = guest.awaitPing(Duration.ofSeconds(75));
            assertNotNull(r, () -> "no ping result; tap " + tap.counters() + "; console:\n" + guest.console());
            assertEquals(new QemuGuest.PingResult(QemuGuest.PINGS, QemuGuest.PINGS), r,
                    () -> "tap " + tap.counters() + "; console:\n" + guest.console());
            assertTrue(guest.awaitExit(Duration.ofSeconds(15)), "the guest powers off");
        }
        // The guest's ARP request and echo requests entered the host; the host's replies left through the TAP.
        assertTrue(ns.counter(ifname, "rx_packets") >= QemuGuest.PINGS + 1, () -> "tap " + tap.counters());
        assertTrue(tap.counters().get(TapBackend.Counter.RX_FRAMES) >= QemuGuest.PINGS + 1, () -> "tap " + tap.counters());
    }

    @Test
    void testpmdsFramesShowUpInTheTapsCounters() throws Exception {
        Path sock = dir.resolve("lv.sock");
        long before = ns.counter(ifname, "rx_packets");
        try (Loomvisor lv = Loomvisor.serve(sock, 1, pair -> tap);
             Testpmd pmd = Testpmd.frontend(sock, 1)) {
            pmd.forward("txonly");
            pmd.txLength(64);
            pmd.startForwarding();
            Peers.awaitAtLeast(() -> tap.counters().get(TapBackend.Counter.TX_FRAMES), 10_000, Duration.ofSeconds(40));
            pmd.stopForwarding();
            long sent = pmd.stats().txPackets();
            Peers.awaitAtLeast(() -> tap.counters().get(TapBackend.Counter.TX_FRAMES)
                    + tap.counters().get(TapBackend.Counter.TX_DROP_WRITE), sent, Duration.ofSeconds(10));
            long written = tap.counters().get(TapBackend.Counter.TX_FRAMES);
            assertTrue(written >= 10_000, () -> "tap " + tap.counters() + "; " + lv.closes());
            assertEquals(sent, written + tap.counters().get(TapBackend.Counter.TX_DROP_WRITE), "every frame testpmd sent");
            assertEquals(written, ns.counter(ifname, "rx_packets") - before,
                    "the host's interface received every frame written to the TAP");
        }
    }

}
