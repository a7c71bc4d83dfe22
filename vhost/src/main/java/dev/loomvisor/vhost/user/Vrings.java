package dev.loomvisor.vhost.user;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Task;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostDevice;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.stats.Counters;
import dev.loomvisor.vhost.sys.EpollLoop;
import dev.loomvisor.vhost.sys.EventFd;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.virtio.PackedRing;
import dev.loomvisor.vmm.virtio.SplitRing;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The vring state of one session and the devices behind it: the front-end's view of every vring (size,
 * addresses, base, kick/call/err fds, started and enabled), one vhost-net and backend per queue pair, and
 * the memory table. Vring 2k is RX of pair k, 2k+1 its TX.
 *
 * <p>Ring states (vhost-user.rst "Ring states"): stopped until SET_VRING_KICK starts it; it runs once
 * started and enabled (SET_VRING_ENABLE 1 when PROTOCOL_FEATURES was negotiated, at once otherwise);
 * GET_VRING_BASE stops it again and drops its kick and call. A running ring is a vhost-net ring with the
 * pair's backend attached, whose handler runs once at start, so nothing waits for a first kick.
 *
 * <p>Touched by the session thread only, except the counters ({@link #stats()}, {@link #account()}) and
 * the pair lookups, which any thread may read.
 */
final class Vrings {

    /** The front-end's view of one vring. Fields other than the fds are touched by the session thread only. */
    private static final class Ring {
        final int index;
        final int pair;
        final int local;
        int num;
        long descUva;
        long availUva;
        long usedUva;
        boolean addrSet;
        int base;
        boolean baseSet;
        boolean started;
        boolean enabled;
        boolean running;
        EpollLoop.Registration kick;
        /** Set instead of {@link #kick} when the front-end polls (no kick fd). */
        EpollLoop.Polled polled;
        final Notifier kickNotifier = new Notifier();
        volatile EventFd callFd;
        volatile EventFd errFd;
        final Notifier callNotifier = new Notifier();
        final Notifier errNotifier = new Notifier();

        Ring(int index) {
            this.index = index;
            this.pair = index / 2;
            this.local = index % 2 == 0 ? VirtioNet.RX : VirtioNet.TX;
            // The device's call: write the real eventfd (non-blocking, so a worker never parks in it).
            callNotifier.setListener(n -> {
                n.poll();
                EventFd f = callFd;
                if (f != null) {
                    f.signal();
                }
            });
            errNotifier.setListener(n -> {
                n.poll();
                EventFd f = errFd;
                if (f != null) {
                    f.signal();
                }
            });
        }
    }

    /** One queue pair: its vhost-net and backend. */
    record Pair(VhostNet net, NetBackend backend) {
    }

    private final VhostUserServer server;
    private final VhostUserSession session;
    private final Task owner;
    private final Ring[] rings;
    /** Written by the session thread, read by any (stats, backend lookups). */
    private final AtomicReferenceArray<Pair> pairs;
    /** What pairs closed so far (RESET_OWNER, or the session's end) counted, per vring. */
    private final QueueStats[] retired;
    private volatile FrameAccount retiredAccount = FrameAccount.ZERO;
    private MemoryTable table;
    private long features;
    private boolean ownerSet;

    Vrings(VhostUserServer server, VhostUserSession session, Task owner) {
        this.server = server;
        this.session = session;
        this.owner = owner;
        int maxPairs = server.config().maxQueuePairs();
        this.rings = new Ring[2 * maxPairs];
        for (int i = 0; i < rings.length; i++) {
            rings[i] = new Ring(i);
        }
        this.pairs = new AtomicReferenceArray<>(maxPairs);
        this.retired = new QueueStats[2 * maxPairs];
    }

    int maxQueuePairs() {
        return pairs.length();
    }

    Pair pairOrNull(int k) {
        return pairs.get(k);
    }

    long features() {
        return features;
    }

    boolean ownerSet() {
        return ownerSet;
    }

    /** The ring with this index, or BAD_VRING_INDEX. */
    int check(int index) throws ProtocolException {
        if (index < 0 || index >= rings.length) {
            throw new ProtocolException(CloseCause.BAD_VRING_INDEX, "vring " + Integer.toUnsignedString(index)
                    + " of " + rings.length);
        }
        return index;
    }

    // ---- counters ----

    /** Counters of every vring whose pair exists or existed (also after the session ended). */
    List<QueueStats> stats() {
        List<QueueStats> out = new ArrayList<>();
        for (int k = 0; k < pairs.length(); k++) {
            Pair p = pairs.get(k);
            for (int local : new int[] {VirtioNet.RX, VirtioNet.TX}) {
                int v = 2 * k + local;
                QueueStats now = p == null ? null : countersOf(v, p.net.device().vq(local));
                QueueStats old = retired[v];
                if (now != null && old != null) {
                    out.add(sum(now, old));
                } else if (now != null || old != null) {
                    out.add(now != null ? now : old);
                }
            }
        }
        return out;
    }

    /** Where the session's frames went so far (exact once the session has ended). */
    FrameAccount account() {
        FrameAccount a = retiredAccount;
        for (int k = 0; k < pairs.length(); k++) {
            Pair p = pairs.get(k);
            if (p != null) {
                a = a.plus(accountOf(p.net));
            }
        }
        return a;
    }

    private static FrameAccount accountOf(VhostNet net) {
        Counters<RingCounter> tx = net.device().vq(VirtioNet.TX).counters();
        Counters<RingCounter> rx = net.device().vq(VirtioNet.RX).counters();
        return new FrameAccount(tx.get(RingCounter.FRAMES), tx.get(RingCounter.BYTES),
                tx.get(RingCounter.DROP_BAD_HEADER), tx.get(RingCounter.DROP_TOO_BIG), tx.get(RingCounter.DROP_BACKEND),
                rx.get(RingCounter.FRAMES), rx.get(RingCounter.BYTES), rx.get(RingCounter.DROP_TOO_BIG),
                rx.get(RingCounter.DROP_BAD_RX_CHAIN), 0);
    }

    private static QueueStats countersOf(int vring, VhostVirtqueue vq) {
        var c = vq.counters();
        long drops = c.get(RingCounter.DROP_BACKEND) + c.get(RingCounter.DROP_BAD_HEADER)
                + c.get(RingCounter.DROP_TOO_BIG) + c.get(RingCounter.DROP_BAD_RX_CHAIN);
        return new QueueStats(vring, c.get(RingCounter.FRAMES), c.get(RingCounter.BYTES), drops, vq.kicks(),
                c.get(RingCounter.INTERRUPTS), c.get(RingCounter.RING_ERRORS));
    }

    private static QueueStats sum(QueueStats a, QueueStats b) {
        return new QueueStats(a.vring(), a.frames() + b.frames(), a.bytes() + b.bytes(), a.drops() + b.drops(),
                a.kicks() + b.kicks(), a.calls() + b.calls(), a.ringErrors() + b.ringErrors());
    }

    // ---- owner, features, memory ----

    /** VIRTIO_F_RING_PACKED acknowledged: the rings are packed virtqueues (virtio 1.2 §2.8). */
    private boolean packed() {
        return (features & NetFeatures.RING_PACKED) != 0;
    }

    void setFeatures(long f) throws ProtocolException {
        features = f;
        for (int k = 0; k < pairs.length(); k++) {
            Pair p = pairs.get(k);
            if (p != null) {
                deviceCall(() -> p.net.device().setFeatures(owner, f & VirtioNet.FEATURES));
            }
        }
        for (Ring ring : rings) {
            update(ring); // without PROTOCOL_FEATURES a started ring is enabled at once
        }
    }

    void setOwner() throws ProtocolException {
        ownerSet = true;
        pair(0); // the first device and its worker, through the server's worker model
    }

    /** Stops every ring and closes every pair (their counts are kept); the session stays the owner. */
    void resetOwner() throws ProtocolException {
        for (Ring ring : rings) {
            stop(ring);
            ring.started = false;
            ring.enabled = false;
            dropKick(ring);
        }
        for (int k = 0; k < pairs.length(); k++) {
            retire(k);
        }
        features = 0;
    }

    void setMemTable(VhostUserCodec codec) throws ProtocolException {
        MemoryTable next = MemoryTable.map(codec.payload(), codec.size(), codec.fds(), codec.fdCount());
        // Rings keep running over the old mappings until they stop; then the new table takes over.
        List<Ring> wereRunning = new ArrayList<>();
        for (Ring ring : rings) {
            if (ring.running) {
                wereRunning.add(ring);
                stop(ring);
            }
        }
        MemoryTable old = table;
        table = next;
        for (int k = 0; k < pairs.length(); k++) {
            Pair p = pairs.get(k);
            if (p != null) {
                deviceCall(() -> p.net.device().setMemTable(owner, next.memory()));
            }
        }
        if (old != null) {
            old.close();
        }
        for (Ring ring : wereRunning) {
            update(ring);
        }
    }

    // ---- per-vring requests ----

    void setVringNum(int index, int num) throws ProtocolException {
        Ring ring = rings[check(index)];
        if (ring.running) {
            throw new ProtocolException(CloseCause.RING_RUNNING, "vring " + ring.index);
        }
        int max = server.config().maxQueueSize();
        // virtio 1.2 §2.7: a split ring's size is a power of two, here at most the configured maximum.
        // Split rings: a power of two, at most the maximum (virtio 1.2 §2.7); packed ones need not be (§2.8).
        if (num <= 0 || num > max || (num & (num - 1)) != 0 && !packed()) {
            throw new ProtocolException(CloseCause.BAD_VRING_NUM, "vring " + ring.index + " num " + Integer.toUnsignedString(num));
        }
        ring.num = num;
    }

    void setVringAddr(int index, int flags, long desc, long used, long avail) throws ProtocolException {
        Ring ring = rings[check(index)];
        if (ring.running) {
            throw new ProtocolException(CloseCause.RING_RUNNING, "vring " + ring.index);
        }
        if ((flags & VhostUser.VRING_F_LOG) != 0) {
            throw new ProtocolException(CloseCause.LOGGING_NOT_OFFERED, "vring " + ring.index);
        }
        // virtio 1.2 §2.7: descriptor table aligned 16, available ring 2, used ring 4.
        // Packed: avail and used are the driver and device event suppression areas, 4-byte aligned (§2.8.10.1).
        int availAlign = packed() ? PackedRing.EVENT_ALIGN : SplitRing.AVAIL_ALIGN;
        if ((desc & (SplitRing.DESC_ALIGN - 1)) != 0 || (avail & (availAlign - 1)) != 0
                || (used & (SplitRing.USED_ALIGN - 1)) != 0) {
            throw new ProtocolException(CloseCause.VRING_ADDR_MISALIGNED, "vring " + ring.index + " desc 0x"
                    + Long.toHexString(desc) + " avail 0x" + Long.toHexString(avail) + " used 0x" + Long.toHexString(used));
        }
        ring.descUva = desc;
        ring.availUva = avail;
        ring.usedUva = used;
        ring.addrSet = true;
        if (table != null) {
            translate(ring); // fail at the message that is wrong, not later
        }
    }

    /** The ring's guest-physical {desc, avail, used}, each part wholly inside one region. */
    private long[] translate(Ring ring) throws ProtocolException {
        int n = Math.max(ring.num, 1);
        long desc = table.uvaToGpa(ring.descUva, 16L * n);
        boolean packed = packed();
        long avail = table.uvaToGpa(ring.availUva, packed ? PackedRing.EVENT_SIZE : 6L + 2L * n);
        long used = table.uvaToGpa(ring.usedUva, packed ? PackedRing.EVENT_SIZE : 6L + 8L * n);
        if (desc < 0 || avail < 0 || used < 0) {
            throw new ProtocolException(CloseCause.VRING_ADDR_UNMAPPED, "vring " + ring.index + " desc 0x"
                    + Long.toHexString(ring.descUva) + " avail 0x" + Long.toHexString(ring.availUva) + " used 0x"
                    + Long.toHexString(ring.usedUva) + " size " + n);
        }
        return new long[] {desc, avail, used};
    }

    void setVringBase(int index, int base) throws ProtocolException {
        Ring ring = rings[check(index)];
        if (ring.running) {
            throw new ProtocolException(CloseCause.RING_RUNNING, "vring " + ring.index);
        }
        if (packed()) {
            // vhost-user.rst, packed: bits 0-14 avail index, 15 its wrap counter, 16-30 used index, 31 its wrap
            // counter. Used restarts at the avail position (nothing is in flight before a start), as DPDK does.
            base &= 0xffff;
        }
        if (base < 0 || base > 0xffff) {
            throw new ProtocolException(CloseCause.BAD_VRING_BASE, "vring " + ring.index + " base " + Integer.toUnsignedString(base));
        }
        ring.base = base;
        ring.baseSet = true;
    }

    /** Stops the ring (vhost-user.rst: GET_VRING_BASE stops it; kick and call go with it) and gives its base. */
    int getVringBase(int index) throws ProtocolException {
        Ring ring = rings[check(index)];
        stop(ring);
        ring.started = false;
        dropKick(ring);
        setCallFd(ring, null);
        Pair p = pairs.get(ring.pair);
        if (p == null || ring.baseSet) {
            return ring.base;
        }
        int[] out = new int[1];
        deviceCall(() -> out[0] = p.net.device().getVringBase(owner, ring.local));
        return out[0];
    }

    void setVringKick(long v, VhostUserCodec codec) throws ProtocolException, NativeException {
        Ring ring = rings[check((int) (v & VhostUser.VRING_IDX_MASK))];
        boolean noFd = (v & VhostUser.VRING_NOFD) != 0;
        codec.expectVringFd(noFd);
        if (table == null) {
            throw new ProtocolException(CloseCause.KICK_BEFORE_MEM_TABLE, "vring " + ring.index);
        }
        if (!ownerSet) {
            throw new ProtocolException(CloseCause.NO_OWNER, "vring " + ring.index);
        }
        dropKick(ring);
        if (noFd) {
            // Polling mode (vhost-user.rst: "the ring is polled"): the epoll thread looks every millisecond.
            ring.polled = server.loop().poll(ring.kickNotifier);
        } else {
            EventFd e = codec.adoptEventFd();
            try {
                ring.kick = server.loop().register(e, ring.kickNotifier);
            } catch (NativeException | RuntimeException ex) {
                e.close();
                throw ex;
            }
        }
        ring.started = true;
        update(ring);
    }

    void setVringCall(long v, VhostUserCodec codec) throws ProtocolException, NativeException {
        Ring ring = rings[check((int) (v & VhostUser.VRING_IDX_MASK))];
        boolean noFd = (v & VhostUser.VRING_NOFD) != 0;
        codec.expectVringFd(noFd);
        setCallFd(ring, noFd ? null : codec.adoptEventFd());
    }

    void setVringErr(long v, VhostUserCodec codec) throws ProtocolException, NativeException {
        Ring ring = rings[check((int) (v & VhostUser.VRING_IDX_MASK))];
        boolean noFd = (v & VhostUser.VRING_NOFD) != 0;
        codec.expectVringFd(noFd);
        EventFd e = noFd ? null : codec.adoptEventFd();
        EventFd old = ring.errFd;
        ring.errFd = e;
        syncRing(ring);
        if (old != null) {
            old.close();
        }
    }

    void setVringEnable(int index, boolean enable) throws ProtocolException {
        Ring ring = rings[check(index)];
        ring.enabled = enable;
        update(ring);
    }

    private void setCallFd(Ring ring, EventFd e) throws ProtocolException {
        EventFd old = ring.callFd;
        ring.callFd = e;
        syncRing(ring); // no handler still holds the old fd after this
        if (old != null) {
            old.close();
        }
    }

    /**
     * Waits until no handler of the ring runs with what it read before: handlers signal calls under the
     * ring's mutex, which a control call on the ring takes.
     */
    private void syncRing(Ring ring) throws ProtocolException {
        Pair p = pairs.get(ring.pair);
        if (p != null) {
            deviceCall(() -> p.net.device().setVringCall(owner, ring.local, ring.callNotifier));
        }
    }

    private static void dropKick(Ring ring) {
        if (ring.kick != null) {
            ring.kick.close();
            ring.kick = null;
        }
        if (ring.polled != null) {
            ring.polled.close();
            ring.polled = null;
        }
    }

    // ---- rings to devices ----

    private Pair pair(int k) throws ProtocolException {
        Pair p = pairs.get(k);
        if (p != null) {
            return p;
        }
        VhostNet net = VhostNet.open(owner, server.workerFactory());
        try {
            net.device().setOwner(owner);
            net.device().setFeatures(owner, features & VirtioNet.FEATURES);
            long busy = server.config().busyPollMicros();
            if (busy > 0) {
                net.device().setVringBusyloopTimeout(owner, VirtioNet.RX, busy);
                net.device().setVringBusyloopTimeout(owner, VirtioNet.TX, busy);
                ownWorkerForTx(net.device());
            }
            if (table != null) {
                net.device().setMemTable(owner, table.memory());
            }
        } catch (ErrnoException e) {
            net.close();
            throw new ProtocolException(CloseCause.RESOURCE_ERROR, "queue pair " + k + ": " + e.getMessage());
        }
        NetBackend backend;
        try {
            backend = server.config().backends().create(session, k);
        } catch (RuntimeException | Error e) {
            net.close();
            throw e;
        }
        p = new Pair(net, backend);
        pairs.set(k, p);
        return p;
    }

    /**
     * Busy-polling rings get a worker each (VHOST_NEW_WORKER + VHOST_ATTACH_VRING_WORKER, as a 6.5 frontend
     * would ask). On one shared worker a polling ring stops its poll whenever other work is queued and
     * requeues itself, so a ring that has nothing (the RX ring of a sink, the TX ring of a generator) and a
     * busy one hand the worker back and forth through its list at every empty moment instead of polling.
     * Models without NEW_WORKER (kthreads) keep the one worker.
     */
    private void ownWorkerForTx(VhostDevice d) {
        try {
            d.attachVringWorker(owner, VirtioNet.TX, d.newWorker(owner));
        } catch (ErrnoException e) {
            // EFAULT in kthread mode: both rings stay on the default worker.
        }
    }

    private boolean protocolNegotiated() {
        return (features & VhostUser.F_PROTOCOL_FEATURES) != 0;
    }

    private void update(Ring ring) throws ProtocolException {
        boolean want = ownerSet && ring.started && table != null && (!protocolNegotiated() || ring.enabled);
        if (want && !ring.running) {
            start(ring);
        } else if (!want && ring.running) {
            stop(ring);
        }
    }

    private void start(Ring ring) throws ProtocolException {
        if (ring.num == 0 || !ring.addrSet) {
            throw new ProtocolException(CloseCause.RING_NOT_CONFIGURED, "vring " + ring.index + " num " + ring.num
                    + (ring.addrSet ? "" : ", no address"));
        }
        long[] a = translate(ring);
        Pair p = pair(ring.pair);
        VhostDevice d = p.net.device();
        deviceCall(() -> {
            d.setVringNum(owner, ring.local, ring.num);
            d.setVringAddr(owner, ring.local, a[0], a[1], a[2]);
            if (ring.baseSet) {
                d.setVringBase(owner, ring.local, ring.base);
            }
            d.setVringCall(owner, ring.local, ring.callNotifier);
            d.setVringErr(owner, ring.local, ring.errNotifier);
            d.setVringKick(owner, ring.local, ring.kickNotifier);
        });
        ring.baseSet = false;
        try {
            // The handler runs once now (as vhost-net does for a new backend): no first kick needed.
            p.net.setBackend(owner, ring.local, p.backend);
        } catch (ErrnoException e) {
            throw new ProtocolException(CloseCause.VRING_ADDR_UNMAPPED, "vring " + ring.index + ": " + e.getMessage());
        }
        ring.running = true;
    }

    private void stop(Ring ring) throws ProtocolException {
        if (!ring.running) {
            return;
        }
        Pair p = pairs.get(ring.pair);
        ring.running = false;
        deviceCall(() -> p.net.setBackend(owner, ring.local, null)); // flushes: no handler runs after this
    }

    @FunctionalInterface
    private interface DeviceCall {
        void run() throws ErrnoException;
    }

    private static void deviceCall(DeviceCall c) throws ProtocolException {
        try {
            c.run();
        } catch (ErrnoException e) {
            throw new ProtocolException(CloseCause.RESOURCE_ERROR, e.getMessage());
        }
    }

    // ---- release ----

    /**
     * Closes pair {@code k} (its worker stops: no handler runs after this), folds what it counted into the
     * retired totals, discards (and counts) the frames its backend still held for the guest, closes the
     * backend and tells the backend factory.
     */
    private void retire(int k) {
        Pair p = pairs.get(k);
        if (p == null) {
            return;
        }
        p.net.close();
        long discarded = p.backend.discardPending();
        FrameAccount a = accountOf(p.net);
        retiredAccount = retiredAccount.plus(new FrameAccount(a.txDelivered(), a.txBytes(), a.txDropBadHeader(),
                a.txDropTooBig(), a.txDropBackend(), a.rxDelivered(), a.rxBytes(), a.rxDropTooBig(), a.rxDropBadChain(),
                discarded));
        for (int local : new int[] {VirtioNet.RX, VirtioNet.TX}) {
            int v = 2 * k + local;
            QueueStats now = countersOf(v, p.net.device().vq(local));
            retired[v] = retired[v] == null ? now : sum(retired[v], now);
        }
        pairs.set(k, null);
        if (p.backend instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception ignored) {
                // A backend's close failing leaves nothing of the session behind.
            }
        }
        server.config().backends().released(session, k, p.backend);
    }

    /** Devices (workers stop, rings stop), then kicks and calls, then backends and mappings. */
    void release() {
        for (int k = 0; k < pairs.length(); k++) {
            Pair p = pairs.get(k);
            if (p != null) {
                p.net.close();
            }
        }
        for (Ring ring : rings) {
            ring.running = false;
            dropKick(ring);
            EventFd c = ring.callFd;
            ring.callFd = null;
            if (c != null) {
                c.close();
            }
            EventFd e = ring.errFd;
            ring.errFd = null;
            if (e != null) {
                e.close();
            }
        }
        for (int k = 0; k < pairs.length(); k++) {
            retire(k);
        }
        if (table != null) {
            table.close();
            table = null;
        }
    }
}
