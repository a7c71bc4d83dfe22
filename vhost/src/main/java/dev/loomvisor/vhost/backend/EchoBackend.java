package dev.loomvisor.vhost.backend;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicBoolean;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;
import dev.loomvisor.vhost.stats.Counters;

/**
 * A backend that returns what the guest sends: unicast frames come back with the addresses swapped, and
 * for one IPv4 address it is a minimal host, answering ARP requests (RFC 826) and ICMP echo requests
 * (RFC 792) with correct checksums, so a real guest can ping it.
 *
 * <p>Each answer is built in place in a bounded queue from the TX worker to the RX worker (an Agrona
 * {@link OneToOneRingBuffer}: {@code tryClaim} gives a contiguous slot, so nothing is copied twice and
 * nothing allocated), and the RX listener is woken once per TX batch ({@link #flushTransmit()}), as the
 * switch does. A full queue drops and counts.
 *
 * <p>Not returned (dropped and counted): frames to a group address that are not an ARP request for this
 * address (returning a broadcast or multicast to its only sender is a loop, not an echo: a guest would
 * see its own IPv6 duplicate-address probes and neighbour solicitations), ARP other than a request for
 * this address, and IPv4 for this address that is not a well-formed, unfragmented echo request with
 * correct checksums.
 *
 * <p>Closing the backend (its device is gone) gives its queue to the next echo backend of the same size (a
 * few are kept): a server serving a churn of sessions does not allocate and free 256 KiB per session, which
 * freed direct memory does not give back to the system at once, so RSS grew with every session.
 */
public final class EchoBackend implements NetBackend, AutoCloseable {

    /** Spare queues kept per size: enough for sessions that come and go one after another. */
    static final int SPARE_LIMIT = 8;
    /** Queues of closed backends, by size, empty and ready for the next backend (at most SPARE_LIMIT each). */
    private static final ConcurrentHashMap<Integer, ConcurrentLinkedDeque<OneToOneRingBuffer>> SPARE_QUEUES =
            new ConcurrentHashMap<>();

    private static final int MSG_FRAME = 1;
    /** The TTL of answers (Linux's default, net.ipv4.ip_default_ttl). */
    private static final int REPLY_TTL = 64;

    public enum Counter {
        /** Frames from the guest. */
        TX_FRAMES, TX_BYTES,
        /** Unicast frames returned with source and destination swapped. */
        ECHOED,
        ARP_REPLIES, ICMP_REPLIES,
        /** Frames delivered back to the guest. */
        RX_FRAMES, RX_BYTES,
        /** Shorter than an Ethernet header. */
        DROP_RUNT,
        /** Group destination, not an ARP request for this address. */
        DROP_GROUP,
        /** ARP that is not a well-formed request for this address. */
        DROP_ARP,
        /** IPv4 for this address that is not a well-formed echo request: bad header, checksum, fragment. */
        DROP_IPV4,
        /** The queue back to the guest was full (or the frame longer than one of its records: 1/8 of it). */
        DROP_QUEUE_FULL,
        /** Answers still queued for the guest when its device went (never delivered). */
        DROP_AT_CLOSE
    }

    private final long mac;
    private final int ip;
    private final OneToOneRingBuffer queue;
    private final RingDrain drain;
    private final Counters<Counter> counters = new Counters<>(Counter.class);
    private final int queueBytes;
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile Runnable rxListener;
    /** Frames queued since the last flushTransmit (TX worker only). */
    private int queuedInBatch;

    /**
     * @param mac this host's MAC (the source of ARP and ICMP answers)
     * @param ip this host's IPv4 address in network order
     * @param queueBytes bytes of the queue back to the guest, a power of two of at least 4096
     */
    public EchoBackend(long mac, int ip, int queueBytes) {
        if (Integer.bitCount(queueBytes) != 1 || queueBytes < 4096) {
            throw new IllegalArgumentException("queue bytes must be a power of two >= 4096: " + queueBytes);
        }
        if (Frames.isGroup(mac)) {
            throw new IllegalArgumentException("a host MAC must be unicast: " + Long.toHexString(mac));
        }
        this.mac = mac;
        this.ip = ip;
        this.queueBytes = queueBytes;
        OneToOneRingBuffer q = SPARE_QUEUES.computeIfAbsent(queueBytes, b -> new ConcurrentLinkedDeque<>()).pollFirst();
        if (q == null) {
            ByteBuffer bb = ByteBuffer.allocateDirect(queueBytes + RingBufferDescriptor.TRAILER_LENGTH);
            q = new OneToOneRingBuffer(new UnsafeBuffer(bb));
        }
        this.queue = q;
        this.drain = new RingDrain(queue);
    }

    /** 256 KiB of queue: about 3,600 frames of 64 bytes or 170 of 1,514. */
    public EchoBackend(long mac, int ip) {
        this(mac, ip, 1 << 18);
    }

