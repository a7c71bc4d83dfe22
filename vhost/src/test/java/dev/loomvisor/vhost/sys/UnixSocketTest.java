package dev.loomvisor.vhost.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class UnixSocketTest {

    @TempDir
    Path dir;

    /** A connected pair: [server side, client side]. */
    UnixSocket[] pair(Path p) throws Exception {
        UnixSocket listener = UnixSocket.listen(p, 1);
        try {
            CompletableFuture<UnixSocket> accepted = CompletableFuture.supplyAsync(() -> {
                try {
                    return listener.accept();
                } catch (NativeException e) {
                    throw new RuntimeException(e);
                }
            });
            UnixSocket client = UnixSocket.connect(p);
            return new UnixSocket[] {accepted.get(10, TimeUnit.SECONDS), client};
        } finally {
            listener.close();
        }
    }

    @Test
    void fdsTravelWithTheBytesAndWork() throws Exception {
        UnixSocket[] s = pair(dir.resolve("a.sock"));
        try (Arena a = Arena.ofConfined(); EventFd e1 = EventFd.create(); EventFd e2 = EventFd.create()) {
            MemorySegment out = a.allocate(16, 8);
            out.set(ValueLayout.JAVA_LONG, 0, 0x1122334455667788L);
            s[1].send(out, 16, new int[] {e1.fd(), e2.fd()}, 2);
            MemorySegment in = a.allocate(16, 8);
            int[] fds = new int[UnixSocket.MAX_FDS];
            assertEquals(16, s[0].recv(in, 16, fds));
            assertEquals(0x1122334455667788L, in.get(ValueLayout.JAVA_LONG, 0));
            assertEquals(2, s[0].lastFdCount());
            assertEquals(0, s[0].lastFlags() & Libc.MSG_CTRUNC);
            assertNotEquals(e1.fd(), fds[0], "a new fd number for the same eventfd");
            assertTrue(EventFd.isEventFd(fds[0]));
            EventFd got = EventFd.adopt(fds[1]);
            got.signal();
            got.signal();
            assertEquals(2, e2.drain(), "a signal on the received fd reaches the sender's eventfd");
            assertEquals(0, e2.drain());
            got.close();
            Libc.closeQuietly(fds[0]);
            assertFalse(Libc.isOpen(fds[0]));
        } finally {
            s[0].close();
            s[1].close();
        }
    }

    @Test
    void moreThan32FdsTruncateAndTheExcessIsClosed() throws Exception {
        UnixSocket[] s = pair(dir.resolve("b.sock"));
        try (Arena a = Arena.ofConfined(); EventFd e = EventFd.create()) {
            int[] many = new int[40];
            java.util.Arrays.fill(many, e.fd());
            MemorySegment buf = a.allocate(8, 8);
            s[1].send(buf, 8, many, many.length);
            int[] fds = new int[UnixSocket.MAX_FDS];
            assertEquals(8, s[0].recv(buf, 8, fds));
            assertTrue((s[0].lastFlags() & Libc.MSG_CTRUNC) != 0, "MSG_CTRUNC");
            assertTrue(s[0].lastFdCount() <= UnixSocket.MAX_FDS);
            for (int i = 0; i < s[0].lastFdCount(); i++) {
                Libc.closeQuietly(fds[i]);
            }
        } finally {
            s[0].close();
            s[1].close();
        }
    }

    @Test
    void endOfStreamAndShutdownWakeABlockedReceiver() throws Exception {
        UnixSocket[] s = pair(dir.resolve("c.sock"));
        try (Arena a = Arena.ofShared()) {
            MemorySegment buf = a.allocate(12, 8);
            CompletableFuture<Integer> r = CompletableFuture.supplyAsync(() -> {
                try {
                    return s[0].recv(buf, 12, new int[UnixSocket.MAX_FDS]);
                } catch (NativeException e) {
                    throw new RuntimeException(e);
                }
            });
            s[0].shutdown();
            assertEquals(0, r.get(10, TimeUnit.SECONDS));
        } finally {
            s[0].close();
            s[1].close();
        }
    }

    @Test
    void bindToAnExistingPathFailsWithErrno() throws Exception {
        Path p = dir.resolve("d.sock");
        try (UnixSocket first = UnixSocket.listen(p, 1)) {
            NativeException e = org.junit.jupiter.api.Assertions.assertThrows(NativeException.class,
                    () -> UnixSocket.listen(p, 1));
            assertEquals(98, e.errno(), e.getMessage()); // EADDRINUSE
            assertEquals("bind", e.call());
        }
    }
}
