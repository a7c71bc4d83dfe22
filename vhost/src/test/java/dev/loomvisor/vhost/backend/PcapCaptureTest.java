package dev.loomvisor.vhost.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.peers.Peers;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A capture around the echo backend: the guest's ICMP echo requests and the backend's replies land in a
 * pcap file that tshark decodes, with the header a reader needs (nanosecond magic, Ethernet), and a
 * captured frame allocates nothing.
 */
class PcapCaptureTest {

    static final long GUEST_MAC = 0x0200_0000_0002L;
    static final long ECHO_MAC = 0x0200_0000_0001L;
    static final int GUEST_IP = Inet.parseIpv4("198.51.100.2");
    static final int ECHO_IP = Inet.parseIpv4("198.51.100.1");

    @TempDir
    Path dir;

    /** An ICMP echo request from the guest to the echo backend, {@code data} bytes of payload. */
    static int echoRequest(UnsafeBuffer f, int seq, int data) {
        Frames.writeMac(f, Frames.DST_OFFSET, ECHO_MAC);
        Frames.writeMac(f, Frames.SRC_OFFSET, GUEST_MAC);
        f.putShort(Frames.ETHERTYPE_OFFSET, (short) Inet.ETHERTYPE_IPV4, ByteOrder.BIG_ENDIAN);
        int total = Inet.IP_MIN_HEADER + Inet.ICMP_HEADER + data;
        f.setMemory(Inet.IP, total, (byte) 0);
        f.putByte(Inet.IP_VERSION_IHL, (byte) 0x45);
        f.putShort(Inet.IP_TOTAL_LENGTH, (short) total, ByteOrder.BIG_ENDIAN);
        f.putByte(Inet.IP_TTL, (byte) 64);
        f.putByte(Inet.IP_PROTOCOL, (byte) Inet.PROTOCOL_ICMP);
        f.putInt(Inet.IP_SRC, GUEST_IP, ByteOrder.BIG_ENDIAN);
        f.putInt(Inet.IP_DST, ECHO_IP, ByteOrder.BIG_ENDIAN);
        f.putShort(Inet.IP_CHECKSUM, (short) Inet.checksum(f, Inet.IP, Inet.IP_MIN_HEADER), ByteOrder.BIG_ENDIAN);
        int icmp = Inet.IP + Inet.IP_MIN_HEADER;
        f.putByte(icmp + Inet.ICMP_TYPE, (byte) Inet.ICMP_ECHO_REQUEST);
        f.putShort(icmp + 4, (short) 0x4c56, ByteOrder.BIG_ENDIAN); // identifier
        f.putShort(icmp + 6, (short) seq, ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < data; i++) {
            f.putByte(icmp + Inet.ICMP_HEADER + i, (byte) i);
        }
        f.putShort(icmp + Inet.ICMP_CHECKSUM, (short) Inet.checksum(f, icmp, Inet.ICMP_HEADER + data), ByteOrder.BIG_ENDIAN);
        return Inet.IP + total;
    }

    @Test
    void tsharkDecodesTheGuestsRequestsAndTheEchoBackendsReplies() throws Exception {
        Path tshark = Peers.require("tshark", "tshark");
        Path file = dir.resolve("echo.pcap");
        var frame = new UnsafeBuffer(new byte[2048]);
        try (PcapWriter w = PcapWriter.open(file, PcapWriter.MAX_SNAPLEN)) {
            var echo = new PcapBackend(new EchoBackend(ECHO_MAC, ECHO_IP), w);
            for (int seq = 1; seq <= 5; seq++) {
                assertTrue(echo.transmit(frame, 0, echoRequest(frame, seq, 56)));
                echo.flushTransmit();
                assertEquals(1, echo.receive((b, o, l) -> true, 64));
            }
            assertEquals(10, w.frames());
        }
        ByteBuffer header = ByteBuffer.wrap(Files.readAllBytes(file), 0, 24).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0xa1b23c4d, header.getInt(0), "nanosecond-resolution pcap");
        assertEquals(2, header.getShort(4));
        assertEquals(4, header.getShort(6));
        assertEquals(PcapWriter.MAX_SNAPLEN, header.getInt(16));
        assertEquals(1, header.getInt(20), "LINKTYPE_ETHERNET");

        List<String> lines = tshark(tshark, file, "-T", "fields", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "ip.dst",
                "-e", "icmp.type", "-e", "icmp.seq", "-e", "icmp.checksum.status");
        assertEquals(10, lines.size(), lines.toString());
        long now = System.currentTimeMillis() / 1000;
        for (int i = 0; i < 10; i++) {
            String[] f = lines.get(i).split("\t");
            boolean request = i % 2 == 0;
            assertEquals(request ? "198.51.100.2" : "198.51.100.1", f[1], lines.get(i));
            assertEquals(request ? "198.51.100.1" : "198.51.100.2", f[2], lines.get(i));
            assertEquals(request ? "8" : "0", f[3], lines.get(i));
            assertEquals(String.valueOf(i / 2 + 1), f[4], lines.get(i));
            assertEquals("1", f[5], "tshark finds the ICMP checksum good: " + lines.get(i));
            double t = Double.parseDouble(f[0]);
            assertTrue(Math.abs(t - now) < 600, "a wall-clock timestamp: " + f[0]);
        }
    }

    @Test
    void snaplenCutsFramesAndKeepsTheirLength() throws Exception {
        Path tshark = Peers.require("tshark", "tshark");
        Path file = dir.resolve("snap.pcap");
        var frame = new UnsafeBuffer(new byte[2048]);
        try (PcapWriter w = PcapWriter.open(file, 34)) {
            w.write(frame, 0, echoRequest(frame, 1, 1000));
        }
        List<String> lines = tshark(tshark, file, "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len");
        assertEquals(List.of("1042\t34"), lines);
    }

    @Test
    void aCapturedFrameAllocatesNothing() throws Exception {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        var frame = new UnsafeBuffer(new byte[2048]);
        int len = echoRequest(frame, 1, 56);
        try (PcapWriter w = PcapWriter.open(dir.resolve("a.pcap"), PcapWriter.MAX_SNAPLEN)) {
            var sink = new PcapBackend(new SinkBackend(), w);
            FrameReceiver none = (b, o, l) -> true;
            for (int i = 0; i < 200_000; i++) { // warm up past the JIT
                sink.transmit(frame, 0, len);
                sink.receive(none, 64);
            }
            long allocated = Long.MAX_VALUE;
            for (int attempt = 0; attempt < 5 && allocated != 0; attempt++) {
                long before = threads.getCurrentThreadAllocatedBytes();
                for (int i = 0; i < 100_000; i++) {
                    sink.transmit(frame, 0, len);
                }
                allocated = threads.getCurrentThreadAllocatedBytes() - before;
            }
            assertEquals(0, allocated, "bytes allocated for 100,000 captured frames (file writes included)");
        }
    }

    static List<String> tshark(Path tshark, Path file, String... args) throws Exception {
        var cmd = new java.util.ArrayList<>(List.of(tshark.toString(), "-n", "-r", file.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "tshark finished");
        assertEquals(0, p.exitValue(), "tshark: " + err);
        return out.lines().filter(l -> !l.isBlank()).toList();
    }
}