    public Counters<Counter> counters() {
        return counters;
    }

    @Override
    public boolean transmit(DirectBuffer frame, int offset, int length) {
        counters.addOrdered(Counter.TX_FRAMES, 1);
        counters.addOrdered(Counter.TX_BYTES, length);
        if (length < Frames.ETH_HEADER_LENGTH) {
            return drop(Counter.DROP_RUNT);
        }
        int type = Inet.readU16(frame, offset + Frames.ETHERTYPE_OFFSET);
        if (type == Inet.ETHERTYPE_ARP) {
            return arp(frame, offset, length);
        }
        long dst = Frames.readMac(frame, offset + Frames.DST_OFFSET);
        if (Frames.isGroup(dst)) {
            return drop(Counter.DROP_GROUP);
        }
        if (type == Inet.ETHERTYPE_IPV4 && length >= Inet.IP + Inet.IP_MIN_HEADER
                && Inet.readIpv4(frame, offset + Inet.IP_DST) == ip) {
            return icmp(frame, offset, length);
        }
        int slot = claim(length);
        if (slot < 0) {
            return false;
        }
        MutableDirectBuffer out = queue.buffer();
        out.putBytes(slot, frame, offset, length);
        Frames.writeMac(out, slot + Frames.DST_OFFSET, Frames.readMac(frame, offset + Frames.SRC_OFFSET));
        Frames.writeMac(out, slot + Frames.SRC_OFFSET, dst);
        commit(slot, Counter.ECHOED);
        return true;
    }

    /** A request for this address gets a reply (RFC 826, "Packet Reception"); everything else is dropped. */
    private boolean arp(DirectBuffer f, int o, int length) {
        if (length < Inet.ARP_FRAME_LENGTH
                || Inet.readU16(f, o + Inet.ARP_HTYPE) != Inet.ARP_HTYPE_ETHERNET
                || Inet.readU16(f, o + Inet.ARP_PTYPE) != Inet.ETHERTYPE_IPV4
                || (f.getByte(o + Inet.ARP_HLEN) & 0xFF) != 6 || (f.getByte(o + Inet.ARP_PLEN) & 0xFF) != 4
                || Inet.readU16(f, o + Inet.ARP_OPER) != Inet.ARP_REQUEST
                || Inet.readIpv4(f, o + Inet.ARP_TPA) != ip) {
            return drop(Counter.DROP_ARP);
        }
        long requesterMac = Frames.readMac(f, o + Inet.ARP_SHA);
        int requesterIp = Inet.readIpv4(f, o + Inet.ARP_SPA);
        int slot = claim(Inet.ARP_FRAME_LENGTH);
        if (slot < 0) {
            return false;
        }
        MutableDirectBuffer out = queue.buffer();
        Frames.writeMac(out, slot + Frames.DST_OFFSET, requesterMac);
        Frames.writeMac(out, slot + Frames.SRC_OFFSET, mac);
        out.putShort(slot + Frames.ETHERTYPE_OFFSET, (short) Inet.ETHERTYPE_ARP, ByteOrder.BIG_ENDIAN);
        out.putShort(slot + Inet.ARP_HTYPE, (short) Inet.ARP_HTYPE_ETHERNET, ByteOrder.BIG_ENDIAN);
        out.putShort(slot + Inet.ARP_PTYPE, (short) Inet.ETHERTYPE_IPV4, ByteOrder.BIG_ENDIAN);
        out.putByte(slot + Inet.ARP_HLEN, (byte) 6);
        out.putByte(slot + Inet.ARP_PLEN, (byte) 4);
        out.putShort(slot + Inet.ARP_OPER, (short) Inet.ARP_REPLY, ByteOrder.BIG_ENDIAN);
        Frames.writeMac(out, slot + Inet.ARP_SHA, mac);
        out.putInt(slot + Inet.ARP_SPA, ip, ByteOrder.BIG_ENDIAN);
        Frames.writeMac(out, slot + Inet.ARP_THA, requesterMac);
        out.putInt(slot + Inet.ARP_TPA, requesterIp, ByteOrder.BIG_ENDIAN);
        commit(slot, Counter.ARP_REPLIES);
        return true;
    }

