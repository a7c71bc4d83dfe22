package dev.loomvisor.vhost.user;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VhostUserServerTest {

    static final long WANTED = VirtioNet.bit(VirtioNet.F_VERSION_1) | VirtioNet.bit(VirtioNet.F_MRG_RXBUF)
            | VirtioNet.bit(VirtioNet.F_EVENT_IDX) | VirtioNet.bit(VhostUser.F_PROTOCOL_FEATURES)
            | VirtioNet.bit(VhostUser.F_MQ);

    @TempDir
    Path dir;

    static byte[] frame(int len, int seq) {
        byte[] f = new byte[len];
        for (int i = 0; i < 6; i++) {
            f[i] = (byte) 0xff;
        }
        f[6] = 0x52;
        f[11] = 1;
        f[12] = 0x08;
        f[13] = 0x00;
        for (int i = 14; i < len; i++) {
            f[i] = (byte) (seq + i);
        }
        return f;
    }

    static void send(VhostUserFrontend fe, int vring, int frames, int len) throws Exception {
        for (int i = 0; i < frames; i++) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!fe.transmit(vring, frame(len, i))) {
                fe.awaitUsed(vring, 10, TimeUnit.MILLISECONDS);
                assertTrue(System.nanoTime() < deadline, "TX ring stayed full");
            }
        }
    }

    static void awaitFrames(SinkBackend sink, long frames) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (sink.counters().get(SinkBackend.Counter.FRAMES) < frames && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertEquals(frames, sink.counters().get(SinkBackend.Counter.FRAMES));
    }

    @Test
    void framesFromFrontendTxReachTheSink() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            long f = fe.handshake(WANTED);
            assertEquals(WANTED & ~VirtioNet.bit(VhostUser.F_MQ) | VirtioNet.bit(VhostUser.F_MQ), f);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            VhostUserSession s = sessions.nextOpened();
            send(fe, 1, 1000, 60);
            // The backend exists once the pair started; wait for the frames.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (s.backend(0) == null && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            SinkBackend sink = (SinkBackend) s.backend(0);
            awaitFrames(sink, 1000);
            assertEquals(60_000, sink.counters().get(SinkBackend.Counter.BYTES));
            assertEquals(1000, fe.getVringBase(1));
        }
    }
}
