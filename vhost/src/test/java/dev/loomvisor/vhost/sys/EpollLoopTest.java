package dev.loomvisor.vhost.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Notifier;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class EpollLoopTest {

    @Test
    void eachWriteToAKickFdSignalsItsNotifier() throws Exception {
        try (EpollLoop loop = new EpollLoop("test-epoll")) {
            EventFd kick = EventFd.create();
            Notifier n = new Notifier();
            // A count written before registration is seen at once (level-triggered).
            kick.signal();
            EpollLoop.Registration r = loop.register(kick, n);
            assertTrue(n.await(10, TimeUnit.SECONDS) > 0);
            for (int i = 0; i < 1000; i++) {
                kick.signal();
                assertTrue(n.await(10, TimeUnit.SECONDS) > 0, "kick " + i + " lost");
            }
            int fd = kick.fd();
            r.close();
            assertFalse(Libc.isOpen(fd), "the registration closed its fd");
            r.close(); // idempotent
        }
    }

    @Test
    void manyFdsAtOnce() throws Exception {
        try (EpollLoop loop = new EpollLoop("test-epoll")) {
            int n = 100;
            EventFd[] fds = new EventFd[n];
            Notifier[] ns = new Notifier[n];
            EpollLoop.Registration[] rs = new EpollLoop.Registration[n];
            for (int i = 0; i < n; i++) {
                fds[i] = EventFd.create();
                ns[i] = new Notifier();
                rs[i] = loop.register(fds[i], ns[i]);
            }
            for (int round = 0; round < 20; round++) {
                for (EventFd f : fds) {
                    f.signal();
                }
                for (Notifier x : ns) {
                    assertTrue(x.await(10, TimeUnit.SECONDS) > 0);
                }
            }
            for (int i = 0; i < n; i += 2) {
                rs[i].close();
            }
            assertEquals(0, fds[0].drain(), "closed");
        }
    }
}
