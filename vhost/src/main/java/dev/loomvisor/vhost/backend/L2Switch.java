package dev.loomvisor.vhost.backend;

import dev.loomvisor.vmm.memory.AnonymousMapping;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.ManyToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;
import dev.loomvisor.vhost.stats.Counters;

/**
 * A learning Ethernet switch between vhost-net devices. Each {@link Port} is a {@link NetBackend}: a frame
 * a guest transmits is forwarded, on the transmitting worker's thread, into the destination port's
 * bounded queue (an Agrona {@link ManyToOneRingBuffer}: many sending ports, one receiving worker), and that
 * port's RX listener is woken at the end of the sender's batch ({@link Port#flushTransmit()}). A full queue drops the frame and counts it against the sending port; group
 * and unknown destinations are flooded to every other port. No thread of its own, no allocation per frame.
 *
 * <p>Ports come and go ({@link #removePort}, or {@link Port#close()}): a removed port's index is given to
 * the next port added, and the MACs learned on it become unknown, so a switch serving a churn of sessions
 * holds only the ports of the live ones. A removed port's queue, emptied, goes to the next port added (a
 * sender that still held the removed port can only add a frame to a queue that stays valid: the queue is
 * many-producer, and its memory is not freed while a port or the spare list holds it), so a churn of
 * ports one after another allocates no queue memory.
 */
public final class L2Switch {

    /** Record type of a frame in a port queue (Agrona needs a positive message type id). */
    private static final int MSG_FRAME = 1;

    /** Per-port counters. TX = from the port's guest into the switch; RX = from the switch to the guest. */
    public enum PortCounter {
        TX_FRAMES, TX_BYTES,
        /** Frames of this port's guest dropped because a destination queue was full (one per copy). */
        TX_DROP_QUEUE_FULL,
        /** Frames shorter than an Ethernet header. */
        TX_DROP_RUNT,
        /** Frames addressed to a MAC learned on the sending port itself (802.1D: never sent back). */
        TX_DROP_SAME_PORT,
        /** Frames longer than a queue record can hold. */
        TX_DROP_TOO_LONG,
        /** Frames to flood (group or unknown destination) on a switch with no port but the sender's. */
        TX_DROP_NO_PORT,
        /** Frames sent to more than one port (group or unknown destination). */
        TX_FLOODED,
        /** Copies of this port's frames that entered a destination queue (more than TX_FRAMES when flooding). */
        TX_DELIVERED,
        /** Frames the receiving guest consumed from this port's queue. */
        RX_FRAMES, RX_BYTES,
        /** Frames still in this port's queue when it was removed (its guest never got them). */
        RX_DISCARDED_AT_CLOSE
    }

    /** Live ports by index; a removed port leaves null until its index is given again. Written under this. */
    private volatile Port[] portArray = new Port[0];
    private final ForwardingTable table;
    private final int queueCapacity;
    /** Spare queues kept: enough for ports that come and go one after another. */
    static final int SPARE_LIMIT = 8;
    /** Emptied queues of removed ports, for the next ports (guarded by this). */
    private final ArrayDeque<ManyToOneRingBuffer> spareQueues = new ArrayDeque<>();

    /**
     * @param queueCapacity bytes of each port's queue, a power of two; each frame takes its length plus an
     *     8-byte record header, rounded up to 8
     * @param tableCapacity slots of the MAC table, a power of two
     */
    public L2Switch(int queueCapacity, int tableCapacity) {
        if (Integer.bitCount(queueCapacity) != 1 || queueCapacity < 4096) {
            throw new IllegalArgumentException("queue capacity must be a power of two >= 4096: " + queueCapacity);
        }
        this.queueCapacity = queueCapacity;
        this.table = new ForwardingTable(tableCapacity);
        SwitchDropsEvent.register(this);
    }

    /** A switch with 256 KiB per port queue (about 170 frames of 1514 bytes, 3640 of 64) and 4096 MACs. */
    public L2Switch() {
        this(1 << 18, 4096);
    }

