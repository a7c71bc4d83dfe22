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
 *
 * <p>A port may have several receive queues ({@link #addPort(String, int)}), as a multiqueue tap
 * (IFF_MULTI_QUEUE) has one file per queue pair of a multiqueue virtio-net: each {@link PortQueue} is the
 * backend of one pair's vhost-net. Steering: a frame sent on queue k of its sender lands in queue k mod n of
 * a destination port with n queues. The sender's queue stands in for a flow hash: an emulated guest pair
 * transmits one flow, so the flow keeps one queue end to end (what tap's automq steering aims at) and
 * every receive queue of an n-queue port is reached from a sender with n queues.
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
    /** Most receive queues of one port (a multiqueue tap allows 256). */
    public static final int MAX_QUEUES = 256;
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

    /** Adds a port with one queue at the lowest free index. */
    public synchronized Port addPort(String name) {
        return addPort(name, 1);
    }

    /** Adds a port with {@code queues} receive queues (1 to 256) at the lowest free index. */
    public synchronized Port addPort(String name, int queues) {
        if (queues < 1 || queues > MAX_QUEUES) {
            throw new IllegalArgumentException(queues + " queues (1.." + MAX_QUEUES + ")");
        }
        Port[] now = portArray;
        int index = 0;
        while (index < now.length && now[index] != null) {
            index++;
        }
        if (index >= 0xFFFE) {
            throw new IllegalStateException("too many ports");
        }
        ManyToOneRingBuffer[] rings = new ManyToOneRingBuffer[queues];
        for (int k = 0; k < queues; k++) {
            ManyToOneRingBuffer q = spareQueues.pollFirst();
            if (q == null) {
                // Mapped, not allocated: allocateDirect zeroes (touches) the whole queue, while a port of a mostly
                // idle VM only ever touches the pages its few frames and the trailer land on. The buffer view keeps
                // the automatic arena's mapping alive as long as the queue is reachable.
                ByteBuffer bb = AnonymousMapping.map(Arena.ofAuto(), queueCapacity + RingBufferDescriptor.TRAILER_LENGTH)
                        .asByteBuffer();
                q = new ManyToOneRingBuffer(new UnsafeBuffer(bb));
            } else {
                // A frame a late sender put there after the removal: never the new port's (dropped uncounted).
                new RingDrain(q).drain((b, o, l) -> true, Integer.MAX_VALUE);
            }
            rings[k] = q;
        }
        Port p = new Port(this, index, name, rings);
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
        for (PortQueue q : p.queues) {
            q.discardPending();
            if (spareQueues.size() < SPARE_LIMIT) {
                spareQueues.offerFirst(q.ring); // beyond the limit, the queue is left to the GC
            }
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
    private int forward(PortQueue fromQueue, DirectBuffer frame, int offset, int length) {
        Port from = fromQueue.port;
        long dst = Frames.readMac(frame, offset + Frames.DST_OFFSET);
        long src = Frames.readMac(frame, offset + Frames.SRC_OFFSET);
        if (!Frames.isGroup(src)) {
            table.learn(src, from.index);
        }
        int to = Frames.isGroup(dst) ? ForwardingTable.NO_PORT : table.lookup(dst);
        Port[] all = portArray;
        if (to == from.index) {
            from.count(PortCounter.TX_DROP_SAME_PORT, 1);
            return 0;
        }
        if (to != ForwardingTable.NO_PORT && to < all.length && all[to] != null) {
            return deliver(fromQueue, all[to], frame, offset, length) ? 1 : 0;
        }
        if (liveCount(all) < 2) {
            // Nowhere to flood to: dropped, and counted, so that every refused frame has a reason.
            from.count(PortCounter.TX_DROP_NO_PORT, 1);
            return 0;
        }
        from.count(PortCounter.TX_FLOODED, 1);
        int copies = 0;
        for (Port p : all) {
            if (p != null && p != from && deliver(fromQueue, p, frame, offset, length)) {
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

    private static boolean deliver(PortQueue from, Port to, DirectBuffer frame, int offset, int length) {
        PortQueue q = to.steer(from.number);
        if (q.ring.write(MSG_FRAME, frame, offset, length)) {
            from.pendingDelivered++;
            if (to.index < Long.SIZE) {
                from.wakeMask |= 1L << to.index; // woken at flushTransmit, once per batch
            } else {
                q.wakeReceiver();
            }
            return true;
        }
        from.port.count(PortCounter.TX_DROP_QUEUE_FULL, 1);
        return false;
    }

    /**
     * One switch port: the backend of one vhost-net device, or with several queues of one per queue pair
     * ({@link #queue(int)}). As a backend itself it is its queue 0. Closing it removes it from the switch.
     */
    public static final class Port implements NetBackend, AutoCloseable {

        private final L2Switch owner;
        private final int index;
        private final String name;
        private final PortQueue[] queues;
        private final Counters<PortCounter> counters = new Counters<>(PortCounter.class);

        private Port(L2Switch owner, int index, String name, ManyToOneRingBuffer[] rings) {
            this.owner = owner;
            this.index = index;
            this.name = name;
            this.queues = new PortQueue[rings.length];
            for (int k = 0; k < rings.length; k++) {
                queues[k] = new PortQueue(this, k, rings[k]);
            }
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

        public int queueCount() {
            return queues.length;
        }

        /** Queue {@code k}: the backend of queue pair {@code k}. */
        public PortQueue queue(int k) {
            return queues[k];
        }

        /** The queue a frame sent on sender queue {@code senderQueue} lands in. */
        PortQueue steer(int senderQueue) {
            return queues.length == 1 ? queues[0] : queues[senderQueue % queues.length];
        }

        /**
         * Counts on this port: one writer per side while the port has one queue (ordered store), an atomic
         * add when several queues' workers share the counters.
         */
        void count(PortCounter c, long n) {
            if (queues.length == 1) {
                counters.addOrdered(c, n);
            } else {
                counters.add(c, n);
            }
        }

        /** Bytes waiting in this port's queues, record headers included (a snapshot). */
        public int queuedBytes() {
            int n = 0;
            for (PortQueue q : queues) {
                n += q.queuedBytes();
            }
            return n;
        }

        @Override
        public boolean transmit(DirectBuffer frame, int offset, int length) {
            return queues[0].transmit(frame, offset, length);
        }

        @Override
        public void flushTransmit() {
            queues[0].flushTransmit();
        }

        @Override
        public int receive(FrameReceiver r, int limit) {
            return queues[0].receive(r, limit);
        }

        @Override
        public boolean rxPending() {
            return queues[0].rxPending();
        }

        @Override
        public void setRxListener(Runnable listener) {
            queues[0].setRxListener(listener);
        }

        /** Drops what waits in every queue of the port. */
        @Override
        public long discardPending() {
            long n = 0;
            for (PortQueue q : queues) {
                n += q.discardPending();
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

    /**
     * One queue of a port: what one queue pair's vhost-net sends into and receives from (one TX worker and
     * one RX worker at a time, as for any backend). Counts go to the port's counters.
     */
    public static final class PortQueue implements NetBackend {

        private final Port port;
        private final int number;
        private final ManyToOneRingBuffer ring;
        private final RingDrain drain;
        private volatile Runnable rxListener;
        /** Ports (index < 64) this queue delivered to since its last flushTransmit; TX worker only. */
        private long wakeMask;
        /** TX counts of the batch in progress (TX worker only), published at flushTransmit. */
        private long pendingFrames;
        private long pendingBytes;
        private long pendingDelivered;

        private PortQueue(Port port, int number, ManyToOneRingBuffer ring) {
            this.port = port;
            this.number = number;
            this.ring = ring;
            this.drain = new RingDrain(ring);
        }

        public Port port() {
            return port;
        }

        /** The queue's number in its port. */
        public int number() {
            return number;
        }

        /** Bytes waiting in this queue, record headers included (a snapshot). */
        public int queuedBytes() {
            return ring.size();
        }

        @Override
        public boolean transmit(DirectBuffer frame, int offset, int length) {
            if (length < Frames.ETH_HEADER_LENGTH) {
                port.count(PortCounter.TX_DROP_RUNT, 1);
                return false;
            }
            if (length > ring.maxMsgLength()) {
                port.count(PortCounter.TX_DROP_TOO_LONG, 1);
                return false;
            }
            pendingFrames++;
            pendingBytes += length;
            return port.owner.forward(this, frame, offset, length) > 0;
        }

        @Override
        public void flushTransmit() {
            if (pendingFrames != 0) {
                // Published once per batch: readers see counts at most one batch (64 frames) old.
                port.count(PortCounter.TX_FRAMES, pendingFrames);
                port.count(PortCounter.TX_BYTES, pendingBytes);
                port.count(PortCounter.TX_DELIVERED, pendingDelivered);
                pendingFrames = 0;
                pendingBytes = 0;
                pendingDelivered = 0;
            }
            long m = wakeMask;
            if (m == 0) {
                return;
            }
            wakeMask = 0;
            Port[] all = port.owner.portArray;
            while (m != 0) {
                int i = Long.numberOfTrailingZeros(m);
                m &= m - 1;
                if (i < all.length && all[i] != null) {
                    all[i].steer(number).wakeReceiver();
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
                port.count(PortCounter.RX_FRAMES, total);
                port.count(PortCounter.RX_BYTES, drain.bytes());
            }
            return total;
        }

        @Override
        public boolean rxPending() {
            return ring.size() > 0;
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
                port.count(PortCounter.RX_DISCARDED_AT_CLOSE, n);
            }
            return n;
        }

        @Override
        public String toString() {
            return port + " queue " + number;
        }
    }
}
