package dev.loomvisor.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.bench.CliRun;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.user.VhostUser;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import dev.loomvisor.vmm.net.NetFeatures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@Timeout(60)
class VhostUserCommandTest {

    private static final long WANTED = NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF
            | NetFeatures.EVENT_IDX | VhostUser.F_PROTOCOL_FEATURES;

    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "--mode=pump                 | --mode: unknown mode 'pump'",
            "--model=nope                | --model: unknown model 'nope'",
            "--queues=0                  | --queues: 0 is not allowed",
            "--queues=9                  | --queues: 9 is not allowed",
            "--ip=198.51.100             | --ip: '198.51.100' is not an IPv4 address",
            "--mac=01:00:5e:00:00:01     | --mac: '01:00:5e:00:00:01' is not a unicast MAC",
            "--mac=02:00:00:00:00        | --mac: '02:00:00:00:00' is not a unicast MAC",
            "--frame-size=10             | --frame-size: 10 is out of range",
            "--vms=0                     | --vms: 0 is not allowed",
            "--busy-poll=-1              | --busy-poll: -1 is not allowed",
            "--max-sessions=0            | --max-sessions: 0 is not allowed",
            "--max-sessions=65537        | --max-sessions: 65537 is not allowed",
            "--duration=0s               | --duration: must be more than 0",
            "--stats-interval=1ms        | --stats-interval: must be 100ms to 1h"})
    void aWrongValueGetsOneLineAndStatus2(String arg, String message) {
        List<String> args = new ArrayList<>(List.of("vhost-user", "--socket", dir.resolve("s").toString()));
        if (!arg.startsWith("--mode=")) {
            args.add("--mode=sink");
        }
        args.add(arg);
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertEquals(2, r.status(), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains(message), r.err());
        assertFalse(Files.exists(dir.resolve("s")), "nothing listened");
    }

    @Test
    void missingSocketOrModeIsAnError() {
        assertEquals(2, CliRun.of("vhost-user", "--mode", "sink").status());
        assertEquals(2, CliRun.of("vhost-user", "--socket", dir.resolve("s").toString()).status());
    }

    /** Runs the command for {@code seconds} in the background; the frontend work happens meanwhile. */
    private static CompletableFuture<CliRun> serve(String... args) {
        return CompletableFuture.supplyAsync(() -> CliRun.of(args));
    }

    /**
     * Connects once the command listens: the socket file appears at bind, a moment before listen, so a
     * refused connection is retried (bounded), as a frontend with reconnect does.
     */
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

    @Test
    void sinkModeCountsAFrontendsFramesAndReportsTheSession() throws Exception {
        Path sock = dir.resolve("sink.sock");
        var run = serve("vhost-user", "--socket", sock.toString(), "--mode", "sink", "--frame-size", "64",
                "--duration", "3s", "--stats-interval", "200ms");
        try (VhostUserFrontend fe = connect(sock)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            for (int i = 0; i < 100; i++) {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!fe.transmit(1, frame(i < 99 ? 64 : 65, 0x0200_0000_0001L, 0x5254_0012_3456L))) {
                    fe.awaitUsed(1, 10, TimeUnit.MILLISECONDS);
                    assertTrue(System.nanoTime() < deadline, "TX ring stayed full");
                }
            }
            assertTrue(fe.awaitUsed(1, 10, TimeUnit.SECONDS) || fe.reapTx(1) >= 0);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (fe.getVringBase(1) < 100 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
        }
        CliRun r = run.get(30, TimeUnit.SECONDS);
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("vhost-user: session 1 opened"), r.err());
        assertTrue(r.err().lines().anyMatch(l -> l.startsWith("vhost-user: session 1 closed: ")), r.err());
        assertTrue(r.err().lines().filter(l -> l.startsWith("vhost-user: t=")).count() >= 5, r.err());
        assertTrue(r.err().contains("tx_frames=100 "), "the last stats lines show all frames:\n" + r.err());
        assertTrue(r.out().contains("vhost-user summary: mode sink, model user-worker"), r.out());
        assertTrue(r.out().contains("sessions: 1 opened, 1 closed"), r.out());
        assertTrue(r.out().contains("tx (frontend -> backend): 100 frames, 6401 bytes"), r.out());
        assertTrue(r.out().contains("sink: frames=100 bytes=6401 wrong_length=1"), r.out());
        assertFalse(Files.exists(sock), "the socket is removed at the end");
    }

    @Test
    void aConnectionBeyondMaxSessionsIsRefusedAndCounted() throws Exception {
        Path sock = dir.resolve("limit.sock");
        var run = serve("vhost-user", "--socket", sock.toString(), "--mode", "sink", "--max-sessions", "1",
                "--duration", "2s", "--quiet");
        try (VhostUserFrontend first = connect(sock)) {
            first.getFeatures();
            try (VhostUserFrontend second = VhostUserFrontend.connect(sock, 1 << 20)) {
                assertTrue(second.readsEof(), "closed at once");
            }
        }
        CliRun r = run.get(30, TimeUnit.SECONDS);
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("vhost-user: connection refused: SESSION_LIMIT: 1 sessions open, at most 1"), r.err());
        assertTrue(r.out().contains("sessions: 1 opened, 1 closed, 0 open {PEER_CLOSED=1}; 1 refused {SESSION_LIMIT=1}"),
                r.out());
    }

    @Test
    void echoModeReturnsAUnicastFrameWithTheAddressesSwapped() throws Exception {
        Path sock = dir.resolve("echo.sock");
        var run = serve("vhost-user", "--socket", sock.toString(), "--mode", "echo", "--duration", "2s", "--quiet");
        List<byte[]> got = new ArrayList<>();
        try (VhostUserFrontend fe = connect(sock)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            assertTrue(fe.transmit(1, frame(60, 0x0200_0000_0009L, 0x5254_0012_3456L)));
            assertTrue(fe.awaitUsed(0, 10, TimeUnit.SECONDS), "a frame comes back");
            fe.receive(0, (f, n) -> got.add(f));
        }
        CliRun r = run.get(30, TimeUnit.SECONDS);
        assertEquals(0, r.status(), r.err());
        assertEquals(1, got.size());
        byte[] back = got.getFirst();
        assertEquals(60, back.length);
        assertEquals(0x56, back[5] & 0xFF, "to the sender");
        assertEquals(0x09, back[11] & 0xFF, "from the address it was sent to");
        assertFalse(r.err().contains("vhost-user: t="), "--quiet: no stats lines");
        assertTrue(r.out().contains("echo: tx_frames=1 tx_bytes=60 echoed=1"), r.out());
    }

    @Test
    void switchModeFloodsToTheEmulatedVmsWhichEchoBack() throws Exception {
        Path sock = dir.resolve("switch.sock");
        var run = serve("vhost-user", "--socket", sock.toString(), "--mode", "switch", "--vms", "3",
                "--duration", "3s", "--quiet");
        List<byte[]> got = new ArrayList<>();
        try (VhostUserFrontend fe = connect(sock)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            // Broadcast: flooded to every VM, and each returns it to the sender's learned port.
            assertTrue(fe.transmit(1, frame(64, 0xFFFF_FFFF_FFFFL, 0x5254_0012_3456L)));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (got.size() < 3 && System.nanoTime() < deadline) {
                fe.awaitUsed(0, 100, TimeUnit.MILLISECONDS);
                fe.receive(0, (f, n) -> got.add(f));
            }
        }
        CliRun r = run.get(30, TimeUnit.SECONDS);
        assertEquals(0, r.status(), r.err());
        assertEquals(3, got.size(), "one echo from each VM");
        for (byte[] f : got) {
            assertEquals(0x56, f[5] & 0xFF, "addressed to the frontend");
        }
        assertTrue(r.out().contains("vms_echoed=3"), r.out());
    }
}
