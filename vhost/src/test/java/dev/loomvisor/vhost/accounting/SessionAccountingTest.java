package dev.loomvisor.vhost.accounting;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.EchoBackend;
import dev.loomvisor.vhost.user.CloseCause;
import dev.loomvisor.vhost.user.CloseReason;
import dev.loomvisor.vhost.user.FrameAccount;
import dev.loomvisor.vhost.user.VhostUser;
import dev.loomvisor.vhost.user.VhostUserServer;
import dev.loomvisor.vhost.user.VhostUserSession;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import dev.loomvisor.vmm.net.NetFeatures;
import java.nio.file.Path;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A session's close account and the server's totals add up exactly: known frames go to an echo backend,
 * some dropped by the backend (group destinations, runts), some echoed into the guest's RX buffers, and the
 * echoes that found no buffer are discarded, and counted, when the session closes.
 */
class SessionAccountingTest {

    static final long WANTED = NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX
            | VhostUser.F_PROTOCOL_FEATURES;

    static final int RX_BUFFERS = 16;
    static final int ECHOED = 40;
    static final int GROUP = 5;
    static final int RUNTS = 2;

    @TempDir
    Path dir;

    record Closed(VhostUserSession session, CloseReason reason) {
    }

    @Test
    void closeLineAndTotalsAddUp() throws Exception {
        AtomicReference<EchoBackend> echo = new AtomicReference<>();
        var closed = new LinkedBlockingQueue<Closed>();
        var config = VhostUserServer.Config.defaults().withBackends((s, k) -> {
            EchoBackend e = new EchoBackend(0x020000000009L, 0x0a000001);
            echo.set(e);
            return e;
        });
        VhostUserServer.Listener listener = new VhostUserServer.Listener() {
            @Override
            public void closed(VhostUserSession session, CloseReason reason) {
                closed.add(new Closed(session, reason));
            }
        };
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("acct.sock"), config, listener)) {
            VhostUserSession s;
            try (VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20)) {
                fe.handshake(WANTED);
                fe.setupVring(0, RX_BUFFERS, true); // 16 RX buffers, never refilled: the other echoes wait
                fe.setupVring(1, 256, true);
                s = server.sessions().getFirst();
                for (int i = 0; i < ECHOED; i++) {
                    send(fe, frame(60, false));
                }
                for (int i = 0; i < GROUP; i++) {
                    send(fe, frame(60, true));
                }
                for (int i = 0; i < RUNTS; i++) {
                    send(fe, new byte[10]);
                }
                VhostUserSession session = s;
                await(() -> session.account().txReceived() == ECHOED + GROUP + RUNTS
                        && session.account().rxDelivered() == RX_BUFFERS, () -> "frames in: " + session.account());
                VhostUserServer.Totals during = server.totals();
                assertEquals(1, during.open());
                assertEquals(during.opened(), during.closed() + during.open());
            }
            Closed c = closed.poll(10, TimeUnit.SECONDS);
            assertNotNull(c, "the session ended");
            assertEquals(CloseCause.PEER_CLOSED, c.reason().cause());
            FrameAccount a = c.session().account();
            assertEquals(ECHOED + GROUP + RUNTS, a.txReceived(), a.toString());
            assertEquals(ECHOED, a.txDelivered(), a.toString());
            assertEquals(GROUP + RUNTS, a.txDropBackend(), a.toString());
            assertEquals(0, a.txDropBadHeader() + a.txDropTooBig(), a.toString());
            assertEquals(ECHOED, a.rxOffered(), "every echo is delivered or discarded: " + a);
            assertEquals(RX_BUFFERS, a.rxDelivered(), a.toString());
            assertEquals(ECHOED - RX_BUFFERS, a.rxDiscardedAtClose(), a.toString());
            assertEquals(0, a.rxDropTooBig() + a.rxDropBadChain(), a.toString());
            assertEquals(ECHOED * 60L, a.txBytes());
            assertEquals(RX_BUFFERS * 60L, a.rxBytes());

            var k = echo.get().counters();
            assertEquals(ECHOED + GROUP + RUNTS, k.get(EchoBackend.Counter.TX_FRAMES));
            assertEquals(ECHOED, k.get(EchoBackend.Counter.ECHOED));
            assertEquals(GROUP, k.get(EchoBackend.Counter.DROP_GROUP));
            assertEquals(RUNTS, k.get(EchoBackend.Counter.DROP_RUNT));
            assertEquals(RX_BUFFERS, k.get(EchoBackend.Counter.RX_FRAMES));
            assertEquals(ECHOED - RX_BUFFERS, k.get(EchoBackend.Counter.DROP_AT_CLOSE));

            VhostUserServer.Totals t = server.totals();
            assertEquals(1, t.opened());
            assertEquals(1, t.closed());
            assertEquals(0, t.open());
            assertEquals(a, t.closedAccount(), "the summary is the sum of the close lines");
            assertEquals(null, c.session().backend(0), "nothing of a closed session is kept but its counters");
            assertTrue(a.toString().contains("tx 47 received, 40 delivered, 7 dropped"), a.toString());
            assertTrue(a.toString().contains("rx 40 offered, 16 delivered, 24 dropped"), a.toString());
        }
    }

    static byte[] frame(int len, boolean group) {
        byte[] f = new byte[len];
        f[0] = (byte) (group ? 0xff : 0x02);
        f[5] = 0x02;
        f[6] = 0x02;
        f[11] = 0x03;
        f[12] = (byte) 0x88;
        f[13] = (byte) 0xb5;
        return f;
    }

    static void send(VhostUserFrontend fe, byte[] frame) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!fe.transmit(1, frame)) {
            fe.awaitUsed(1, 10, TimeUnit.MILLISECONDS);
            assertTrue(System.nanoTime() < deadline, "TX ring stayed full");
        }
    }

    static void await(java.util.function.BooleanSupplier done, java.util.function.Supplier<String> what) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!done.getAsBoolean()) {
            assertTrue(System.nanoTime() - deadline < 0, what.get());
            LockSupport.parkNanos(1_000_000);
        }
    }
}
