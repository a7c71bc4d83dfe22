package dev.loomvisor.vhost.accounting;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.accounting.Ledger.Drop;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.testing.RingRig;
import dev.loomvisor.vmm.net.FrameLimits;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.nio.ByteOrder;
import java.util.EnumMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.locks.LockSupport;

/**
 * A guest on the same switch that sends only malformed frames, each of which the data path must drop with
 * its own reason while the other VMs' traffic runs: TX chains shorter than the virtio-net header, frames
 * above 64 KiB, frames shorter than an Ethernet header (runts), and frames addressed to its own MAC (which
 * the switch learned on its own port). Hand-driven TX ring ({@link RingRig}) on its own thread.
 */
final class MalformedSender implements AutoCloseable {

    static final long MAC = Frames.localMac(0xBAD);
    private static final Drop[] KINDS = {Drop.TX_BAD_HEADER, Drop.TX_TOO_BIG, Drop.SWITCH_RUNT, Drop.SWITCH_SAME_PORT};
    private static final long BIG = RingRig.DATA + 0x8000;

    private final RingRig rig;
    private final L2Switch.Port port;
    private final Map<Drop, Long> sent = new EnumMap<>(Drop.class);
    private final long count;
    private final SplittableRandom rnd;
    private final Thread thread;
    private volatile Throwable failure;

    MalformedSender(L2Switch sw, long count, long seed) throws ErrnoException {
        this.rig = new RingRig(NetFeatures.VERSION_1 | NetFeatures.EVENT_IDX);
        this.port = sw.addPort("malformed");
        this.count = count;
        this.rnd = new SplittableRandom(seed);
        for (Drop d : KINDS) {
            sent.put(d, 0L);
        }
        // Slots 0..63 hold one prepared frame each, of the kind the slot number gives (the ring has 64).
        for (int i = 0; i < RingRig.SIZE; i++) {
            prepare(i);
        }
        rig.attach(VirtioNet.RX, port);
        rig.attach(VirtioNet.TX, port);
        thread = Thread.ofPlatform().daemon().name("malformed-guest").unstarted(this::run);
    }

    private static Drop kindOf(int slot) {
        return KINDS[slot % KINDS.length];
    }

    private void prepare(int slot) {
        int off = (int) (RingRig.slot(slot) - RingRig.BASE);
        rig.frame(slot, 64, (byte) slot);
        Frames.writeMac(rig.mem, off + VirtioNetHeader.SIZE + Frames.DST_OFFSET, MAC);
        Frames.writeMac(rig.mem, off + VirtioNetHeader.SIZE + Frames.SRC_OFFSET, MAC);
        rig.mem.putShort(off + VirtioNetHeader.SIZE + Frames.ETHERTYPE_OFFSET, (short) Frames.ETHERTYPE_EXPERIMENTAL,
                ByteOrder.BIG_ENDIAN);
    }

    /** The TX length (header included) of the chain for {@code slot}. */
    private int length(int slot) {
        return switch (kindOf(slot)) {
            case TX_BAD_HEADER -> rnd.nextInt(0, VirtioNetHeader.SIZE); // shorter than the virtio-net header
            case SWITCH_RUNT -> VirtioNetHeader.SIZE + rnd.nextInt(0, Frames.ETH_HEADER_LENGTH);
            case SWITCH_SAME_PORT -> VirtioNetHeader.SIZE + 64; // to its own MAC
            default -> throw new IllegalStateException();
        };
    }

    void start() {
        thread.start();
    }

    private void run() {
        try {
            var used = new UsedElement();
            long posted = 0;
            while (posted < count) {
                while (rig.txq.reap(used)) {
                    // a chain back: its slot is free again
                }
                int added = 0;
                while (posted < count && rig.txq.freeCount() > 0) {
                    // A slot may be in flight again: the device only reads it, and the length is the chain's.
                    int slot = rnd.nextInt(RingRig.SIZE);
                    Drop kind = kindOf(slot);
                    int head = kind == Drop.TX_TOO_BIG
                            // One readable descriptor of header + 64 KiB + 1: above the largest frame.
                            ? rig.txq.add(BIG, VirtioNetHeader.SIZE + FrameLimits.MAX_GSO_FRAME + 1, false, slot)
                            : rig.txq.add(RingRig.slot(slot), length(slot), false, slot);
                    if (head < 0) {
                        break;
                    }
                    sent.merge(kind, 1L, Long::sum);
                    posted++;
                    added++;
                }
                if (added > 0) {
                    rig.publishTx();
                } else {
                    LockSupport.parkNanos(20_000);
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    /** True once the sender is done and every chain came back used (reaped here, after the thread). */
    boolean done() {
        if (thread.isAlive()) {
            return false; // its end happens-before a false isAlive: the ring is this thread's from then on
        }
        var used = new UsedElement();
        while (rig.txq.reap(used)) {
            // the chains the device returned after the sender's last look
        }
        return rig.txq.inFlight() == 0;
    }

    Throwable failure() {
        return failure;
    }

    /** Per reason: sent (after the thread ended), and what the data path counted. */
    Map<Drop, Long> sent() {
        return Map.copyOf(sent);
    }

    Map<Drop, Long> counted() {
        var tx = rig.net.tx().counters();
        var p = port.counters();
        Map<Drop, Long> m = new EnumMap<>(Drop.class);
        m.put(Drop.TX_BAD_HEADER, tx.get(RingCounter.DROP_BAD_HEADER));
        m.put(Drop.TX_TOO_BIG, tx.get(RingCounter.DROP_TOO_BIG));
        m.put(Drop.SWITCH_RUNT, p.get(PortCounter.TX_DROP_RUNT));
        m.put(Drop.SWITCH_SAME_PORT, p.get(PortCounter.TX_DROP_SAME_PORT));
        return m;
    }

    /** Copies of its frames that entered some port's queue: must stay 0. */
    long delivered() {
        return port.counters().get(PortCounter.TX_DELIVERED);
    }

    /** Frames the TX ring saw the backend refuse: the switch's drops. */
    long refusedByBackend() {
        return rig.net.tx().counters().get(RingCounter.DROP_BACKEND);
    }

    long total() {
        return count;
    }

    @Override
    public void close() {
        rig.close();
    }
}
