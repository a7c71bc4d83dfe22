package dev.loomvisor.vhost.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.peers.NetNs;
import java.nio.ByteOrder;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/**
 * The TAP backend against the host kernel's own network stack, inside a namespace of the test's: an ICMP
 * echo request the "guest" sends is answered by the kernel, and the reply comes back through the RX side,
 * woken by the backend's poller; the interface's counters see the frame.
 */
class TapBackendTest {

    @Test
    void theHostKernelAnswersAPingThroughTheTap() throws Exception {
        try (NetNs ns = NetNs.create()) {
            String ifname = "lvt" + ProcessHandle.current().pid() % 100_000;
            TapBackend tap = TapBackend.open(ifname);
            try {
                ns.adopt(ifname, "02:00:00:00:00:01");
                // The guest's address resolves without ARP, so the kernel's first frame out is the reply.
                ns.ip("neigh", "add", "198.51.100.2", "lladdr", "02:00:00:00:00:02", "dev", ifname);
                Semaphore woken = new Semaphore(0);
                tap.setRxListener(woken::release);
                var frame = new UnsafeBuffer(new byte[2048]);
                int len = PcapCaptureTest.echoRequest(frame, 7, 56);
                assertTrue(tap.transmit(frame, 0, len), tap.counters().toString());

                int[] reply = {-1, -1};
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (reply[0] < 0 && System.nanoTime() < deadline) {
                    woken.tryAcquire(100, TimeUnit.MILLISECONDS);
                    tap.receive((b, o, l) -> {
                        if (l >= Inet.IP + 28 && Inet.readU16(b, o + Frames.ETHERTYPE_OFFSET) == Inet.ETHERTYPE_IPV4
                                && (b.getByte(o + Inet.IP_PROTOCOL) & 0xFF) == Inet.PROTOCOL_ICMP) {
                            int icmp = o + Inet.IP + (b.getByte(o + Inet.IP_VERSION_IHL) & 0x0F) * 4;
                            reply[0] = b.getByte(icmp + Inet.ICMP_TYPE) & 0xFF;
                            reply[1] = b.getShort(icmp + 6, ByteOrder.BIG_ENDIAN);
                        }
                        return true; // anything else (IPv6 neighbour discovery...) is taken and ignored
                    }, 64);
                }
                assertEquals(Inet.ICMP_ECHO_REPLY, reply[0], "an echo reply from the host: " + tap.counters());
                assertEquals(7, reply[1], "to our sequence number");
                assertTrue(ns.counter(ifname, "rx_packets") >= 1, "the interface counted the guest's frame");
                assertEquals(1, tap.counters().get(TapBackend.Counter.TX_FRAMES));
                assertTrue(tap.counters().get(TapBackend.Counter.RX_FRAMES) >= 1);
            } finally {
                tap.shutdown();
            }
        }
    }
}