    /** Adds a port at the lowest free index. */
    public synchronized Port addPort(String name) {
        Port[] now = portArray;
        int index = 0;
        while (index < now.length && now[index] != null) {
            index++;
        }
        if (index >= 0xFFFE) {
            throw new IllegalStateException("too many ports");
        }
        ManyToOneRingBuffer q = spareQueues.pollFirst();
        if (q == null) {
            // Mapped, not allocated: allocateDirect zeroes (touches) the whole queue, while a port of a mostly idle
            // VM only ever touches the pages its few frames and the trailer land on. The buffer view keeps the
            // automatic arena's mapping alive as long as the queue is reachable.
            ByteBuffer bb = AnonymousMapping.map(Arena.ofAuto(), queueCapacity + RingBufferDescriptor.TRAILER_LENGTH)
                    .asByteBuffer();
            q = new ManyToOneRingBuffer(new UnsafeBuffer(bb));
        } else {
            // A frame a late sender put there after the removal: never the new port's (dropped uncounted).
            new RingDrain(q).drain((b, o, l) -> true, Integer.MAX_VALUE);
        }
        Port p = new Port(this, index, name, q);
        Port[] next = Arrays.copyOf(now, Math.max(now.length, index + 1));
        next[index] = p;
        portArray = next;
        return p;
    }

    /**
     * Removes a port (idempotent): nothing is forwarded to it any more, and what it learned is forgotten. A
     * sender that read the port list just before may still put a frame in the removed queue, which is
     * dropped with it. Its counters stay readable.
     */
    public synchronized void removePort(Port p) {
        Port[] now = portArray;
        if (p.owner != this || p.index >= now.length || now[p.index] != p) {
            return;
        }
        Port[] next = now.clone();
        next[p.index] = null;
        int n = next.length;
        while (n > 0 && next[n - 1] == null) {
            n--;
        }
        portArray = Arrays.copyOf(next, n);
        table.forget(p.index);
        p.discardPending();
        if (spareQueues.size() < SPARE_LIMIT) {
            spareQueues.offerFirst(p.queue); // beyond the limit, the queue is left to the GC
        }
    }

    /** The live ports, by index. */
    public List<Port> ports() {
        List<Port> out = new ArrayList<>();
        for (Port p : portArray) {
            if (p != null) {
                out.add(p);
            }
        }
        return out;
    }

    /**
     * Teaches the table that {@code mac} sits behind {@code port}, as the gratuitous ARP a guest sends when its
     * link comes up does on a real bridge: the first frames to it are then not flooded to every port.
     */
    public void learn(long mac, Port port) {
        if (!Frames.isGroup(mac)) {
            table.learn(mac, port.index);
        }
    }

    /** The port index a MAC was learned on, or -1. */
    public int lookup(long mac) {
        return table.lookup(mac);
    }

    /** Forwards one frame; returns the copies that entered a queue. */
    private int forward(Port from, DirectBuffer frame, int offset, int length) {
        long dst = Frames.readMac(frame, offset + Frames.DST_OFFSET);
        long src = Frames.readMac(frame, offset + Frames.SRC_OFFSET);
        if (!Frames.isGroup(src)) {
            table.learn(src, from.index);
        }
        int to = Frames.isGroup(dst) ? ForwardingTable.NO_PORT : table.lookup(dst);
        Port[] all = portArray;
        if (to == from.index) {
            from.counters.addOrdered(PortCounter.TX_DROP_SAME_PORT, 1);
            return 0;
        }
        if (to != ForwardingTable.NO_PORT && to < all.length && all[to] != null) {
            return deliver(from, all[to], frame, offset, length) ? 1 : 0;
        }
        if (liveCount(all) < 2) {
            // Nowhere to flood to: dropped, and counted, so that every refused frame has a reason.
            from.counters.addOrdered(PortCounter.TX_DROP_NO_PORT, 1);
            return 0;
        }
        from.counters.addOrdered(PortCounter.TX_FLOODED, 1);
        int copies = 0;
        for (Port p : all) {
            if (p != null && p != from && deliver(from, p, frame, offset, length)) {
                copies++;
            }
        }
        return copies;
    }

    private static int liveCount(Port[] all) {
        int n = 0;
        for (Port p : all) {
            if (p != null && ++n == 2) {
                return n;
            }
        }
        return n;
    }

