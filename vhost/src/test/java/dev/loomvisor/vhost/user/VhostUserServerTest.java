package dev.loomvisor.vhost.user;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vmm.net.NetFeatures;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VhostUserServerTest {

    static final long WANTED = NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF
            | NetFeatures.EVENT_IDX | VhostUser.F_PROTOCOL_FEATURES
            | NetFeatures.MQ;

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
            assertEquals(WANTED & ~NetFeatures.MQ | NetFeatures.MQ, f);
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

    static SinkBackend sinkOf(VhostUserSession s, int pair) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (s.backend(pair) == null && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        return (SinkBackend) s.backend(pair);
    }

    /** Receives {@code n} frames on RX vring {@code vring}, checking each is a generator frame of {@code len}. */
    static void receive(VhostUserFrontend fe, int vring, long n, int len) {
        long[] got = {0};
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (got[0] < n) {
            assertTrue(System.nanoTime() < deadline, "received " + got[0] + " of " + n);
            fe.awaitUsed(vring, 10, TimeUnit.MILLISECONDS);
            fe.receive(vring, (frame, numBuffers) -> {
                assertEquals(len, frame.length);
                assertEquals(1, numBuffers, "num_buffers of a one-buffer frame (MRG_RXBUF)");
                long seq = MemorySegment.ofArray(frame).get(ValueLayout.JAVA_LONG_UNALIGNED, GeneratorBackend.SEQUENCE_OFFSET);
                assertEquals(got[0], seq, "frames in order");
                got[0]++;
            });
        }
    }

    @Test
    void backendFramesArriveOnFrontendRxWithAHeader() throws Exception {
        Sessions sessions = new Sessions();
        var cfg = VhostUserServer.Config.defaults().withBackends((s, k) -> new GeneratorBackend(1, 2, 100, 3000));
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), cfg, sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            receive(fe, 0, 3000, 100);
            VhostUserSession s = sessions.nextOpened();
            assertTrue(fe.vring(0).calls() > 0, "the backend signalled the call eventfd");
            fe.getVringBase(0); // stops the ring: the handler's counts are in
            QueueStats rx = s.stats().get(0);
            assertEquals(3000, rx.frames());
            assertEquals(300_000, rx.bytes());
        }
    }

    @Test
    void everyWorkerModelCarriesFrames() throws Exception {
        for (WorkerModel m : WorkerModel.values()) {
            Sessions sessions = new Sessions();
            try (VhostUserServer server = VhostUserServer.start(dir.resolve(m.modelName() + ".sock"),
                    VhostUserServer.Config.defaults().withModel(m), sessions);
                 VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
                fe.handshake(WANTED);
                fe.setupVring(0, 256, true);
                fe.setupVring(1, 256, true);
                VhostUserSession s = sessions.nextOpened();
                send(fe, 1, 500, 1514);
                awaitFrames(sinkOf(s, 0), 500);
                assertEquals(m.modelName(), s.net(0).device().modelName());
            }
        }
    }

    @Test
    void withoutProtocolFeaturesRingsRunOnceKicked() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            fe.handshake(WANTED & ~VhostUser.F_PROTOCOL_FEATURES);
            fe.setupVring(0, 256, false);
            fe.setupVring(1, 256, false);
            VhostUserSession s = sessions.nextOpened();
            send(fe, 1, 300, 60);
            awaitFrames(sinkOf(s, 0), 300);
        }
    }

    @Test
    void disabledRingCarriesNothingUntilEnabled() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, false);
            VhostUserSession s = sessions.nextOpened();
            for (int i = 0; i < 10; i++) {
                assertTrue(fe.transmit(1, frame(60, i)));
            }
            // GET_QUEUE_NUM is a round trip: every earlier message was handled when it returns.
            assertEquals(1, fe.getQueueNum());
            assertFalse(fe.vring(1).queue().hasUsed(), "a disabled ring is not served");
            fe.setVringEnable(1, true);
            // Started with buffers pending and no new kick: the backend checks the ring when it starts.
            awaitFrames(sinkOf(s, 0), 10);
        }
    }

    @Test
    void getVringBaseStopsTheRingAndARestartContinues() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            var tx = fe.setupVring(1, 256, true);
            VhostUserSession s = sessions.nextOpened();
            send(fe, 1, 700, 60);
            SinkBackend sink = sinkOf(s, 0);
            awaitFrames(sink, 700);
            assertEquals(700, fe.getVringBase(1));
            // Stopped: frames queued now stay in the ring.
            for (int i = 0; i < 5; i++) {
                assertTrue(fe.transmit(1, frame(60, i)));
            }
            assertEquals(1, fe.getQueueNum());
            assertEquals(700, sink.counters().get(SinkBackend.Counter.FRAMES));
            // Restart where it stopped, with new eventfds, as after a migration: next_used comes from used.idx.
            fe.setVringBase(1, 700);
            try (var kick = dev.loomvisor.vhost.sys.EventFd.create(); var call = dev.loomvisor.vhost.sys.EventFd.create()) {
                fe.setVringCall(1, call.fd());
                fe.setVringKick(1, kick.fd());
                awaitFrames(sink, 705);
                assertEquals(705, fe.getVringBase(1));
            }
            assertEquals(705 & 0xffff, tx.queue().availIdx());
        }
    }

    @Test
    void reconnectAfterASessionEnds() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions)) {
            VhostUserSession first;
            try (VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
                fe.handshake(WANTED);
                fe.setupVring(0, 256, true);
                fe.setupVring(1, 256, true);
                first = sessions.nextOpened();
                send(fe, 1, 100, 60);
                awaitFrames(sinkOf(first, 0), 100);
            }
            Sessions.Closed c = sessions.nextClosed();
            assertSame(first, c.session());
            assertEquals(CloseCause.PEER_CLOSED, c.reason().cause());
            assertTrue(first.process().isDead());
            try (VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
                fe.handshake(WANTED);
                fe.setupVring(0, 256, true);
                fe.setupVring(1, 256, true);
                VhostUserSession second = sessions.nextOpened();
                send(fe, 1, 100, 60);
                awaitFrames(sinkOf(second, 0), 100);
            }
            assertEquals(CloseCause.PEER_CLOSED, sessions.nextClosed().reason().cause());
            assertEquals(Long.valueOf(2), server.closeCounts().get(CloseCause.PEER_CLOSED));
        }
    }

    @Test
    void queryRequestsAndReplyAck() throws Exception {
        Sessions sessions = new Sessions();
        var cfg = VhostUserServer.Config.defaults().withMaxQueuePairs(4).withMtu(9000);
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), cfg, sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            assertEquals(VhostUser.FEATURES, fe.getFeatures());
            assertEquals(VhostUser.PROTOCOL_FEATURES, fe.getProtocolFeatures());
            assertEquals(4, fe.getQueueNum());
            fe.setProtocolFeatures(VhostUser.PF_REPLY_ACK | VhostUser.PF_CONFIG);
            // NEED_REPLY: a u64 0 for success.
            fe.send(VhostUserRequest.SET_OWNER.code(), VhostUser.VERSION | VhostUser.FLAG_NEED_REPLY, new byte[0]);
            assertEquals(0, MemorySegment.ofArray(fe.reply(VhostUserRequest.SET_OWNER)).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
            // GET_CONFIG of the whole virtio_net_config.
            byte[] req = new byte[12 + 12];
            MemorySegment.ofArray(req).set(ValueLayout.JAVA_INT_UNALIGNED, 4, 12);
            fe.request(VhostUserRequest.GET_CONFIG, req);
            MemorySegment cfgReply = MemorySegment.ofArray(fe.reply(VhostUserRequest.GET_CONFIG));
            assertEquals(0x52, cfgReply.get(ValueLayout.JAVA_BYTE, 12) & 0xff);
            assertEquals(0x56, cfgReply.get(ValueLayout.JAVA_BYTE, 17) & 0xff);
            assertEquals(1, cfgReply.get(ValueLayout.JAVA_SHORT_UNALIGNED, 12 + 6), "link up");
            assertEquals(4, cfgReply.get(ValueLayout.JAVA_SHORT_UNALIGNED, 12 + 8));
            assertEquals(9000, cfgReply.get(ValueLayout.JAVA_SHORT_UNALIGNED, 12 + 10));
            // NEED_REPLY on a violation: a non-zero u64, then the session ends.
            fe.send(VhostUserRequest.SET_OWNER.code(), VhostUser.VERSION | VhostUser.FLAG_NEED_REPLY, new byte[0]);
            assertEquals(1, MemorySegment.ofArray(fe.reply(VhostUserRequest.SET_OWNER)).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
            assertEquals(CloseCause.OWNER_ALREADY_SET, sessions.nextClosed().reason().cause());
        }
    }

    @Test
    void closingTheServerEndsItsSessions() throws Exception {
        Sessions sessions = new Sessions();
        VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
        List<VhostUserFrontend> fes = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 1 << 20);
                fes.add(fe);
                fe.handshake(WANTED);
                fe.setupVring(1, 64, true);
                sessions.nextOpened();
            }
            server.close();
            for (int i = 0; i < 3; i++) {
                assertEquals(CloseCause.SERVER_CLOSED, sessions.nextClosed().reason().cause());
            }
            assertTrue(server.sessions().isEmpty());
            assertFalse(java.nio.file.Files.exists(server.socket()));
            assertThrows(java.io.IOException.class, () -> VhostUserFrontend.connect(server.socket(), 1 << 20));
        } finally {
            for (VhostUserFrontend fe : fes) {
                fe.close();
            }
            server.close();
        }
    }

    @Test
    void aNewMemoryTableWhileRunningKeepsTheRingsGoing() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            VhostUserSession s = sessions.nextOpened();
            send(fe, 1, 300, 60);
            SinkBackend sink = sinkOf(s, 0);
            awaitFrames(sink, 300);
            // QEMU re-sends the table when guest memory changes: the same memory again, as two regions.
            long half = fe.memSize() / 2;
            fe.request(VhostUserRequest.SET_MEM_TABLE, VhostUserFrontend.memTable(new long[][] {
                    {VhostUserFrontend.GPA_BASE, half, fe.uvaBase(), 0},
                    {VhostUserFrontend.GPA_BASE + half, half, fe.uvaBase() + half, half}}), fe.memfd(), fe.memfd());
            send(fe, 1, 300, 60);
            awaitFrames(sink, 600);
            assertEquals(600, fe.getVringBase(1));
        }
    }

    @Test
    void resetOwnerStopsEverythingAndTheRingsCanStartAgain() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            VhostUserSession s = sessions.nextOpened();
            send(fe, 1, 100, 60);
            awaitFrames(sinkOf(s, 0), 100);
            int tasksBefore = s.process().tasks().size();
            assertTrue(tasksBefore >= 2, "the owner and its worker");
            fe.request(VhostUserRequest.RESET_OWNER, new byte[0]);
            assertEquals(1, fe.getQueueNum());
            assertEquals(null, s.backend(0));
            assertEquals(1, s.process().tasks().size(), "the worker is gone");
            // A guest reboot: features and rings again, continuing from the indexes in memory.
            fe.setFeatures(WANTED);
            fe.setVringBase(1, 100);
            try (var kick = dev.loomvisor.vhost.sys.EventFd.create(); var call = dev.loomvisor.vhost.sys.EventFd.create()) {
                fe.setVringCall(1, call.fd());
                fe.setVringKick(1, kick.fd());
                fe.setVringEnable(1, true);
                for (int i = 0; i < 50; i++) {
                    assertTrue(fe.transmit(1, frame(60, i)));
                    kick.signal();
                }
                awaitFrames(sinkOf(s, 0), 50);
            }
            assertEquals(150, fe.getVringBase(1)); // stops the ring: its run's counts are in
            assertEquals(150, s.stats().get(1).frames(), "counts from before the reset are kept");
        }
    }

    @Test
    void theMemoryFileIsSealedAgainstShrinking() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 1 << 20)) {
            dev.loomvisor.vhost.sys.Libc.ftruncate(fe.memfd(), 1 << 19); // before the table: allowed
            dev.loomvisor.vhost.sys.Libc.ftruncate(fe.memfd(), 1 << 20);
            fe.setOwner();
            fe.setMemTable();
            assertEquals(1, fe.getQueueNum());
            var e = assertThrows(dev.loomvisor.vhost.sys.NativeException.class,
                    () -> dev.loomvisor.vhost.sys.Libc.ftruncate(fe.memfd(), 1 << 19));
            assertEquals(1, e.errno(), "EPERM: sealed"); // a shrink would SIGBUS the backend
        }
    }

    @Test
    void aBrokenRingSignalsItsErrFdAndTheSessionGoesOn() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults().withMaxQueuePairs(2), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20);
             var err = dev.loomvisor.vhost.sys.EventFd.create()) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            var tx = fe.setupVring(1, 256, true);
            fe.setupVring(2, 256, true);
            fe.setupVring(3, 256, true);
            fe.setVringErr(1, err.fd());
            assertEquals(2, fe.getQueueNum()); // a round trip: SET_VRING_ERR was handled
            VhostUserSession s = sessions.nextOpened();
            send(fe, 1, 10, 60);
            awaitFrames(sinkOf(s, 0), 10);
            // A head index beyond the ring: a guest violation (virtio.md), not a protocol one.
            var q = tx.queue();
            int idx = q.availIdx();
            byte[] slot = new byte[2];
            MemorySegment.ofArray(slot).set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, (short) 999);
            fe.memory().write(q.availAddr() + 4 + 2L * (idx % 256), slot, 0, 2);
            byte[] next = new byte[2];
            MemorySegment.ofArray(next).set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, (short) (idx + 1));
            fe.memory().write(q.availAddr() + 2, next, 0, 2);
            fe.vring(1).kickForTest();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            long signalled = 0;
            while (signalled == 0 && System.nanoTime() < deadline) {
                signalled = err.drain();
                Thread.sleep(1);
            }
            assertTrue(signalled > 0, "the err eventfd was signalled");
            assertEquals(1, s.stats().get(1).ringErrors());
            // The other pair still works, and the session did not end.
            send(fe, 3, 10, 60);
            awaitFrames(sinkOf(s, 1), 10);
            assertFalse(s.isClosed());
        }
    }

    @Test
    void aRingWithoutKickFdIsPolled() throws Exception {
        Sessions sessions = new Sessions();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(), sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
            fe.handshake(WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            VhostUserSession s = sessions.nextOpened();
            fe.request(VhostUserRequest.SET_VRING_KICK, VhostUserFrontend.u64(1 | VhostUser.VRING_NOFD));
            assertEquals(1, fe.getQueueNum());
            // The kicks the front-end still writes go nowhere now; the frames arrive by polling.
            send(fe, 1, 200, 60);
            awaitFrames(sinkOf(s, 0), 200);
        }
    }

    @Test
    void concurrentSessionsEachGetTheirFrames() throws Exception {
        int clients = 4;
        java.util.Map<Long, SinkBackend> sinks = new java.util.concurrent.ConcurrentHashMap<>();
        var cfg = VhostUserServer.Config.defaults().withBackends((s, k) -> {
            SinkBackend b = new SinkBackend();
            sinks.put(s.id(), b);
            return b;
        });
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), cfg, new Sessions())) {
            for (int round = 0; round < 3; round++) {
                List<java.util.concurrent.Future<Integer>> done = new ArrayList<>();
                try (var pool = java.util.concurrent.Executors.newFixedThreadPool(clients)) {
                    for (int c = 0; c < clients; c++) {
                        int frames = 500 + 100 * c;
                        done.add(pool.submit(() -> {
                            try (VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 2 << 20)) {
                                fe.handshake(WANTED);
                                fe.setupVring(0, 128, true);
                                fe.setupVring(1, 128, true);
                                send(fe, 1, frames, 100);
                                // The ring's base says how far the backend got: all of it once it is drained.
                                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                                while (fe.reapTx(1) >= 0 && fe.vring(1).queue().inFlight() > 0 && System.nanoTime() < deadline) {
                                    fe.awaitUsed(1, 10, TimeUnit.MILLISECONDS);
                                }
                                assertEquals(frames, fe.getVringBase(1));
                            }
                            return frames;
                        }));
                    }
                    for (var f : done) {
                        f.get(30, TimeUnit.SECONDS);
                    }
                }
            }
            assertEquals(3 * clients, sinks.size());
            long total = 0;
            for (SinkBackend b : sinks.values()) {
                total += b.counters().get(SinkBackend.Counter.FRAMES);
                assertEquals(100 * b.counters().get(SinkBackend.Counter.FRAMES), b.counters().get(SinkBackend.Counter.BYTES));
            }
            assertEquals(3 * (500 + 600 + 700 + 800), total);
        }
    }

    @Test
    void aStaleSocketIsReplacedButNoOtherFile() throws Exception {
        Path sock = dir.resolve("s.sock");
        VhostUserServer.start(sock, VhostUserServer.Config.defaults(), null).close();
        try (var stale = dev.loomvisor.vhost.sys.UnixSocket.listen(sock, 1)) {
            stale.shutdown();
        }
        assertTrue(java.nio.file.Files.exists(sock), "a socket file left behind");
        VhostUserServer.start(sock, VhostUserServer.Config.defaults(), null).close();
        Path file = dir.resolve("precious");
        java.nio.file.Files.writeString(file, "data");
        assertThrows(java.nio.file.FileAlreadyExistsException.class,
                () -> VhostUserServer.start(file, VhostUserServer.Config.defaults(), null));
        assertEquals("data", java.nio.file.Files.readString(file));
    }
}
