package dev.loomvisor.vhost.backend;

import java.nio.ByteOrder;
import org.agrona.DirectBuffer;

/**
 * ARP (RFC 826), IPv4 (RFC 791) and ICMP echo (RFC 792) as far as a backend answering a guest's ping
 * needs: field offsets within an Ethernet frame, and the Internet checksum (RFC 1071). IPv4 addresses are
 * ints in network order (198.51.100.1 = 0xC6336401).
 */
public final class Inet {

    public static final int ETHERTYPE_IPV4 = 0x0800;
    public static final int ETHERTYPE_ARP = 0x0806;

    // ARP for IPv4 over Ethernet, offsets from the start of the frame.
    public static final int ARP_HTYPE = Frames.ETH_HEADER_LENGTH;
    public static final int ARP_PTYPE = ARP_HTYPE + 2;
    public static final int ARP_HLEN = ARP_HTYPE + 4;
    public static final int ARP_PLEN = ARP_HTYPE + 5;
    public static final int ARP_OPER = ARP_HTYPE + 6;
    public static final int ARP_SHA = ARP_HTYPE + 8;
    public static final int ARP_SPA = ARP_HTYPE + 14;
    public static final int ARP_THA = ARP_HTYPE + 18;
    public static final int ARP_TPA = ARP_HTYPE + 24;
    /** Ethernet header plus the 28-byte ARP packet. */
    public static final int ARP_FRAME_LENGTH = ARP_HTYPE + 28;
    public static final int ARP_HTYPE_ETHERNET = 1;
    public static final int ARP_REQUEST = 1;
    public static final int ARP_REPLY = 2;

    // IPv4 header, offsets from the start of the frame.
    public static final int IP = Frames.ETH_HEADER_LENGTH;
    public static final int IP_VERSION_IHL = IP;
    public static final int IP_TOTAL_LENGTH = IP + 2;
    public static final int IP_FRAGMENT = IP + 6;
    public static final int IP_TTL = IP + 8;
    public static final int IP_PROTOCOL = IP + 9;
    public static final int IP_CHECKSUM = IP + 10;
    public static final int IP_SRC = IP + 12;
    public static final int IP_DST = IP + 16;
    public static final int IP_MIN_HEADER = 20;
    public static final int PROTOCOL_ICMP = 1;
    /** More-fragments flag and fragment offset: an echo request in fragments is not answered. */
    public static final int IP_FRAGMENT_MASK = 0x3FFF;

    // ICMP, offsets from the start of the ICMP message.
    public static final int ICMP_TYPE = 0;
    public static final int ICMP_CODE = 1;
    public static final int ICMP_CHECKSUM = 2;
    public static final int ICMP_HEADER = 8;
    public static final int ICMP_ECHO_REPLY = 0;
    public static final int ICMP_ECHO_REQUEST = 8;

    private Inet() {
    }

    /** Parses a dotted quad ("198.51.100.1") into an int in network order. */
    public static int parseIpv4(String dotted) {
        String[] parts = dotted.split("\\.", -1);
        if (parts.length != 4) {
            throw new IllegalArgumentException("not an IPv4 address: " + dotted);
        }
        int ip = 0;
        for (String p : parts) {
            if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(Character::isDigit)) {
                throw new IllegalArgumentException("not an IPv4 address: " + dotted);
            }
            int b = Integer.parseInt(p);
            if (b > 255) {
                throw new IllegalArgumentException("not an IPv4 address: " + dotted);
            }
            ip = (ip << 8) | b;
        }
        return ip;
    }

    public static String formatIpv4(int ip) {
        return (ip >>> 24) + "." + ((ip >>> 16) & 0xFF) + "." + ((ip >>> 8) & 0xFF) + "." + (ip & 0xFF);
    }

    public static int readIpv4(DirectBuffer buffer, int offset) {
        return buffer.getInt(offset, ByteOrder.BIG_ENDIAN);
    }

    public static int readU16(DirectBuffer buffer, int offset) {
        return buffer.getShort(offset, ByteOrder.BIG_ENDIAN) & 0xFFFF;
    }

    /**
     * The Internet checksum of {@code length} bytes (RFC 1071): the ones' complement of the ones'
     * complement sum of 16-bit big-endian words, an odd last byte padded with zero. Over data that
     * already holds a correct checksum field it is 0.
     */
    public static int checksum(DirectBuffer buffer, int offset, int length) {
        long sum = 0;
        int i = 0;
        for (; i + 4 <= length; i += 4) {
            sum += buffer.getInt(offset + i, ByteOrder.BIG_ENDIAN) & 0xFFFF_FFFFL;
        }
        for (; i + 2 <= length; i += 2) {
            sum += buffer.getShort(offset + i, ByteOrder.BIG_ENDIAN) & 0xFFFF;
        }
        if (i < length) {
            sum += (buffer.getByte(offset + i) & 0xFF) << 8;
        }
        // 32-bit words summed: fold twice to 16 bits (the sum of 16-bit halves is the same modulo 0xFFFF).
        while ((sum >>> 16) != 0) {
            sum = (sum & 0xFFFF) + (sum >>> 16);
        }
        return (int) (~sum & 0xFFFF);
    }
}
