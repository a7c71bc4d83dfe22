package dev.loomvisor.vhost.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.Size;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class EchoBackendTest {

    private static final long HOST_MAC = 0x0200_0000_00AAL;
    private static final int HOST_IP = Inet.parseIpv4("198.51.100.1");
    private static final long GUEST_MAC = 0x5254_0012_3456L;
    private static final int GUEST_IP = Inet.parseIpv4("198.51.100.2");

    private final EchoBackend echo = new EchoBackend(HOST_MAC, HOST_IP);

    /** Sends one frame through the backend and returns what comes back to the guest. */
    private List<byte[]> roundTrip(UnsafeBuffer frame, int length) {
        echo.transmit(frame, 0, length);
        echo.flushTransmit();
        return drain();
    }

    private List<byte[]> drain() {
        List<byte[]> out = new ArrayList<>();
        echo.receive((b, o, l) -> {
            byte[] copy = new byte[l];
            b.getBytes(o, copy);
            out.add(copy);
            return true;
        }, 64);
        return out;
    }

    private static UnsafeBuffer arpRequest(int targetIp) {
        UnsafeBuffer f = new UnsafeBuffer(new byte[60]); // padded to the Ethernet minimum, as Linux sends it
        Frames.writeMac(f, Frames.DST_OFFSET, Frames.BROADCAST);
        Frames.writeMac(f, Frames.SRC_OFFSET, GUEST_MAC);
        f.putShort(Frames.ETHERTYPE_OFFSET, (short) Inet.ETHERTYPE_ARP, ByteOrder.BIG_ENDIAN);
        f.putShort(Inet.ARP_HTYPE, (short) 1, ByteOrder.BIG_ENDIAN);
        f.putShort(Inet.ARP_PTYPE, (short) Inet.ETHERTYPE_IPV4, ByteOrder.BIG_ENDIAN);
        f.putByte(Inet.ARP_HLEN, (byte) 6);
        f.putByte(Inet.ARP_PLEN, (byte) 4);
        f.putShort(Inet.ARP_OPER, (short) Inet.ARP_REQUEST, ByteOrder.BIG_ENDIAN);
        Frames.writeMac(f, Inet.ARP_SHA, GUEST_MAC);
        f.putInt(Inet.ARP_SPA, GUEST_IP, ByteOrder.BIG_ENDIAN);
        f.putInt(Inet.ARP_TPA, targetIp, ByteOrder.BIG_ENDIAN);
        return f;
    }

    /** An ICMP echo request as Linux's ping sends it: 20-byte IP header, 8-byte ICMP header, 56 data bytes. */
    private static UnsafeBuffer pingRequest(int dstIp, int sequence) {
        int icmpLength = 64;
        UnsafeBuffer f = new UnsafeBuffer(new byte[Inet.IP + 20 + icmpLength]);
        Frames.writeMac(f, Frames.DST_OFFSET, HOST_MAC);
        Frames.writeMac(f, Frames.SRC_OFFSET, GUEST_MAC);
        f.putShort(Frames.ETHERTYPE_OFFSET, (short) Inet.ETHERTYPE_IPV4, ByteOrder.BIG_ENDIAN);
        f.putByte(Inet.IP_VERSION_IHL, (byte) 0x45);
        f.putShort(Inet.IP_TOTAL_LENGTH, (short) (20 + icmpLength), ByteOrder.BIG_ENDIAN);
        f.putShort(Inet.IP + 4, (short) 0x1234, ByteOrder.BIG_ENDIAN);
        f.putShort(Inet.IP_FRAGMENT, (short) 0x4000, ByteOrder.BIG_ENDIAN); // DF
        f.putByte(Inet.IP_TTL, (byte) 64);
        f.putByte(Inet.IP_PROTOCOL, (byte) Inet.PROTOCOL_ICMP);
        f.putInt(Inet.IP_SRC, GUEST_IP, ByteOrder.BIG_ENDIAN);
        f.putInt(Inet.IP_DST, dstIp, ByteOrder.BIG_ENDIAN);
        f.putShort(Inet.IP_CHECKSUM, (short) referenceChecksum(f, Inet.IP, 20), ByteOrder.BIG_ENDIAN);
        int icmp = Inet.IP + 20;
        f.putByte(icmp, (byte) Inet.ICMP_ECHO_REQUEST);
        f.putShort(icmp + 4, (short) 0xBEEF, ByteOrder.BIG_ENDIAN);
        f.putShort(icmp + 6, (short) sequence, ByteOrder.BIG_ENDIAN);
        for (int i = 8; i < icmpLength; i++) {
            f.putByte(icmp + i, (byte) (i * 7 + sequence));
        }
        f.putShort(icmp + Inet.ICMP_CHECKSUM, (short) referenceChecksum(f, icmp, icmpLength), ByteOrder.BIG_ENDIAN);
        return f;
    }

    /** RFC 1071 written the slow, obvious way, byte pair by byte pair: what Inet.checksum must agree with. */
    private static int referenceChecksum(UnsafeBuffer b, int offset, int length) {
        int sum = 0;
        for (int i = 0; i < length; i += 2) {
            int hi = b.getByte(offset + i) & 0xFF;
            int lo = i + 1 < length ? b.getByte(offset + i + 1) & 0xFF : 0;
            sum += (hi << 8) | lo;
            sum = (sum & 0xFFFF) + (sum >>> 16);
        }
        return ~sum & 0xFFFF;
    }

    @Test
    void checksumOfAKnownIpv4Header() {
        // A header with its checksum 0xB861 in place (a widely used worked example): the sum over it is 0.
        byte[] header = HexFormat.of().parseHex("450000730000400040110000c0a80001c0a800c7");
        UnsafeBuffer b = new UnsafeBuffer(header);
        assertEquals(0xB861, Inet.checksum(b, 0, 20));
        b.putShort(10, (short) 0xB861, ByteOrder.BIG_ENDIAN);
        assertEquals(0, Inet.checksum(b, 0, 20));
    }

    @Property(tries = 300)
    void checksumAgreesWithTheByteWiseReference(@ForAll @Size(max = 1600) byte[] data) {
        UnsafeBuffer b = new UnsafeBuffer(data);
        assertEquals(referenceChecksum(b, 0, data.length), Inet.checksum(b, 0, data.length));
    }

    @Test
    void arpRequestForTheHostAddressGetsAReply() {
        List<byte[]> out = roundTrip(arpRequest(HOST_IP), 60);
        assertEquals(1, out.size());
        UnsafeBuffer r = new UnsafeBuffer(out.getFirst());
        assertEquals(Inet.ARP_FRAME_LENGTH, r.capacity());
        assertEquals(GUEST_MAC, Frames.readMac(r, Frames.DST_OFFSET));
        assertEquals(HOST_MAC, Frames.readMac(r, Frames.SRC_OFFSET));
        assertEquals(Inet.ETHERTYPE_ARP, Inet.readU16(r, Frames.ETHERTYPE_OFFSET));
        assertEquals(1, Inet.readU16(r, Inet.ARP_HTYPE));
        assertEquals(Inet.ETHERTYPE_IPV4, Inet.readU16(r, Inet.ARP_PTYPE));
        assertEquals(6, r.getByte(Inet.ARP_HLEN));
        assertEquals(4, r.getByte(Inet.ARP_PLEN));
        assertEquals(Inet.ARP_REPLY, Inet.readU16(r, Inet.ARP_OPER));
        assertEquals(HOST_MAC, Frames.readMac(r, Inet.ARP_SHA));
        assertEquals(HOST_IP, Inet.readIpv4(r, Inet.ARP_SPA));
        assertEquals(GUEST_MAC, Frames.readMac(r, Inet.ARP_THA));
        assertEquals(GUEST_IP, Inet.readIpv4(r, Inet.ARP_TPA));
        assertEquals(1, echo.counters().get(EchoBackend.Counter.ARP_REPLIES));
    }

    @Test
    void arpForAnotherAddressOrNotARequestIsDropped() {
        assertTrue(roundTrip(arpRequest(Inet.parseIpv4("198.51.100.3")), 60).isEmpty());
        UnsafeBuffer reply = arpRequest(HOST_IP);
        reply.putShort(Inet.ARP_OPER, (short) Inet.ARP_REPLY, ByteOrder.BIG_ENDIAN);
        assertTrue(roundTrip(reply, 60).isEmpty());
        assertTrue(roundTrip(arpRequest(HOST_IP), Inet.ARP_FRAME_LENGTH - 1).isEmpty(), "truncated");
        assertEquals(3, echo.counters().get(EchoBackend.Counter.DROP_ARP));
        assertEquals(0, echo.counters().get(EchoBackend.Counter.ARP_REPLIES));
    }

    @Test
    void echoRequestGetsAReplyWithCorrectChecksums() {
        UnsafeBuffer request = pingRequest(HOST_IP, 7);
        List<byte[]> out = roundTrip(request, request.capacity());
        assertEquals(1, out.size());
        UnsafeBuffer r = new UnsafeBuffer(out.getFirst());
        assertEquals(request.capacity(), r.capacity());
        assertEquals(GUEST_MAC, Frames.readMac(r, Frames.DST_OFFSET));
        assertEquals(HOST_MAC, Frames.readMac(r, Frames.SRC_OFFSET));
        assertEquals(HOST_IP, Inet.readIpv4(r, Inet.IP_SRC));
        assertEquals(GUEST_IP, Inet.readIpv4(r, Inet.IP_DST));
        assertEquals(0, referenceChecksum(r, Inet.IP, 20), "IPv4 header checksum");
        int icmp = Inet.IP + 20;
        assertEquals(Inet.ICMP_ECHO_REPLY, r.getByte(icmp));
        assertEquals(0, r.getByte(icmp + 1));
        assertEquals(0, referenceChecksum(r, icmp, 64), "ICMP checksum");
        byte[] sent = new byte[64 - 4];
        byte[] got = new byte[64 - 4];
        request.getBytes(icmp + 4, sent);
        r.getBytes(icmp + 4, got);
        assertArrayEquals(sent, got, "identifier, sequence and data come back unchanged");
        assertEquals(1, echo.counters().get(EchoBackend.Counter.ICMP_REPLIES));
    }

    @Test
    void echoRequestsWithBadChecksumsOrFragmentsAreDropped() {
        UnsafeBuffer badIp = pingRequest(HOST_IP, 1);
        badIp.putByte(Inet.IP_TTL, (byte) 63); // header changed, checksum not
        UnsafeBuffer badIcmp = pingRequest(HOST_IP, 2);
        badIcmp.putByte(badIcmp.capacity() - 1, (byte) 0x55);
        UnsafeBuffer fragment = pingRequest(HOST_IP, 3);
        fragment.putShort(Inet.IP_FRAGMENT, (short) 0x2000, ByteOrder.BIG_ENDIAN); // MF
        fragment.putShort(Inet.IP_CHECKSUM, (short) 0);
        fragment.putShort(Inet.IP_CHECKSUM, (short) referenceChecksum(fragment, Inet.IP, 20), ByteOrder.BIG_ENDIAN);
        UnsafeBuffer shortTotal = pingRequest(HOST_IP, 4);
        for (UnsafeBuffer f : List.of(badIp, badIcmp, fragment)) {
            assertTrue(roundTrip(f, f.capacity()).isEmpty());
        }
        assertTrue(roundTrip(shortTotal, shortTotal.capacity() - 1).isEmpty(), "total length beyond the frame");
        assertEquals(4, echo.counters().get(EchoBackend.Counter.DROP_IPV4));
    }

    @Test
    void unicastFramesComeBackWithTheAddressesSwapped() {
        UnsafeBuffer f = new UnsafeBuffer(new byte[64]);
        long peer = 0x0200_0000_0000L;
        Frames.writeMac(f, Frames.DST_OFFSET, peer);
        Frames.writeMac(f, Frames.SRC_OFFSET, GUEST_MAC);
        f.putShort(Frames.ETHERTYPE_OFFSET, (short) 0x0800, ByteOrder.BIG_ENDIAN); // IPv4, another address
        for (int i = 14; i < 64; i++) {
            f.putByte(i, (byte) i);
        }
        List<byte[]> out = roundTrip(f, 64);
        assertEquals(1, out.size());
        UnsafeBuffer r = new UnsafeBuffer(out.getFirst());
        assertEquals(GUEST_MAC, Frames.readMac(r, Frames.DST_OFFSET));
        assertEquals(peer, Frames.readMac(r, Frames.SRC_OFFSET));
        for (int i = 12; i < 64; i++) {
            assertEquals(f.getByte(i), r.getByte(i), "byte " + i);
        }
        assertEquals(1, echo.counters().get(EchoBackend.Counter.ECHOED));
    }

    @Test
    void groupFramesAndRuntsAreNotReturned() {
        UnsafeBuffer f = new UnsafeBuffer(new byte[64]);
        Frames.writeMac(f, Frames.DST_OFFSET, 0x3333_0000_0001L); // IPv6 all-nodes multicast
        Frames.writeMac(f, Frames.SRC_OFFSET, GUEST_MAC);
        assertTrue(roundTrip(f, 64).isEmpty());
        assertTrue(roundTrip(f, 13).isEmpty());
        assertEquals(1, echo.counters().get(EchoBackend.Counter.DROP_GROUP));
        assertEquals(1, echo.counters().get(EchoBackend.Counter.DROP_RUNT));
    }

    @Test
    void aFullQueueDropsAndCountsAndAReceiverRefusalKeepsTheFrame() {
        EchoBackend small = new EchoBackend(HOST_MAC, HOST_IP, 4096);
        UnsafeBuffer f = new UnsafeBuffer(new byte[64]);
        Frames.writeMac(f, Frames.DST_OFFSET, HOST_MAC);
        Frames.writeMac(f, Frames.SRC_OFFSET, GUEST_MAC);
        int accepted = 0;
        for (int i = 0; i < 100; i++) {
            f.putInt(20, i);
            if (small.transmit(f, 0, 64)) {
                accepted++;
            }
        }
        assertEquals(4096 / (64 + 8), accepted, "4096 bytes hold 56 records of a 64-byte frame and its header");
        assertEquals(100 - accepted, small.counters().get(EchoBackend.Counter.DROP_QUEUE_FULL));
        AtomicInteger calls = new AtomicInteger();
        assertEquals(0, small.receive((b, o, l) -> calls.incrementAndGet() < 0, 64), "refused: nothing consumed");
        assertTrue(small.rxPending());
        List<Integer> seen = new ArrayList<>();
        assertEquals(accepted, small.receive((b, o, l) -> seen.add(b.getInt(o + 20)), 100));
        assertEquals(java.util.stream.IntStream.range(0, accepted).boxed().toList(), seen, "in order");
        assertFalse(small.rxPending());
    }

    @Test
    void theListenerIsWokenOncePerBatchAndAtOnceWhenFramesWait() {
        AtomicInteger wakes = new AtomicInteger();
        echo.setRxListener(wakes::incrementAndGet);
        UnsafeBuffer request = pingRequest(HOST_IP, 1);
        for (int i = 0; i < 5; i++) {
            echo.transmit(request, 0, request.capacity());
        }
        assertEquals(0, wakes.get(), "not before the end of the batch");
        echo.flushTransmit();
        assertEquals(1, wakes.get());
        echo.flushTransmit();
        assertEquals(1, wakes.get(), "nothing new queued");
        AtomicInteger late = new AtomicInteger();
        echo.setRxListener(late::incrementAndGet);
        assertEquals(1, late.get(), "frames already wait: called once at once");
        assertEquals(5, drain().size());
    }

    @Test
    void answeringAllocatesNothingPerFrame() {
        var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        UnsafeBuffer ping = pingRequest(HOST_IP, 1);
        UnsafeBuffer arp = arpRequest(HOST_IP);
        UnsafeBuffer other = new UnsafeBuffer(new byte[64]);
        Frames.writeMac(other, Frames.DST_OFFSET, 0x0200_0000_0000L);
        Frames.writeMac(other, Frames.SRC_OFFSET, GUEST_MAC);
        FrameReceiver take = (b, o, l) -> true;
        Runnable round = () -> {
            for (int i = 0; i < 20; i++) {
                echo.transmit(ping, 0, ping.capacity());
                echo.transmit(arp, 0, 60);
                echo.transmit(other, 0, 64);
            }
            echo.flushTransmit();
            echo.receive(take, 64);
        };
        for (int i = 0; i < 20_000; i++) {
            round.run(); // warm-up: JIT
        }
        long before = mx.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 5_000; i++) {
            round.run();
        }
        long bytes = mx.getCurrentThreadAllocatedBytes() - before;
        long frames = 5_000L * 60;
        assertEquals(frames, 3 * 5_000L * 20);
        // One object per frame would be >= 16 bytes a frame.
        assertTrue(bytes < frames, bytes + " bytes allocated for " + frames + " frames");
    }
}
