package dev.loomvisor.vhost.user;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.sys.EventFd;
import dev.loomvisor.vhost.sys.Libc;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import dev.loomvisor.vmm.net.NetFeatures;
import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile front-ends: each breaks one protocol rule; its session must end with exactly that cause and
 * release everything (its process exits, no fd of it stays open), while a well-behaved session on the same
 * server keeps delivering frames.
 */
class VhostUserHostileTest {

    @TempDir
    Path dir;

    @FunctionalInterface
    interface Attack {
        void run(VhostUserFrontend fe) throws Exception;
    }

    record Case(String name, CloseCause expected, Attack attack) {
    }

    static byte[] addr(int index, long desc, long used, long avail) {
        byte[] b = new byte[40];
        var s = java.lang.foreign.MemorySegment.ofArray(b);
        s.set(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0, index);
        s.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 8, desc);
        s.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 16, used);
        s.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 24, avail);
        return b;
    }

    static List<Case> cases() {
        long gpa = VhostUserFrontend.GPA_BASE;
        List<Case> c = new ArrayList<>();
        c.add(new Case("truncated header", CloseCause.TRUNCATED_HEADER, fe -> {
            fe.sendRaw(new byte[] {1, 0, 0, 0, 1, 0});
            fe.shutdownOutput();
        }));
        c.add(new Case("truncated payload", CloseCause.TRUNCATED_PAYLOAD, fe -> {
            fe.send(VhostUserRequest.SET_FEATURES.code(), VhostUser.VERSION, 8, new byte[4]);
            fe.shutdownOutput();
        }));
        c.add(new Case("size not the request's", CloseCause.SIZE_MISMATCH,
                fe -> fe.send(VhostUserRequest.SET_FEATURES.code(), VhostUser.VERSION, new byte[4])));
        c.add(new Case("payload above 0x1000", CloseCause.PAYLOAD_TOO_BIG,
                fe -> fe.send(VhostUserRequest.SET_MEM_TABLE.code(), VhostUser.VERSION, 0x1001, new byte[0])));
        c.add(new Case("unknown request", CloseCause.UNKNOWN_REQUEST,
                fe -> fe.send(99, VhostUser.VERSION, new byte[0])));
        c.add(new Case("version 2", CloseCause.BAD_FLAGS,
                fe -> fe.send(VhostUserRequest.SET_OWNER.code(), 2, new byte[0])));
        c.add(new Case("an fd with SET_OWNER", CloseCause.BAD_FD_COUNT, fe -> {
            try (EventFd e = EventFd.create()) {
                fe.send(VhostUserRequest.SET_OWNER.code(), VhostUser.VERSION, new byte[0], e.fd());
            }
        }));
        c.add(new Case("kick without its fd", CloseCause.BAD_FD_COUNT, fe -> {
            fe.setOwner();
            fe.setMemTable();
            fe.request(VhostUserRequest.SET_VRING_KICK, VhostUserFrontend.u64(1));
        }));
        c.add(new Case("33 fds", CloseCause.TOO_MANY_FDS, fe -> {
            int[] fds = new int[33];
            java.util.Arrays.fill(fds, fe.memfd());
            fe.send(VhostUserRequest.SET_OWNER.code(), VhostUser.VERSION, new byte[0], fds);
        }));
        c.add(new Case("second SET_OWNER", CloseCause.OWNER_ALREADY_SET, fe -> {
            fe.setOwner();
            fe.setOwner();
        }));
        c.add(new Case("feature not offered", CloseCause.FEATURES_NOT_OFFERED, fe -> {
            fe.setOwner();
            fe.setFeatures(1L << 63);
        }));
        c.add(new Case("protocol feature not offered", CloseCause.PROTOCOL_FEATURES_NOT_OFFERED,
                fe -> fe.setProtocolFeatures(1L << 40)));
        c.add(new Case("overlapping regions", CloseCause.REGION_OVERLAP, fe -> {
            fe.setOwner();
            fe.request(VhostUserRequest.SET_MEM_TABLE, VhostUserFrontend.memTable(new long[][] {
                    {gpa, 0x10000, fe.uvaBase(), 0}, {gpa + 0x8000, 0x10000, fe.uvaBase() + 0x20000, 0x20000}}),
                    fe.memfd(), fe.memfd());
        }));
        c.add(new Case("overflowing region", CloseCause.REGION_OVERFLOW, fe -> {
            fe.setOwner();
            fe.request(VhostUserRequest.SET_MEM_TABLE, VhostUserFrontend.memTable(new long[][] {
                    {0xffff_ffff_ffff_f000L, 0x2000, fe.uvaBase(), 0}}), fe.memfd());
        }));
        c.add(new Case("region past the end of its file", CloseCause.REGION_BEYOND_FILE, fe -> {
            fe.setOwner();
            fe.request(VhostUserRequest.SET_MEM_TABLE, VhostUserFrontend.memTable(new long[][] {
                    {gpa, fe.memSize() + 4096, fe.uvaBase(), 0}}), fe.memfd());
        }));
        c.add(new Case("regions without fds", CloseCause.BAD_FD_COUNT, fe -> {
            fe.setOwner();
            fe.request(VhostUserRequest.SET_MEM_TABLE, VhostUserFrontend.memTable(new long[][] {
                    {gpa, fe.memSize(), fe.uvaBase(), 0}}));
        }));
        c.add(new Case("vring outside the table", CloseCause.VRING_ADDR_UNMAPPED, fe -> {
            fe.setOwner();
            fe.setMemTable();
            fe.setVringNum(1, 256);
            long out = fe.uvaBase() + fe.memSize();
            fe.request(VhostUserRequest.SET_VRING_ADDR, addr(1, out, out + 0x1000, out + 0x2000));
        }));
        c.add(new Case("vring straddling the table's end", CloseCause.VRING_ADDR_UNMAPPED, fe -> {
            fe.setOwner();
            fe.setMemTable();
            fe.setVringNum(1, 256);
            long base = fe.uvaBase();
            fe.request(VhostUserRequest.SET_VRING_ADDR, addr(1, base + fe.memSize() - 16, base, base + 0x1000));
        }));
        c.add(new Case("misaligned vring", CloseCause.VRING_ADDR_MISALIGNED, fe -> {
            fe.setOwner();
            long base = fe.uvaBase();
            fe.request(VhostUserRequest.SET_VRING_ADDR, addr(1, base + 8, base + 0x1000, base + 0x2000));
        }));
        c.add(new Case("vring num 0", CloseCause.BAD_VRING_NUM, fe -> fe.setVringNum(1, 0)));
        c.add(new Case("vring num 3", CloseCause.BAD_VRING_NUM, fe -> fe.setVringNum(1, 3)));
        c.add(new Case("vring num 65536", CloseCause.BAD_VRING_NUM, fe -> fe.setVringNum(1, 65536)));
        c.add(new Case("vring index 200", CloseCause.BAD_VRING_INDEX, fe -> fe.setVringNum(200, 256)));
        c.add(new Case("vring base 0x10000", CloseCause.BAD_VRING_BASE, fe -> fe.setVringBase(1, 0x10000)));
        c.add(new Case("kick before the memory table", CloseCause.KICK_BEFORE_MEM_TABLE, fe -> {
            fe.setOwner();
            try (EventFd e = EventFd.create()) {
                fe.setVringKick(1, e.fd());
            }
        }));
        c.add(new Case("kick fd not an eventfd", CloseCause.NOT_AN_EVENTFD, fe -> {
            fe.setOwner();
            fe.setMemTable();
            fe.setVringKick(1, fe.memfd());
        }));
        c.add(new Case("kick on a ring never set up", CloseCause.RING_NOT_CONFIGURED, fe -> {
            fe.setOwner();
            fe.setFeatures(NetFeatures.VERSION_1);
            fe.setMemTable();
            try (EventFd e = EventFd.create()) {
                fe.setVringKick(1, e.fd());
            }
        }));
        return c;
    }

    static int openFds() {
        return Objects.requireNonNull(new File("/proc/self/fd").list()).length;
    }

    @TestFactory
    Stream<DynamicTest> eachViolationEndsOnlyItsSession() throws Exception {
        Sessions sessions = new Sessions();
        VhostUserServer server = VhostUserServer.start(dir.resolve("h.sock"), VhostUserServer.Config.defaults(), sessions);
        VhostUserFrontend good = VhostUserFrontend.connect(server.socket(), 4 << 20);
        good.handshake(VhostUserServerTest.WANTED);
        good.setupVring(0, 256, true);
        good.setupVring(1, 256, true);
        VhostUserSession goodSession = sessions.nextOpened();
        long[] sent = {0};
        List<DynamicTest> tests = new ArrayList<>();
        for (Case k : cases()) {
            tests.add(DynamicTest.dynamicTest(k.name(), () -> {
                int fdsBefore = openFds();
                VhostUserSession bad;
                try (VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 1 << 20)) {
                    bad = sessions.nextOpened();
                    k.attack().run(fe);
                    Sessions.Closed closed = sessions.nextClosed();
                    assertSame(bad, closed.session());
                    assertEquals(k.expected(), closed.reason().cause(), closed.reason().toString());
                    assertTrue(fe.readsEof(), "the backend closed the connection");
                }
                assertTrue(bad.isClosed());
                assertTrue(bad.process().isDead(), "the session's process exited");
                assertEquals(fdsBefore, openFds(), "fds of the hostile session left open");
                assertEquals(List.of(goodSession), server.sessions());
                // The good session still carries frames.
                VhostUserServerTest.send(good, 1, 100, 60);
                sent[0] += 100;
                VhostUserServerTest.awaitFrames((SinkBackend) goodSession.backend(0), sent[0]);
            }));
        }
        tests.add(DynamicTest.dynamicTest("close the server", () -> {
            good.close();
            server.close();
            assertNotNull(server.closeCounts());
        }));
        return tests.stream();
    }
}
