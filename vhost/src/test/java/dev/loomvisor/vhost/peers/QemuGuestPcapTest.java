package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.EchoBackend;
import dev.loomvisor.vhost.backend.Inet;
import dev.loomvisor.vhost.backend.PcapBackend;
import dev.loomvisor.vhost.backend.PcapWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A capture of a real frontend's traffic: a Linux guest under QEMU pings the echo backend through
 * vhost-user with the capture on, and tshark finds the guest's ARP request, its twenty ICMP echo requests
 * and Loomvisor's replies, in order, with valid checksums.
 */
@Timeout(120)
class QemuGuestPcapTest {

    @Test
    void tsharkDecodesTheGuestsPingsAndLoomvisorsReplies() throws Exception {
        Path tshark = Peers.require("tshark", "tshark");
        Path dir = Peers.tempDir();
        Path sock = dir.resolve("lv.sock");
        Path file = dir.resolve("ping.pcap");
        try (PcapWriter pcap = PcapWriter.open(file, PcapWriter.MAX_SNAPLEN)) {
            try (Loomvisor lv = Loomvisor.serve(sock, 1, pair -> new PcapBackend(
                    new EchoBackend(0x0200_0000_0001L, Inet.parseIpv4(QemuGuest.PEER_IP)), pcap));
                 QemuGuest guest = QemuGuest.boot(sock, dir)) {
                QemuGuest.PingResult r = guest.awaitPing(Duration.ofSeconds(75));
                assertNotNull(r, () -> "no ping result; console:\n" + guest.console());
                assertEquals(QemuGuest.PINGS, r.received(), () -> "console:\n" + guest.console());
                assertTrue(guest.awaitExit(Duration.ofSeconds(15)), "the guest powers off");
            }
        }
        try {
            List<String> icmp = tshark(tshark, file, "-Y", "icmp", "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                    "-e", "icmp.type", "-e", "icmp.seq", "-e", "icmp.checksum.status");
            long requests = icmp.stream().filter(l -> l.startsWith(QemuGuest.GUEST_IP + "\t" + QemuGuest.PEER_IP + "\t8\t")
                    && l.endsWith("\t1")).count();
            long replies = icmp.stream().filter(l -> l.startsWith(QemuGuest.PEER_IP + "\t" + QemuGuest.GUEST_IP + "\t0\t")
                    && l.endsWith("\t1")).count();
            assertEquals(QemuGuest.PINGS, requests, icmp.toString());
            assertEquals(QemuGuest.PINGS, replies, icmp.toString());
            // Every reply follows its request and answers its sequence number.
            for (int i = 0; i + 1 < icmp.size(); i += 2) {
                String[] q = icmp.get(i).split("\t");
                String[] a = icmp.get(i + 1).split("\t");
                assertEquals("8", q[2], icmp.toString());
                assertEquals("0", a[2], icmp.toString());
                assertEquals(q[3], a[3], icmp.toString());
            }
            List<String> arp = tshark(tshark, file, "-Y", "arp.opcode == 2", "-T", "fields", "-e", "arp.src.proto_ipv4");
            assertTrue(arp.contains(QemuGuest.PEER_IP), "Loomvisor's ARP reply: " + arp);
        } finally {
            Peers.deleteTree(dir);
        }
    }

    static List<String> tshark(Path tshark, Path file, String... args) throws Exception {
        var cmd = new ArrayList<>(List.of(tshark.toString(), "-n", "-r", file.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "tshark finished");
        assertEquals(0, p.exitValue(), "tshark: " + err);
        return out.lines().filter(l -> !l.isBlank()).toList();
    }
}