    private static boolean deliver(Port from, Port to, DirectBuffer frame, int offset, int length) {
        if (to.queue.write(MSG_FRAME, frame, offset, length)) {
            from.pendingDelivered++;
            if (to.index < Long.SIZE) {
                from.wakeMask |= 1L << to.index; // woken at flushTransmit, once per batch
            } else {
                to.wakeReceiver();
            }
            return true;
        }
        from.counters.addOrdered(PortCounter.TX_DROP_QUEUE_FULL, 1);
        return false;
    }

    /** One switch port: the backend of one vhost-net device. Closing it removes it from the switch. */
    public static final class Port implements NetBackend, AutoCloseable {

        private final L2Switch owner;
        private final int index;
        private final String name;
        private final ManyToOneRingBuffer queue;
        private final RingDrain drain;
        private final Counters<PortCounter> counters = new Counters<>(PortCounter.class);
        private volatile Runnable rxListener;
        /** Ports (index < 64) this port delivered to since its last flushTransmit; TX worker only. */
        private long wakeMask;
        /** TX counts of the batch in progress (TX worker only), published at flushTransmit. */
        private long pendingFrames;
        private long pendingBytes;
        private long pendingDelivered;

        private Port(L2Switch owner, int index, String name, ManyToOneRingBuffer queue) {
            this.owner = owner;
            this.index = index;
            this.name = name;
            this.queue = queue;
            this.drain = new RingDrain(queue);
        }

        public int index() {
            return index;
        }

        public String name() {
            return name;
        }

        public Counters<PortCounter> counters() {
            return counters;
        }

        /** Bytes waiting in this port's queue, record headers included (a snapshot). */
        public int queuedBytes() {
            return queue.size();
        }

        @Override
        public boolean transmit(DirectBuffer frame, int offset, int length) {
            if (length < Frames.ETH_HEADER_LENGTH) {
                counters.addOrdered(PortCounter.TX_DROP_RUNT, 1);
                return false;
            }
            if (length > queue.maxMsgLength()) {
                counters.addOrdered(PortCounter.TX_DROP_TOO_LONG, 1);
                return false;
            }
            pendingFrames++;
            pendingBytes += length;
            return owner.forward(this, frame, offset, length) > 0;
        }

        @Override
        public void flushTransmit() {
            if (pendingFrames != 0) {
                // Published once per batch: readers see counts at most one batch (64 frames) old.
                counters.addOrdered(PortCounter.TX_FRAMES, pendingFrames);
                counters.addOrdered(PortCounter.TX_BYTES, pendingBytes);
                counters.addOrdered(PortCounter.TX_DELIVERED, pendingDelivered);
                pendingFrames = 0;
                pendingBytes = 0;
                pendingDelivered = 0;
            }
            long m = wakeMask;
            if (m == 0) {
                return;
            }
            wakeMask = 0;
            Port[] all = owner.portArray;
            while (m != 0) {
                int i = Long.numberOfTrailingZeros(m);
                m &= m - 1;
                if (i < all.length && all[i] != null) {
                    all[i].wakeReceiver();
                }
            }
        }

        private void wakeReceiver() {
            Runnable l = rxListener;
            if (l != null) {
                l.run();
            }
        }

        @Override
        public int receive(FrameReceiver r, int limit) {
            int total = drain.drain(r, limit);
            if (total > 0) {
                counters.addOrdered(PortCounter.RX_FRAMES, total);
                counters.addOrdered(PortCounter.RX_BYTES, drain.bytes());
            }
            return total;
        }

        @Override
        public boolean rxPending() {
            return queue.size() > 0;
        }

        @Override
        public void setRxListener(Runnable listener) {
            rxListener = listener;
            if (listener != null && rxPending()) {
                listener.run();
            }
        }

        @Override
        public long discardPending() {
            long n = drain.drain((b, o, l) -> true, Integer.MAX_VALUE);
            if (n > 0) {
                counters.addOrdered(PortCounter.RX_DISCARDED_AT_CLOSE, n);
            }
            return n;
        }

        /** Removes the port from its switch. */
        @Override
        public void close() {
            owner.removePort(this);
        }

        @Override
        public String toString() {
            return "port " + index + " (" + name + ")";
        }
    }
}
