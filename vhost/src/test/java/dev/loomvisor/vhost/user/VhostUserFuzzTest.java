package dev.loomvisor.vhost.user;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.testing.Soak;
import dev.loomvisor.vhost.sys.EventFd;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Random message sequences, mostly well-formed requests with random fields and now and then a broken
 * header, size or fd count. Whatever comes, a session ends with a peer or protocol cause (never a
 * RESOURCE_ERROR, which is where an unexpected exception would land), releases its fds, and the server
 * serves the next one. Replayable with -Dloomvisor.seed=N.
 */
class VhostUserFuzzTest {

    @TempDir
    Path dir;

    private static final VhostUserRequest[] REQUESTS = VhostUserRequest.values();

    private static long pick(SplittableRandom r, long... values) {
        return values[r.nextInt(values.length)];
    }

    private static void message(VhostUserFrontend fe, SplittableRandom r, int[] ring) throws Exception {
        VhostUserRequest req = REQUESTS[r.nextInt(REQUESTS.length)];
        int idx = r.nextInt(8) == 0 ? r.nextInt(300) : ring[r.nextInt(2)];
        long uva = fe.uvaBase() + pick(r, 0, 0x1000, 0x8000, fe.memSize() - 0x1000, fe.memSize(), 3, -0x1000L);
        byte[] payload;
        int fdCount = 0;
        switch (req) {
            case SET_FEATURES -> payload = VhostUserFrontend.u64(VhostUser.FEATURES & r.nextLong()
                    | (r.nextInt(10) == 0 ? 1L << r.nextInt(64) : 0));
            case SET_PROTOCOL_FEATURES -> payload = VhostUserFrontend.u64(VhostUser.PROTOCOL_FEATURES & r.nextLong());
            case SET_MEM_TABLE -> {
                long size = pick(r, fe.memSize(), fe.memSize() / 2, 0, fe.memSize() + 4096, 1L << 62);
                long gpa = pick(r, VhostUserFrontend.GPA_BASE, 0, -4096L);
                payload = VhostUserFrontend.memTable(r.nextInt(6) == 0
                        ? new long[][] {{gpa, size, fe.uvaBase(), 0}, {gpa + size / 2, size, fe.uvaBase() + 0x100000, 0}}
                        : new long[][] {{gpa, size, fe.uvaBase(), pick(r, 0, 0, 4096, -1L)}});
                fdCount = payload.length > 40 ? 2 : 1;
            }
            case SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE ->
                    payload = VhostUserFrontend.state(idx, (int) pick(r, 0, 1, 3, 64, 256, 65536, r.nextInt()));
            case SET_VRING_ADDR -> {
                payload = new byte[40];
                MemorySegment s = MemorySegment.ofArray(payload);
                s.set(ValueLayout.JAVA_INT_UNALIGNED, 0, idx);
                s.set(ValueLayout.JAVA_INT_UNALIGNED, 4, r.nextInt(8) == 0 ? 1 : 0);
                s.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, uva);
                s.set(ValueLayout.JAVA_LONG_UNALIGNED, 16, uva + pick(r, 0x1000, 0x2000, 2));
                s.set(ValueLayout.JAVA_LONG_UNALIGNED, 24, uva + pick(r, 0x3000, 0x4000, 1));
            }
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> {
                boolean noFd = r.nextInt(5) == 0;
                payload = VhostUserFrontend.u64(idx | (noFd ? VhostUser.VRING_NOFD : 0));
                fdCount = noFd ? 0 : 1;
            }
            case GET_CONFIG, SET_CONFIG -> {
                int n = (int) pick(r, 0, 6, 12, 60, 5000);
                payload = new byte[12 + Math.min(n, 60)];
                MemorySegment s = MemorySegment.ofArray(payload);
                s.set(ValueLayout.JAVA_INT_UNALIGNED, 0, (int) pick(r, 0, 6, 4090, -1L));
                s.set(ValueLayout.JAVA_INT_UNALIGNED, 4, n);
            }
            case SEND_RARP, NET_SET_MTU -> payload = VhostUserFrontend.u64(pick(r, 1500, 0, 9000, 70000));
            default -> payload = new byte[0];
        }
        int code = r.nextInt(30) == 0 ? r.nextInt(64) : req.code();
        int flags = r.nextInt(30) == 0 ? r.nextInt() : VhostUser.VERSION | (r.nextBoolean() ? VhostUser.FLAG_NEED_REPLY : 0);
        int size = r.nextInt(30) == 0 ? payload.length + (int) pick(r, -1, 1, 8, 0x2000) : payload.length;
        if (r.nextInt(30) == 0) {
            fdCount = r.nextInt(3);
        }
        try (EventFd e = EventFd.create()) {
            int[] fds = new int[fdCount];
            for (int i = 0; i < fdCount; i++) {
                fds[i] = req == VhostUserRequest.SET_MEM_TABLE || r.nextInt(10) == 0 ? fe.memfd() : e.fd();
            }
            fe.send(code, flags, size, payload, fds);
        }
    }

    @Test
    void randomSessionsEndCleanly() throws Exception {
        long seed = Soak.seed();
        int sessions = Soak.size(150, 5000);
        SplittableRandom rnd = new SplittableRandom(seed);
        Sessions listener = new Sessions();
        Map<CloseCause, Integer> causes = new EnumMap<>(CloseCause.class);
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("f.sock"), VhostUserServer.Config.defaults(), listener)) {
            int fdsBefore = VhostUserHostileTest.openFds();
            for (int i = 0; i < sessions; i++) {
                SplittableRandom r = rnd.split();
                try (VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 1 << 20)) {
                    listener.nextOpened();
                    int[] ring = {r.nextInt(2), r.nextInt(2)};
                    int n = 1 + r.nextInt(25);
                    try {
                        if (r.nextBoolean()) {
                            // From a running device, so that the random part also meets started rings.
                            fe.handshake(VhostUserServerTest.WANTED);
                            fe.setupVring(0, 64, true);
                            fe.setupVring(1, 64, true);
                            for (int f = 0; f < 20; f++) {
                                fe.transmit(1, VhostUserServerTest.frame(60, f));
                            }
                        }
                        for (int m = 0; m < n; m++) {
                            message(fe, r, ring);
                        }
                    } catch (NativeException peerGone) {
                        // EPIPE/ECONNRESET: the backend already ended the session.
                    }
                }
                Sessions.Closed c = listener.nextClosed();
                causes.merge(c.reason().cause(), 1, Integer::sum);
                assertNotEquals(CloseCause.RESOURCE_ERROR, c.reason().cause(),
                        "seed " + seed + " session " + i + ": " + c.reason());
                assertTrue(c.session().process().isDead(), "seed " + seed + " session " + i);
            }
            assertEquals(fdsBefore, VhostUserHostileTest.openFds(), "seed " + seed + ": fds left open");
            assertTrue(server.sessions().isEmpty());
        }
        Soak.report("vhost-user-fuzz", sessions + " sessions, seed " + seed + ", causes " + causes);
    }
}
