package dev.loomvisor.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.loomvisor.bench.CliRun;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.user.VhostUser;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --pcap FILE} on vhost-user and on a measuring command: tshark reads the frames that went by. */
class PcapOptionTest {

    static final long WANTED = NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX
            | VhostUser.F_PROTOCOL_FEATURES;

    @TempDir
    Path dir;

    @Test
    void vhostUserEchoCapturesTheFrameAndItsEcho() throws Exception {
        Path tshark = tshark();
        Path sock = dir.resolve("echo.sock");
        Path file = dir.resolve("echo.pcap");
        var run = CompletableFuture.supplyAsync(() -> CliRun.of("vhost-user", "--socket", sock.toString(), "--mode", "echo",
                "--duration", "2s", "--quiet", "--pcap", file.toString()));
        try (VhostUserFrontend fe = connect(sock)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            assertTrue(fe.transmit(1, frame(60, 0x0200_0000_0009L, 0x5254_0012_3456L)));
            assertTrue(fe.awaitUsed(0, 10, TimeUnit.SECONDS), "a frame comes back");
        }
        CliRun r = run.get(30, TimeUnit.SECONDS);
        assertEquals(0, r.status(), r.err());
        assertEquals(List.of("52:54:00:12:34:56\t02:00:00:00:00:09\t0x88b5\t60",
                        "02:00:00:00:00:09\t52:54:00:12:34:56\t0x88b5\t60"),
                run(tshark, file, "-T", "fields", "-e", "eth.src", "-e", "eth.dst", "-e", "eth.type", "-e", "frame.len"));
    }

    @Test
    void aMeasuringCommandCapturesTheSwitchPorts() throws Exception {
        Path tshark = tshark();
        Path file = dir.resolve("switch.pcap");
        CliRun r = CliRun.of("throughput", "--models", "user-worker", "--vms", "2", "--frame-size", "64", "--duration", "100ms",
                "--warmup", "0s", "--repeat", "1", "--quiet", "--journal", dir.toString(), "--pcap", file.toString(),
                "--pcap-snaplen", "20");
        assertEquals(0, r.status(), r.err());
        List<String> lines = run(tshark, file, "-c", "1000", "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len",
                "-e", "eth.src");
        assertEquals(1000, lines.size(), "frames of the run in the file");
        assertTrue(lines.stream().allMatch(l -> l.startsWith("64\t20\t02:00:00:00:00:0")), lines.subList(0, 3).toString());
    }

    @Test
    void aBadSnaplenIsOneLineAndExitTwo() {
        CliRun r = CliRun.of("throughput", "--pcap", dir.resolve("x.pcap").toString(), "--pcap-snaplen", "0");
        assertEquals(2, r.status());
        assertTrue(r.err().startsWith("throughput: --pcap-snaplen: 0 is not allowed") && r.err().strip().lines().count() == 1,
                r.err());
        CliRun v = CliRun.of("vhost-user", "--socket", dir.resolve("s").toString(), "--mode", "sink", "--pcap",
                dir.resolve("none/x.pcap").toString());
        assertEquals(2, v.status());
        assertTrue(v.err().contains("--pcap: directory"), v.err());
    }

    static Path tshark() {
        Assumptions.assumeFalse("off".equals(System.getProperty("loomvisor.peers")), "real-peer tests are off");
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin").split(":")) {
            Path p = Path.of(d.isEmpty() ? "." : d, "tshark");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return fail("tshark not found: install the Debian package tshark (scripts/test does), "
                + "or run with -Dloomvisor.peers=off");
    }

    static List<String> run(Path tshark, Path file, String... args) throws Exception {
        var cmd = new ArrayList<>(List.of(tshark.toString(), "-n", "-r", file.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "tshark finished");
        assertEquals(0, p.exitValue(), "tshark: " + err);
        return out.lines().filter(l -> !l.isBlank()).toList();
    }

    private static VhostUserFrontend connect(Path sock) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try {
                return VhostUserFrontend.connect(sock, 4 << 20);
            } catch (NativeException e) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the command does not listen on " + sock, e);
                }
                Thread.sleep(10);
            }
        }
    }

    private static byte[] frame(int length, long dst, long src) {
        byte[] f = new byte[length];
        for (int i = 0; i < 6; i++) {
            f[i] = (byte) (dst >>> (40 - 8 * i));
            f[6 + i] = (byte) (src >>> (40 - 8 * i));
        }
        f[12] = (byte) 0x88;
        f[13] = (byte) 0xB5;
        return f;
    }
}
