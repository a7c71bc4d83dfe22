package dev.loomvisor.vhost.robust;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.user.FrameAccount;
import dev.loomvisor.vhost.user.VhostUser;
import dev.loomvisor.vhost.user.VhostUserSession;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import dev.loomvisor.vmm.net.NetFeatures;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.concurrent.locks.LockSupport;

/** A normal session's traffic, for checks that a server still serves after churn. */
final class Traffic {

    static final long WANTED = NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX
            | VhostUser.F_PROTOCOL_FEATURES;

    private Traffic() {
    }

    /** A unicast frame from 02:00:00:00:00:03 to 02:00:00:00:00:02, experimental EtherType. */
    static byte[] unicast(int len, int seq) {
        byte[] f = new byte[len];
        f[0] = 0x02;
        f[5] = 0x02;
        f[6] = 0x02;
        f[11] = 0x03;
        f[12] = (byte) 0x88;
        f[13] = (byte) 0xb5;
        for (int i = 14; i < len; i++) {
            f[i] = (byte) (seq + i);
        }
        return f;
    }

    /** A broadcast frame (group destination). */
    static byte[] broadcast(int len) {
        byte[] f = unicast(len, 0);
        for (int i = 0; i < 6; i++) {
            f[i] = (byte) 0xff;
        }
        return f;
    }

    static void send(VhostUserFrontend fe, int vring, byte[] frame) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!fe.transmit(vring, frame)) {
            fe.awaitUsed(vring, 10, TimeUnit.MILLISECONDS);
            assertTrue(System.nanoTime() < deadline, "TX ring stayed full");
        }
    }

    /** Receives on RX vring {@code vring} until {@code n} frames came (bounded: 10 s). */
    static void receive(VhostUserFrontend fe, int vring, long n) {
        long[] got = {0};
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (got[0] < n) {
            assertTrue(System.nanoTime() < deadline, "received " + got[0] + " of " + n);
            fe.awaitUsed(vring, 10, TimeUnit.MILLISECONDS);
            got[0] += fe.receive(vring, (frame, numBuffers) -> { });
        }
    }

    /** Waits (bounded: 10 s) until the session's account satisfies {@code p}; asserts it does. */
    static FrameAccount awaitAccount(VhostUserSession s, Predicate<FrameAccount> p, String what) {
        return await(s::account, p, what);
    }

    static <T> T await(Supplier<T> value, Predicate<T> p, String what) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        T v = value.get();
        while (!p.test(v) && System.nanoTime() - deadline < 0) {
            LockSupport.parkNanos(1_000_000);
            v = value.get();
        }
        assertTrue(p.test(v), what + ": " + v);
        return v;
    }
}
