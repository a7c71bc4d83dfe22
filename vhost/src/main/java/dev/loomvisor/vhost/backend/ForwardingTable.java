package dev.loomvisor.vhost.backend;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The switch's learned MAC-to-port table: open addressing over one {@link AtomicLongArray}, lock-free for
 * many learners and readers, allocation-free.
 *
 * <p>Slot layout (one long): bits 63..16 the MAC, bits 15..0 the port index plus one; 0 is an empty
 * slot. Entries are never removed, only moved to another port (a station that moved), or left without a
 * port when their port goes ({@link #forget}: the MAC is unknown again, so a station behind a removed port
 * is flooded to until it is learned anew). A full table learns nothing more: unknown destinations are
 * flooded, which is correct, only slower.
 */
final class ForwardingTable {

    static final int NO_PORT = -1;
    private static final int PORT_BITS = 16;
    private static final long PORT_MASK = (1L << PORT_BITS) - 1;
    /** Bounded probe length: lookups stay O(1) even on a nearly full table. */
    private static final int MAX_PROBES = 16;

    private final AtomicLongArray slots;
    private final int mask;

    ForwardingTable(int capacityPowerOfTwo) {
        if (Integer.bitCount(capacityPowerOfTwo) != 1) {
            throw new IllegalArgumentException("capacity must be a power of two: " + capacityPowerOfTwo);
        }
        slots = new AtomicLongArray(capacityPowerOfTwo);
        mask = capacityPowerOfTwo - 1;
    }

    /** The port that last sent from {@code mac}, or {@link #NO_PORT}. */
    int lookup(long mac) {
        int i = index(mac);
        for (int probe = 0; probe < MAX_PROBES; probe++, i = (i + 1) & mask) {
            long e = slots.get(i);
            if (e == 0) {
                return NO_PORT;
            }
            if ((e >>> PORT_BITS) == mac) {
                return (int) (e & PORT_MASK) - 1;
            }
        }
        return NO_PORT;
    }

    /** Records that {@code mac} sits behind {@code port}; the common case (already known) only reads. */
    void learn(long mac, int port) {
        long entry = (mac << PORT_BITS) | (port + 1);
        int i = index(mac);
        for (int probe = 0; probe < MAX_PROBES; probe++, i = (i + 1) & mask) {
            long e = slots.get(i);
            while (e == 0 || (e >>> PORT_BITS) == mac) {
                if (e == entry) {
                    return;
                }
                if (slots.compareAndSet(i, e, entry)) {
                    return;
                }
                e = slots.get(i); // lost a race for this slot: look at what won
            }
        }
    }

    /**
     * Every MAC learned on {@code port} becomes unknown (the port was removed and its index may be given to
     * a new port, which must not receive the old port's traffic). The MAC stays in its slot, so no probe
     * chain breaks.
     */
    void forget(int port) {
        long portBits = port + 1;
        for (int i = 0; i <= mask; i++) {
            long e = slots.get(i);
            if (e != 0 && (e & PORT_MASK) == portBits && (e >>> PORT_BITS) != 0) {
                slots.compareAndSet(i, e, e & ~PORT_MASK);
            }
        }
    }

    private int index(long mac) {
        long h = mac * 0x9E37_79B9_7F4A_7C15L;
        return (int) (h >>> 40) & mask;
    }
}
