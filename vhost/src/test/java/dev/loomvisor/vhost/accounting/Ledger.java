package dev.loomvisor.vhost.accounting;

import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;
import dev.loomvisor.vhost.fixture.VmLab;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * The books of one flow (one sending VM to its one receiving VM) at a moment: what the sender's guest sent,
 * what the receiver's guest got from it, and every loss by its counted reason, read from the counters the
 * data path keeps where it drops (TX ring, switch port, RX ring). Each receiver has exactly one sender, so
 * an RX-side drop belongs to that flow. Also the second opinions the data path keeps about the same frames
 * (the TX ring's backend-refused count, the switch port's frame count, the switch queue's in and out
 * counts, the RX ring's frame count),
 * so that one counting site that forgets a frame disagrees with another.
 */
record Ledger(long sent, long delivered, Map<Drop, Long> drops, long txBackendRefused, long switchTxFrames,
              long queuedIn, long queuedOut, long rxRingFrames, long guestReceived, long txCompleted) {

    /** Where a frame of a flow can be lost, each read from the one counter that counts it. */
    enum Drop {
        /** TX ring: readable part shorter than the virtio-net header. */
        TX_BAD_HEADER("tx-bad-header"),
        /** TX ring: frame above 64 KiB. */
        TX_TOO_BIG("tx-too-big"),
        /** Switch: shorter than an Ethernet header (malformed). */
        SWITCH_RUNT("runt"),
        /** Switch: longer than a port queue record. */
        SWITCH_TOO_LONG("switch-too-long"),
        /** Switch: destination learned on the sending port. */
        SWITCH_SAME_PORT("same-port"),
        /** Switch: a frame to flood with no other port to flood it to. */
        SWITCH_NO_PORT("no-port"),
        /**
         * Switch: the destination port's queue was full. The receiver's RX ring overflowing ends here: with
         * no guest buffers the frames wait in the port queue (as in a tap socket), and the queue overflows.
         */
        QUEUE_FULL("queue-full"),
        /** RX ring: the frame is larger than the guest's buffers (no MRG_RXBUF). */
        RX_TOO_BIG("rx-too-big"),
        /** RX ring: the guest offered a chain with a device-readable part. */
        RX_BAD_CHAIN("rx-bad-chain");

        final String label;

        Drop(String label) {
            this.label = label;
        }
    }

    static Ledger of(VmLab.Vm from, VmLab.Vm to) {
        var port = from.port().counters();
        var tx = from.net().tx().counters();
        var rx = to.net().rx().counters();
        Map<Drop, Long> d = new EnumMap<>(Drop.class);
        d.put(Drop.TX_BAD_HEADER, tx.get(RingCounter.DROP_BAD_HEADER));
        d.put(Drop.TX_TOO_BIG, tx.get(RingCounter.DROP_TOO_BIG));
        d.put(Drop.SWITCH_RUNT, port.get(PortCounter.TX_DROP_RUNT));
        d.put(Drop.SWITCH_TOO_LONG, port.get(PortCounter.TX_DROP_TOO_LONG));
        d.put(Drop.SWITCH_SAME_PORT, port.get(PortCounter.TX_DROP_SAME_PORT));
        d.put(Drop.SWITCH_NO_PORT, port.get(PortCounter.TX_DROP_NO_PORT));
        d.put(Drop.QUEUE_FULL, port.get(PortCounter.TX_DROP_QUEUE_FULL));
        d.put(Drop.RX_TOO_BIG, rx.get(RingCounter.DROP_TOO_BIG));
        d.put(Drop.RX_BAD_CHAIN, rx.get(RingCounter.DROP_BAD_RX_CHAIN));
        return new Ledger(from.guest().sent(), to.guest().receivedFrom(from.guest().mac()), d,
                tx.get(RingCounter.DROP_BACKEND), port.get(PortCounter.TX_FRAMES), port.get(PortCounter.TX_DELIVERED),
                to.port().counters().get(PortCounter.RX_FRAMES), rx.get(RingCounter.FRAMES),
                to.guest().received(), from.guest().txCompleted());
    }

    /** This ledger's figures since {@code before} (counters only grow). */
    Ledger since(Ledger before) {
        Map<Drop, Long> d = new EnumMap<>(Drop.class);
        for (Drop r : Drop.values()) {
            d.put(r, drops.get(r) - before.drops.get(r));
        }
        return new Ledger(sent - before.sent, delivered - before.delivered, d,
                txBackendRefused - before.txBackendRefused, switchTxFrames - before.switchTxFrames,
                queuedIn - before.queuedIn,
                queuedOut - before.queuedOut, rxRingFrames - before.rxRingFrames,
                guestReceived - before.guestReceived, txCompleted - before.txCompleted);
    }

    long dropped() {
        long s = 0;
        for (long v : drops.values()) {
            s += v;
        }
        return s;
    }

    /** Every frame sent is delivered or dropped with a reason, and the device returned every TX chain. */
    boolean balanced() {
        return txCompleted == sent && delivered + dropped() == sent;
    }

    /** Drops at the switch (the frames the TX ring saw the backend refuse). */
    long switchDrops() {
        return drops.get(Drop.SWITCH_RUNT) + drops.get(Drop.SWITCH_TOO_LONG) + drops.get(Drop.SWITCH_SAME_PORT)
                + drops.get(Drop.SWITCH_NO_PORT) + drops.get(Drop.QUEUE_FULL);
    }

    /**
     * Frames the switch counted in from this sender: all that passed its length checks (runts and
     * over-long frames are refused before), each then forwarded unicast or dropped (no flooding here).
     */
    long switchAccepted() {
        return queuedIn + drops.get(Drop.SWITCH_SAME_PORT) + drops.get(Drop.SWITCH_NO_PORT)
                + drops.get(Drop.QUEUE_FULL);
    }

    /** Drops by the receiving RX ring. */
    long rxDrops() {
        return drops.get(Drop.RX_TOO_BIG) + drops.get(Drop.RX_BAD_CHAIN);
    }

    static Ledger sum(List<Ledger> all) {
        Map<Drop, Long> d = new EnumMap<>(Drop.class);
        for (Drop r : Drop.values()) {
            d.put(r, 0L);
        }
        long s = 0, del = 0, refused = 0, swTx = 0, in = 0, out = 0, ring = 0, recv = 0, done = 0;
        for (Ledger l : all) {
            s += l.sent;
            del += l.delivered;
            refused += l.txBackendRefused;
            swTx += l.switchTxFrames;
            in += l.queuedIn;
            out += l.queuedOut;
            ring += l.rxRingFrames;
            recv += l.guestReceived;
            done += l.txCompleted;
            l.drops.forEach((r, v) -> d.merge(r, v, Long::sum));
        }
        return new Ledger(s, del, d, refused, swTx, in, out, ring, recv, done);
    }

    /** The drops as {@code (queue-full=12, rx-too-big=3, ...)}, every reason listed. */
    String reasons() {
        return format(drops);
    }

    /** Counts by reason as {@code (runt=12, same-port=3, ...)}, in the enum's order. */
    static String format(Map<Drop, Long> byReason) {
        var sb = new StringBuilder("(");
        for (Drop r : Drop.values()) {
            Long v = byReason.get(r);
            if (v == null) {
                continue;
            }
            if (sb.length() > 1) {
                sb.append(", ");
            }
            sb.append(r.label).append('=').append(v);
        }
        return sb.append(')').toString();
    }

    @Override
    public String toString() {
        return "sent=" + sent + " delivered=" + delivered + " dropped=" + dropped() + " " + reasons()
                + " tx-completed=" + txCompleted + " tx-backend-refused=" + txBackendRefused
                + " switch-tx-frames=" + switchTxFrames
                + " queued-in=" + queuedIn + " queued-out=" + queuedOut + " rx-ring-frames=" + rxRingFrames
                + " guest-received=" + guestReceived;
    }
}
