package dev.loomvisor.vhost.user;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Task;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostDevice;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.sys.EpollLoop;
import dev.loomvisor.vhost.sys.EventFd;
import dev.loomvisor.vhost.sys.Libc;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.sys.UnixSocket;
import dev.loomvisor.vmm.net.NetConfigSpace;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.virtio.PackedRing;
import dev.loomvisor.vmm.virtio.SplitRing;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * One front-end connection: an emulated process (the devices' owner) whose control socket is served by a
 * platform thread of its own, blocking in recvmsg (a platform thread pins nothing). SET_OWNER opens the
 * first queue pair's vhost-net and so creates its worker through the server's worker model; each further
 * pair gets its own vhost-net (and worker) when one of its rings starts, as QEMU opens one /dev/vhost-net
 * per queue pair. Vring 2k is RX of pair k, 2k+1 its TX.
 *
 * <p>Ring states (reference vhost-user.md): stopped until SET_VRING_KICK starts it; it runs once started
 * and enabled (SET_VRING_ENABLE 1 when PROTOCOL_FEATURES was negotiated, at once otherwise);
 * GET_VRING_BASE stops it again and drops its kick and call. A running ring is a vhost-net ring with the
 * pair's backend attached, whose handler runs once at start, so nothing waits for a first kick.
 *
 * <p>Any protocol violation, socket failure or resource failure ends the session with one
 * {@link CloseReason}; everything it holds (devices and their workers, the mappings, every fd, the
 * process) is released, and the server goes on.
 */
public final class VhostUserSession {

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
    private record Pair(VhostNet net, NetBackend backend) {
    }

    private final VhostUserServer server;
    private final int id;
    private final UnixSocket socket;
    private final Process process;
    private final Task owner;
    private final Ring[] rings;
    /** Written by the session thread, read by any (stats, backend lookups). */
    private final AtomicReferenceArray<Pair> pairs;
    private final Thread thread;
    private final AtomicReference<CloseReason> reason = new AtomicReference<>();
    private final CountDownLatch ended = new CountDownLatch(1);
    private volatile boolean closing;

    // Session-thread state.
    private final Arena arena = Arena.ofShared();
    private final MemorySegment rxHeader;
    private final MemorySegment rxPayload;
    private final MemorySegment tx;
    private final int[] fds = new int[VhostUser.MAX_FDS];
    private final int[] extraFds = new int[VhostUser.MAX_FDS];
    private int nfds;
    private VhostUserRequest current;
    private boolean ownerSet;
    /** RESET_OWNER came since SET_OWNER: a SET_OWNER again is fine (and not needed). */
    private boolean ownerReset;
    private long features;
    private long protocolFeatures;
    private MemoryTable table;
    private int mtu;
    private volatile long messages;
    /** What devices closed by RESET_OWNER counted, per vring (session thread writes, any thread reads). */
    private final QueueStats[] retired;

    VhostUserSession(VhostUserServer server, int id, UnixSocket socket, Process process) {
        this.server = server;
        this.id = id;
        this.socket = socket;
        this.process = process;
        this.owner = process.mainTask();
        int maxPairs = server.config().maxQueuePairs();
        this.rings = new Ring[2 * maxPairs];
        for (int i = 0; i < rings.length; i++) {
            rings[i] = new Ring(i);
        }
        this.pairs = new AtomicReferenceArray<>(maxPairs);
        this.retired = new QueueStats[2 * maxPairs];
        this.mtu = server.config().mtu();
        this.rxHeader = arena.allocate(VhostUser.HEADER_SIZE, 8);
        this.rxPayload = arena.allocate(VhostUser.MAX_PAYLOAD, 8);
        this.tx = arena.allocate(VhostUser.HEADER_SIZE + VhostUser.MAX_PAYLOAD, 8);
        this.thread = Thread.ofPlatform().name("vhost-user-" + id).daemon().unstarted(this::run);
    }

    void start() {
        thread.start();
    }

    /** The session's number on its server (from 1). */
    public int id() {
        return id;
    }

    /** The emulated process that owns the session's devices. */
    public Process process() {
        return process;
    }

    /** Why the session ended, or null while it runs. */
    public CloseReason closeReason() {
        return reason.get();
    }

    public boolean isClosed() {
        return ended.getCount() == 0;
    }

    /** Waits until the session has ended and released everything; true if it did within the timeout. */
    public boolean awaitClosed(long timeout, TimeUnit unit) throws InterruptedException {
        return ended.await(timeout, unit);
    }

    /** Messages handled so far. */
    public long messages() {
        return messages;
    }

    /** The virtio features the front-end acknowledged (SET_FEATURES). */
    public long features() {
        return features;
    }

    /** Queue pairs this session may use (the server's maximum). */
    public int maxQueuePairs() {
        return pairs.length();
    }

    /** The backend of queue pair {@code k}, or null until one of its rings started. */
    public NetBackend backend(int k) {
        Pair p = pairs.get(k);
        return p == null ? null : p.backend;
    }

    /** The vhost-net of queue pair {@code k}, or null until one of its rings started. */
    public VhostNet net(int k) {
        Pair p = pairs.get(k);
        return p == null ? null : p.net;
    }

    /**
     * Counters of every vring whose pair exists or existed (also after the session ended; a RESET_OWNER
     * keeps what the closed devices counted).
     */
    public List<QueueStats> stats() {
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

    /** Ends the session (SERVER_CLOSED unless it already ended otherwise) and waits until it released all. */
    public void close() {
        closing = true;
        socket.shutdown();
        if (Thread.currentThread() != thread) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ---- the message loop ----

    private void run() {
        try {
            loop();
        } catch (ProtocolException e) {
            end(e.closeCause(), e.getMessage());
        } catch (NativeException e) {
            // A reset (the peer closed with our reply unread, or closed while we replied) is a peer close.
            boolean reset = e.errno() == NativeException.ECONNRESET || e.errno() == NativeException.EPIPE;
            end(closing ? CloseCause.SERVER_CLOSED : reset ? CloseCause.PEER_CLOSED : CloseCause.IO_ERROR, e.getMessage());
        } catch (RuntimeException | Error e) {
            end(CloseCause.RESOURCE_ERROR, e.toString());
        } finally {
            closeFds();
            release();
            ended.countDown();
            server.sessionEnded(this, reason.get());
        }
    }

    private void end(CloseCause cause, String detail) {
        reason.compareAndSet(null, new CloseReason(cause, current, detail == null ? "" : detail));
    }

    private void loop() throws ProtocolException, NativeException {
        while (true) {
            current = null;
            int got = socket.recv(rxHeader, VhostUser.HEADER_SIZE, fds);
            nfds = socket.lastFdCount();
            int rflags = socket.lastFlags();
            if (got == 0) {
                end(closing ? CloseCause.SERVER_CLOSED : CloseCause.PEER_CLOSED, "");
                return;
            }
            if (got < VhostUser.HEADER_SIZE) {
                throw new ProtocolException(closing ? CloseCause.SERVER_CLOSED : CloseCause.TRUNCATED_HEADER,
                        got + " of " + VhostUser.HEADER_SIZE + " header bytes");
            }
            if ((rflags & Libc.MSG_CTRUNC) != 0) {
                throw new ProtocolException(CloseCause.TOO_MANY_FDS, "more than " + VhostUser.MAX_FDS + " fds");
            }
            int code = rxHeader.get(JAVA_INT_UNALIGNED, VhostUser.HDR_REQUEST);
            int flags = rxHeader.get(JAVA_INT_UNALIGNED, VhostUser.HDR_FLAGS);
            int size = rxHeader.get(JAVA_INT_UNALIGNED, VhostUser.HDR_SIZE);
            current = VhostUserRequest.of(code);
            if ((flags & VhostUser.VERSION_MASK) != VhostUser.VERSION || (flags & VhostUser.FLAG_REPLY) != 0) {
                throw new ProtocolException(CloseCause.BAD_FLAGS, "flags 0x" + Integer.toHexString(flags));
            }
            if (size < 0 || size > VhostUser.MAX_PAYLOAD) {
                throw new ProtocolException(CloseCause.PAYLOAD_TOO_BIG, "size " + Integer.toUnsignedString(size));
            }
            if (size > 0) {
                int p = socket.recv(rxPayload, size, extraFds);
                int extra = socket.lastFdCount();
                for (int i = 0; i < extra; i++) {
                    Libc.closeQuietly(extraFds[i]);
                }
                if (p < size) {
                    throw new ProtocolException(closing ? CloseCause.SERVER_CLOSED : CloseCause.TRUNCATED_PAYLOAD,
                            p + " of " + size + " payload bytes");
                }
                if (extra != 0 || (socket.lastFlags() & Libc.MSG_CTRUNC) != 0) {
                    throw new ProtocolException(CloseCause.BAD_FD_COUNT, "fds inside the payload");
                }
            }
            if (current == null) {
                throw new ProtocolException(CloseCause.UNKNOWN_REQUEST, "request " + Integer.toUnsignedString(code));
            }
            if (current.payloadSize() != VhostUserRequest.VARIABLE && size != current.payloadSize()) {
                throw new ProtocolException(CloseCause.SIZE_MISMATCH, size + " bytes, expected " + current.payloadSize());
            }
            boolean needReply = (flags & VhostUser.FLAG_NEED_REPLY) != 0
                    && (protocolFeatures & VhostUser.PF_REPLY_ACK) != 0;
            try {
                boolean replied = handle(current, size);
                messages++;
                if (needReply && !replied) {
                    replyU64(current, 0); // REPLY_ACK: success
                }
            } catch (ProtocolException e) {
                if (needReply && !closing) {
                    try {
                        replyU64(current, 1); // REPLY_ACK: failure, then the session ends
                    } catch (NativeException ignored) {
                        // The peer is gone; the violation stays the reason.
                    }
                }
                throw e;
            } finally {
                closeFds();
            }
        }
    }

    private void closeFds() {
        for (int i = 0; i < nfds; i++) {
            if (fds[i] >= 0) {
                Libc.closeQuietly(fds[i]);
                fds[i] = -1;
            }
        }
        nfds = 0;
    }

    /** Handles one request; true if it sent its own reply. */
    private boolean handle(VhostUserRequest r, int size) throws ProtocolException, NativeException {
        if (r != VhostUserRequest.SET_MEM_TABLE && r != VhostUserRequest.SET_VRING_KICK
                && r != VhostUserRequest.SET_VRING_CALL && r != VhostUserRequest.SET_VRING_ERR && nfds != 0) {
            throw new ProtocolException(CloseCause.BAD_FD_COUNT, nfds + " fds");
        }
        switch (r) {
            case GET_FEATURES -> {
                replyU64(r, VhostUser.FEATURES);
                return true;
            }
            case SET_FEATURES -> setFeatures(u64(0));
            case SET_OWNER -> setOwner();
            case RESET_OWNER -> resetOwner();
            case SET_MEM_TABLE -> setMemTable(size);
            case SET_VRING_NUM -> setVringNum(ring(u32(VhostUser.STATE_INDEX)), u32(VhostUser.STATE_NUM));
            case SET_VRING_ADDR -> setVringAddr();
            case SET_VRING_BASE -> setVringBase(ring(u32(VhostUser.STATE_INDEX)), u32(VhostUser.STATE_NUM));
            case GET_VRING_BASE -> {
                Ring ring = ring(u32(VhostUser.STATE_INDEX));
                int base = getVringBase(ring);
                tx.set(JAVA_INT_UNALIGNED, VhostUser.HEADER_SIZE + VhostUser.STATE_INDEX, ring.index);
                tx.set(JAVA_INT_UNALIGNED, VhostUser.HEADER_SIZE + VhostUser.STATE_NUM, base);
                reply(r, 8);
                return true;
            }
            case SET_VRING_KICK -> setVringKick(u64(0));
            case SET_VRING_CALL, SET_VRING_ERR -> setVringCallOrErr(r, u64(0));
            case GET_PROTOCOL_FEATURES -> {
                replyU64(r, VhostUser.PROTOCOL_FEATURES);
                return true;
            }
            case SET_PROTOCOL_FEATURES -> {
                long f = u64(0);
                if ((f & ~VhostUser.PROTOCOL_FEATURES) != 0) {
                    throw new ProtocolException(CloseCause.PROTOCOL_FEATURES_NOT_OFFERED,
                            "0x" + Long.toHexString(f & ~VhostUser.PROTOCOL_FEATURES));
                }
                protocolFeatures = f;
            }
            case GET_QUEUE_NUM -> {
                replyU64(r, pairs.length());
                return true;
            }
            case SET_VRING_ENABLE -> {
                // vhost-user.rst: "sent only when PROTOCOL_FEATURES has been negotiated", but QEMU 7.2 checks
                // only that the backend offers it and sends it before SET_FEATURES (seen with a Linux guest).
                // So the flag is kept whenever it comes; it gates a ring only once the bit is acknowledged.
                Ring ring = ring(u32(VhostUser.STATE_INDEX));
                ring.enabled = u32(VhostUser.STATE_NUM) != 0;
                update(ring);
            }
            case SEND_RARP -> {
                // Nothing to announce: no switch learns from this backend's side.
            }
            case NET_SET_MTU -> {
                long m = u64(0);
                if (m < 68 || m > 65535) {
                    throw new ProtocolException(CloseCause.BAD_MTU, "mtu " + m);
                }
                mtu = (int) m;
            }
            case GET_CONFIG -> {
                int n = configRange(size);
                int offset = u32(VhostUser.CONFIG_OFFSET);
                MemorySegment.copy(rxPayload, 0, tx, VhostUser.HEADER_SIZE, VhostUser.CONFIG_HEADER);
                MemorySegment out = tx.asSlice(VhostUser.HEADER_SIZE + VhostUser.CONFIG_HEADER, n);
                out.fill((byte) 0);
                byte[] cfg = netConfig();
                for (int i = 0; i < n && offset + i < cfg.length; i++) {
                    out.set(JAVA_BYTE, i, cfg[offset + i]);
                }
                reply(r, size);
                return true;
            }
            case SET_CONFIG -> configRange(size); // virtio-net's config is read-only for the driver
        }
        return false;
    }

    private boolean protocolNegotiated() {
        return (features & VhostUser.F_PROTOCOL_FEATURES) != 0;
    }

    private long u64(int at) {
        return rxPayload.get(JAVA_LONG_UNALIGNED, at);
    }

    private int u32(int at) {
        return rxPayload.get(JAVA_INT_UNALIGNED, at);
    }

    private Ring ring(int index) throws ProtocolException {
        if (index < 0 || index >= rings.length) {
            throw new ProtocolException(CloseCause.BAD_VRING_INDEX, "vring " + Integer.toUnsignedString(index)
                    + " of " + rings.length);
        }
        return rings[index];
    }

    private void replyU64(VhostUserRequest r, long v) throws NativeException {
        tx.set(JAVA_LONG_UNALIGNED, VhostUser.HEADER_SIZE, v);
        reply(r, 8);
    }

    private void reply(VhostUserRequest r, int size) throws NativeException {
        tx.set(JAVA_INT_UNALIGNED, VhostUser.HDR_REQUEST, r.code());
        tx.set(JAVA_INT_UNALIGNED, VhostUser.HDR_FLAGS, VhostUser.VERSION | VhostUser.FLAG_REPLY);
        tx.set(JAVA_INT_UNALIGNED, VhostUser.HDR_SIZE, size);
        socket.send(tx, VhostUser.HEADER_SIZE + size, null, 0);
    }

    private int configRange(int size) throws ProtocolException {
        if (size < VhostUser.CONFIG_HEADER) {
            throw new ProtocolException(CloseCause.SIZE_MISMATCH, "config message of " + size + " bytes");
        }
        long offset = u32(VhostUser.CONFIG_OFFSET) & 0xffffffffL;
        long n = u32(VhostUser.CONFIG_SIZE) & 0xffffffffL;
        if (size != VhostUser.CONFIG_HEADER + n) {
            throw new ProtocolException(CloseCause.SIZE_MISMATCH, "config of " + n + " bytes in " + size);
        }
        if (offset + n > VhostUser.MAX_PAYLOAD - VhostUser.CONFIG_HEADER) {
            throw new ProtocolException(CloseCause.BAD_CONFIG_RANGE, "offset " + offset + " size " + n);
        }
        return (int) n;
    }

    /** struct virtio_net_config as this backend presents it. */
    private byte[] netConfig() {
        MemorySegment c = MemorySegment.ofArray(new byte[NetConfigSpace.SIZE]);
        byte[] mac = server.config().mac();
        MemorySegment.copy(MemorySegment.ofArray(mac), 0, c, NetConfigSpace.MAC, 6);
        c.set(JAVA_SHORT_UNALIGNED, NetConfigSpace.STATUS, (short) NetConfigSpace.LINK_UP);
        c.set(JAVA_SHORT_UNALIGNED, NetConfigSpace.MAX_VIRTQUEUE_PAIRS, (short) pairs.length());
        c.set(JAVA_SHORT_UNALIGNED, NetConfigSpace.MTU, (short) mtu);
        return c.toArray(JAVA_BYTE);
    }

    // ---- requests ----

    private void setFeatures(long f) throws ProtocolException {
        if ((f & ~VhostUser.FEATURES) != 0) {
            throw new ProtocolException(CloseCause.FEATURES_NOT_OFFERED, "0x" + Long.toHexString(f & ~VhostUser.FEATURES));
        }
        boolean changed = f != features;
        features = f;
        if (changed) {
            server.featuresNegotiated(this, f); // QEMU repeats SET_FEATURES per queue pair: tell once
        }
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

    /** VIRTIO_F_RING_PACKED acknowledged: the rings are packed virtqueues (virtio 1.2 §2.8). */
    public boolean packed() {
        return (features & NetFeatures.RING_PACKED) != 0;
    }

    /** The negotiated ring layout and ring features in words, e.g. {@code packed in-order event-idx}. */
    public String ringLayout() {
        long f = features;
        return ((f & NetFeatures.RING_PACKED) != 0 ? "packed" : "split")
                + ((f & NetFeatures.IN_ORDER) != 0 ? " in-order" : "")
                + ((f & NetFeatures.EVENT_IDX) != 0 ? " event-idx" : "")
                + ((f & NetFeatures.INDIRECT_DESC) != 0 ? " indirect" : "")
                + ((f & NetFeatures.MRG_RXBUF) != 0 ? " mrg-rxbuf" : "");
    }

    private void setOwner() throws ProtocolException {
        if (ownerSet && !ownerReset) {
            throw new ProtocolException(CloseCause.OWNER_ALREADY_SET, "");
        }
        ownerSet = true;
        ownerReset = false;
        pair(0); // the first device and its worker, through the server's worker model
    }

    private void resetOwner() throws ProtocolException {
        for (Ring ring : rings) {
            stop(ring);
            ring.started = false;
            ring.enabled = false;
            dropKick(ring);
        }
        for (int k = 0; k < pairs.length(); k++) {
            Pair p = pairs.get(k);
            if (p != null) {
                p.net.close();
                for (int local : new int[] {VirtioNet.RX, VirtioNet.TX}) {
                    int v = 2 * k + local;
                    QueueStats now = countersOf(v, p.net.device().vq(local));
                    retired[v] = retired[v] == null ? now : sum(retired[v], now);
                }
                closeBackend(p.backend);
                pairs.set(k, null);
            }
        }
        // The session stays the owner (the same process); devices come back as rings start again.
        ownerReset = true;
        features = 0;
    }

    private void setMemTable(int size) throws ProtocolException {
        MemoryTable next = MemoryTable.map(rxPayload, size, fds, nfds);
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

    private void setVringNum(Ring ring, int num) throws ProtocolException {
        if (ring.running) {
            throw new ProtocolException(CloseCause.RING_RUNNING, "vring " + ring.index);
        }
        int max = server.config().maxQueueSize();
        // Split rings: a power of two, at most the maximum (virtio 1.2 §2.7); packed ones need not be (§2.8).
        if (num <= 0 || num > max || (num & (num - 1)) != 0 && !packed()) {
            throw new ProtocolException(CloseCause.BAD_VRING_NUM, "vring " + ring.index + " num " + Integer.toUnsignedString(num));
        }
        ring.num = num;
    }

    private void setVringAddr() throws ProtocolException {
        Ring ring = ring(u32(VhostUser.ADDR_INDEX));
        if (ring.running) {
            throw new ProtocolException(CloseCause.RING_RUNNING, "vring " + ring.index);
        }
        if ((u32(VhostUser.ADDR_FLAGS) & VhostUser.VRING_F_LOG) != 0) {
            throw new ProtocolException(CloseCause.LOGGING_NOT_OFFERED, "vring " + ring.index);
        }
        long desc = u64(VhostUser.ADDR_DESC);
        long used = u64(VhostUser.ADDR_USED);
        long avail = u64(VhostUser.ADDR_AVAIL);
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

    private void setVringBase(Ring ring, int base) throws ProtocolException {
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

    private int getVringBase(Ring ring) throws ProtocolException {
        stop(ring);
        ring.started = false;
        dropKick(ring);
        setCallFd(ring, null); // vhost-user.rst: GET_VRING_BASE stops the ring; kick and call go with it
        Pair p = pairs.get(ring.pair);
        if (p == null || ring.baseSet) {
            return ring.base;
        }
        int[] out = new int[1];
        deviceCall(() -> out[0] = p.net.device().getVringBase(owner, ring.local));
        return out[0];
    }

    private void setVringKick(long v) throws ProtocolException, NativeException {
        Ring ring = ring((int) (v & VhostUser.VRING_IDX_MASK));
        boolean noFd = (v & VhostUser.VRING_NOFD) != 0;
        if (nfds != (noFd ? 0 : 1)) {
            throw new ProtocolException(CloseCause.BAD_FD_COUNT, nfds + " fds, nofd " + noFd);
        }
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
            EventFd e = adopt();
            ring.kick = server.loop().register(e, ring.kickNotifier);
        }
        ring.started = true;
        update(ring);
    }

    private void setVringCallOrErr(VhostUserRequest r, long v) throws ProtocolException, NativeException {
        Ring ring = ring((int) (v & VhostUser.VRING_IDX_MASK));
        boolean noFd = (v & VhostUser.VRING_NOFD) != 0;
        if (nfds != (noFd ? 0 : 1)) {
            throw new ProtocolException(CloseCause.BAD_FD_COUNT, nfds + " fds, nofd " + noFd);
        }
        EventFd e = noFd ? null : adopt();
        if (r == VhostUserRequest.SET_VRING_CALL) {
            setCallFd(ring, e);
        } else {
            EventFd old = ring.errFd;
            ring.errFd = e;
            syncRing(ring);
            if (old != null) {
                old.close();
            }
        }
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

    private EventFd adopt() throws ProtocolException, NativeException {
        int fd = fds[0];
        EventFd e = EventFd.adopt(fd);
        if (e == null) {
            throw new ProtocolException(CloseCause.NOT_AN_EVENTFD, "fd " + fd);
        }
        fds[0] = -1;
        return e;
    }

    private void dropKick(Ring ring) {
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
            }
            if (table != null) {
                net.device().setMemTable(owner, table.memory());
            }
        } catch (ErrnoException e) {
            net.close();
            throw new ProtocolException(CloseCause.RESOURCE_ERROR, "queue pair " + k + ": " + e.getMessage());
        }
        NetBackend backend = server.config().backends().create(this, k);
        p = new Pair(net, backend);
        pairs.set(k, p);
        return p;
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

    private void deviceCall(DeviceCall c) throws ProtocolException {
        try {
            c.run();
        } catch (ErrnoException e) {
            throw new ProtocolException(CloseCause.RESOURCE_ERROR, e.getMessage());
        }
    }

    // ---- release ----

    private static void closeBackend(NetBackend b) {
        if (b instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception ignored) {
                // A backend's close failing leaves nothing of the session behind.
            }
        }
    }

    /** Devices (workers stop, rings stop), then kicks and calls, then backends, mappings, process, socket. */
    private void release() {
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
            Pair p = pairs.get(k);
            if (p != null) {
                closeBackend(p.backend);
            }
        }
        if (table != null) {
            table.close();
            table = null;
        }
        process.exit();
        socket.close();
        arena.close();
    }

    @Override
    public String toString() {
        return "vhost-user session " + id + " (pid " + process.pid() + ")";
    }
}