    /**
     * An echo request to this address gets an echo reply carrying the same identifier, sequence and data
     * (RFC 792); both checksums are checked on the request and computed afresh for the reply.
     */
    private boolean icmp(DirectBuffer f, int o, int length) {
        int versionIhl = f.getByte(o + Inet.IP_VERSION_IHL) & 0xFF;
        int headerLength = (versionIhl & 0x0F) * 4;
        int totalLength = Inet.readU16(f, o + Inet.IP_TOTAL_LENGTH);
        // RFC 791: version 4, a header of at least 5 words, a total length that covers the header and fits
        // in the frame (an Ethernet frame may carry padding after it).
        if ((versionIhl >>> 4) != 4 || headerLength < Inet.IP_MIN_HEADER || totalLength < headerLength
                || totalLength > length - Inet.IP
                || (Inet.readU16(f, o + Inet.IP_FRAGMENT) & Inet.IP_FRAGMENT_MASK) != 0
                || (f.getByte(o + Inet.IP_PROTOCOL) & 0xFF) != Inet.PROTOCOL_ICMP
                || Inet.checksum(f, o + Inet.IP, headerLength) != 0) {
            return drop(Counter.DROP_IPV4);
        }
        int icmp = Inet.IP + headerLength;
        int icmpLength = totalLength - headerLength;
        if (icmpLength < Inet.ICMP_HEADER
                || (f.getByte(o + icmp + Inet.ICMP_TYPE) & 0xFF) != Inet.ICMP_ECHO_REQUEST
                || f.getByte(o + icmp + Inet.ICMP_CODE) != 0
                || Inet.checksum(f, o + icmp, icmpLength) != 0) {
            return drop(Counter.DROP_IPV4);
        }
        int replyLength = Inet.IP + totalLength;
        int slot = claim(replyLength);
        if (slot < 0) {
            return false;
        }
        MutableDirectBuffer out = queue.buffer();
        out.putBytes(slot, f, o, replyLength);
        Frames.writeMac(out, slot + Frames.DST_OFFSET, Frames.readMac(f, o + Frames.SRC_OFFSET));
        Frames.writeMac(out, slot + Frames.SRC_OFFSET, mac);
        out.putInt(slot + Inet.IP_DST, Inet.readIpv4(f, o + Inet.IP_SRC), ByteOrder.BIG_ENDIAN);
        out.putInt(slot + Inet.IP_SRC, ip, ByteOrder.BIG_ENDIAN);
        out.putByte(slot + Inet.IP_TTL, (byte) REPLY_TTL);
        out.putShort(slot + Inet.IP_CHECKSUM, (short) 0);
        out.putShort(slot + Inet.IP_CHECKSUM, (short) Inet.checksum(out, slot + Inet.IP, headerLength),
                ByteOrder.BIG_ENDIAN);
        out.putByte(slot + icmp + Inet.ICMP_TYPE, (byte) Inet.ICMP_ECHO_REPLY);
        out.putShort(slot + icmp + Inet.ICMP_CHECKSUM, (short) 0);
        out.putShort(slot + icmp + Inet.ICMP_CHECKSUM, (short) Inet.checksum(out, slot + icmp, icmpLength),
                ByteOrder.BIG_ENDIAN);
        commit(slot, Counter.ICMP_REPLIES);
        return true;
    }

    /** A slot of {@code length} bytes in the queue back to the guest, or -1 (counted) when it is full. */
    private int claim(int length) {
        int slot = length <= queue.maxMsgLength() ? queue.tryClaim(MSG_FRAME, length) : RingBuffer.INSUFFICIENT_CAPACITY;
        if (slot < 0) {
            counters.addOrdered(Counter.DROP_QUEUE_FULL, 1);
            return -1;
        }
        return slot;
    }

    private void commit(int slot, Counter what) {
        queue.commit(slot);
        counters.addOrdered(what, 1);
        queuedInBatch++;
    }

    private boolean drop(Counter why) {
        counters.addOrdered(why, 1);
        return false;
    }

    @Override
    public void flushTransmit() {
        if (queuedInBatch == 0) {
            return;
        }
        queuedInBatch = 0;
        Runnable l = rxListener;
        if (l != null) {
            l.run();
        }
    }

    @Override
    public int receive(FrameReceiver r, int limit) {
        int total = drain.drain(r, limit);
        if (total > 0) {
            counters.addOrdered(Counter.RX_FRAMES, total);
            counters.addOrdered(Counter.RX_BYTES, drain.bytes());
        }
        return total;
    }

    @Override
    public boolean rxPending() {
        return queue.size() > 0;
    }

    @Override
    public long discardPending() {
        long n = drain.drain((b, o, l) -> true, Integer.MAX_VALUE);
        if (n > 0) {
            counters.addOrdered(Counter.DROP_AT_CLOSE, n);
        }
        return n;
    }

    /**
     * The device is gone (no worker calls this backend again): discards what is still queued (counted) and
     * gives the queue to the next echo backend. The counters stay readable. Idempotent.
     */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            discardPending();
            rxListener = null;
            ConcurrentLinkedDeque<OneToOneRingBuffer> spare = SPARE_QUEUES.get(queueBytes);
            if (spare.size() < SPARE_LIMIT) {
                spare.offerFirst(queue); // beyond the limit, the queue is left to the GC
            }
        }
    }

    @Override
    public void setRxListener(Runnable listener) {
        rxListener = listener;
        if (listener != null && rxPending()) {
            listener.run();
        }
    }
}
