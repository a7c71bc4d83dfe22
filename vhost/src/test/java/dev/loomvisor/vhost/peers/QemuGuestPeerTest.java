package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.EchoBackend;
import dev.loomvisor.vhost.backend.Inet;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A stock Linux guest (Debian's kernel, its virtio_net driver) under QEMU 7.2 pings Loomvisor's echo
 * backend through vhost-user: QEMU's frontend, Linux's rings, ARP and ICMP answered by the backend.
 */
@Timeout(90)
class QemuGuestPeerTest {

    @Test
    void linuxGuestPingsTheEchoBackendTwentyTimesOfTwenty() throws Exception {
        pings("", "split");
    }

    /** The same guest with {@code packed=on}: Linux's packed virtqueue driver against our packed rings. */
    @Test
    void linuxGuestOnPackedRingsPingsTheEchoBackendTwentyTimesOfTwenty() throws Exception {
        pings(",packed=on", "packed");
    }

    private static void pings(String deviceProps, String layout) throws Exception {
        Path dir = Peers.tempDir();
        Path sock = dir.resolve("lv.sock");
        try (Loomvisor lv = Loomvisor.serve(sock, 1,
                pair -> new EchoBackend(0x0200_0000_0001L, Inet.parseIpv4(QemuGuest.PEER_IP)));
             QemuGuest guest = QemuGuest.boot(sock, dir, deviceProps)) {
            QemuGuest.PingResult r = guest.awaitPing(Duration.ofSeconds(75));
            assertNotNull(r, () -> "no ping result from the guest; sessions closed " + lv.closes() + "; console:\n"
                    + guest.console());
            EchoBackend echo = lv.backend(0);
            assertEquals(new QemuGuest.PingResult(QemuGuest.PINGS, QemuGuest.PINGS), r,
                    () -> "echo " + echo.counters() + "; sessions closed " + lv.closes() + "; console:\n" + guest.console());
            assertTrue(echo.counters().get(EchoBackend.Counter.ARP_REPLIES) >= 1, () -> echo.counters().toString());
            assertTrue(echo.counters().get(EchoBackend.Counter.ICMP_REPLIES) >= QemuGuest.PINGS, () -> echo.counters().toString());
            assertTrue(lv.layout().startsWith(layout), () -> "negotiated " + lv.layout());
            assertTrue(guest.awaitExit(Duration.ofSeconds(15)), "the guest powers off");
        } finally {
            Peers.deleteTree(dir);
        }
    }
}
