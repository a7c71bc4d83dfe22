package dev.loomvisor.vhost.user;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Process;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.sys.EpollLoop;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.sys.UnixSocket;
import dev.loomvisor.vmm.net.NetConfigSpace;
import dev.loomvisor.vmm.net.NetFeatures;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One front-end connection: an emulated process (the devices' owner) whose control socket is served by a
 * virtual thread of its own. The socket is non-blocking and the epoll thread tells the session when it is
 * ready, so a session waiting for its front-end holds no carrier and no platform thread. SET_OWNER opens
 * the first queue pair's vhost-net and so creates its worker through the server's worker model; each further
 * pair gets its own vhost-net (and worker) when one of its rings starts, as QEMU opens one /dev/vhost-net
 * per queue pair.
 *
 * <p>Three parts: {@link VhostUserCodec} reads and checks messages and writes replies; {@link Vrings} keeps
 * the vring state and the devices behind it; this class dispatches each request and owns the session's
 * life.
 *
 * <p>Any protocol violation, socket failure or resource failure ends the session with one
 * {@link CloseReason}; everything it holds (devices and their workers, backends, the mappings, every fd,
 * its buffers, the process) is released, and the server goes on. After the end, the session keeps only its
 * counters.
 */
public final class VhostUserSession {

    private final VhostUserServer server;
    private final long id;
    private final UnixSocket socket;
    private final Process process;
    private final Vrings vrings;
    private final Thread thread;
    private final Notifier socketReady = new Notifier();
    private final AtomicReference<CloseReason> reason = new AtomicReference<>();
    private final CountDownLatch ended = new CountDownLatch(1);
    private volatile boolean closing;
    private volatile long messages;
    private volatile long features;
    private volatile FrameAccount finalAccount;

    // Session-thread state.
    private VhostUserCodec codec;
    /** RESET_OWNER came since SET_OWNER: a SET_OWNER again is fine (and not needed). */
    private boolean ownerReset;
    private long protocolFeatures;
    private int mtu;

    VhostUserSession(VhostUserServer server, long id, UnixSocket socket, Process process) {
        this.server = server;
        this.id = id;
        this.socket = socket;
        this.process = process;
        this.vrings = new Vrings(server, this, process.mainTask());
        this.mtu = server.config().mtu();
        this.thread = Thread.ofVirtual().name("vhost-user-" + id).unstarted(this::run);
    }

    void start() {
        thread.start();
    }

    /** The session's number on its server (from 1; a long: a server runs for weeks of reconnects). */
    public long id() {
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
        return vrings.maxQueuePairs();
    }

    /** The backend of queue pair {@code k}, or null until its device opened and after it closed. */
    public NetBackend backend(int k) {
        Vrings.Pair p = vrings.pairOrNull(k);
        return p == null ? null : p.backend();
    }

    /** The vhost-net of queue pair {@code k}, or null until its device opened and after it closed. */
    public VhostNet net(int k) {
        Vrings.Pair p = vrings.pairOrNull(k);
        return p == null ? null : p.net();
    }

    /**
     * Counters of every vring whose pair exists or existed (also after the session ended; a RESET_OWNER
     * keeps what the closed devices counted).
     */
    public List<QueueStats> stats() {
        return vrings.stats();
    }

    /** Where the session's frames went: so far while it runs, exactly once it has ended. */
    public FrameAccount account() {
        FrameAccount f = finalAccount;
        return f != null ? f : vrings.account();
    }

    /** Ends the session (SERVER_CLOSED unless it already ended otherwise) and waits until it released all. */
    public void close() {
        requestClose();
        if (Thread.currentThread() != thread) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Tells the session to end (SERVER_CLOSED unless it already ended otherwise) without waiting. */
    void requestClose() {
        closing = true;
        socket.shutdown();
    }

    // ---- the message loop ----

    private void run() {
        // Confined to this thread: closing it at the end handshakes with no other thread.
        EpollLoop.Registration watch = null;
        try (Arena arena = Arena.ofConfined()) {
            try {
                codec = new VhostUserCodec(socket, arena, () -> closing);
                watch = server.loop().watch(socket.fd(), socketReady);
                socket.setReadiness(socketReady::await);
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
                if (codec != null) {
                    codec.closeFds();
                }
                release(watch);
                codec = null;
            }
        } finally {
            finalAccount = vrings.account();
            ended.countDown();
            server.sessionEnded(this, reason.get());
        }
    }

    private void end(CloseCause cause, String detail) {
        VhostUserRequest r = codec == null ? null : codec.current();
        reason.compareAndSet(null, new CloseReason(cause, r, detail == null ? "" : detail));
    }

    private void loop() throws ProtocolException, NativeException {
        while (true) {
            VhostUserRequest r = codec.next(protocolFeatures);
            if (r == null) {
                end(closing ? CloseCause.SERVER_CLOSED : CloseCause.PEER_CLOSED, "");
                return;
            }
            boolean needReply = codec.needReply();
            try {
                codec.rejectUnexpectedFds();
                boolean replied = handle(r);
                messages++;
                if (needReply && !replied) {
                    codec.replyU64(r, 0); // REPLY_ACK: success
                }
            } catch (ProtocolException e) {
                if (needReply && !closing) {
                    try {
                        codec.replyU64(r, 1); // REPLY_ACK: failure, then the session ends
                    } catch (NativeException ignored) {
                        // The peer is gone; the violation stays the reason.
                    }
                }
                throw e;
            } finally {
                codec.closeFds();
            }
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

    /** Handles one request; true if it sent its own reply. */
    private boolean handle(VhostUserRequest r) throws ProtocolException, NativeException {
        switch (r) {
            case GET_FEATURES -> {
                codec.replyU64(r, VhostUser.FEATURES);
                return true;
            }
            case SET_FEATURES -> {
                long f = codec.u64(0);
                if ((f & ~VhostUser.FEATURES) != 0) {
                    throw new ProtocolException(CloseCause.FEATURES_NOT_OFFERED, "0x" + Long.toHexString(f & ~VhostUser.FEATURES));
                }
                boolean changed = f != features;
                features = f;
                vrings.setFeatures(f);
                if (changed) {
                    server.featuresNegotiated(this, f); // QEMU repeats SET_FEATURES per queue pair: tell once
                }
            }
            case SET_OWNER -> {
                if (vrings.ownerSet() && !ownerReset) {
                    throw new ProtocolException(CloseCause.OWNER_ALREADY_SET, "");
                }
                ownerReset = false;
                vrings.setOwner();
            }
            case RESET_OWNER -> {
                vrings.resetOwner();
                // The session stays the owner (the same process); devices come back as rings start again.
                ownerReset = true;
                features = 0;
            }
            case SET_MEM_TABLE -> vrings.setMemTable(codec);
            case SET_VRING_NUM -> vrings.setVringNum(codec.u32(VhostUser.STATE_INDEX), codec.u32(VhostUser.STATE_NUM));
            case SET_VRING_ADDR -> vrings.setVringAddr(codec.u32(VhostUser.ADDR_INDEX), codec.u32(VhostUser.ADDR_FLAGS),
                    codec.u64(VhostUser.ADDR_DESC), codec.u64(VhostUser.ADDR_USED), codec.u64(VhostUser.ADDR_AVAIL));
            case SET_VRING_BASE -> vrings.setVringBase(codec.u32(VhostUser.STATE_INDEX), codec.u32(VhostUser.STATE_NUM));
            case GET_VRING_BASE -> {
                int index = codec.u32(VhostUser.STATE_INDEX);
                int base = vrings.getVringBase(index);
                MemorySegment out = codec.replyPayload();
                out.set(JAVA_INT_UNALIGNED, VhostUser.STATE_INDEX, index);
                out.set(JAVA_INT_UNALIGNED, VhostUser.STATE_NUM, base);
                codec.reply(r, 8);
                return true;
            }
            case SET_VRING_KICK -> vrings.setVringKick(codec.u64(0), codec);
            case SET_VRING_CALL -> vrings.setVringCall(codec.u64(0), codec);
            case SET_VRING_ERR -> vrings.setVringErr(codec.u64(0), codec);
            case GET_PROTOCOL_FEATURES -> {
                codec.replyU64(r, VhostUser.PROTOCOL_FEATURES);
                return true;
            }
            case SET_PROTOCOL_FEATURES -> {
                long f = codec.u64(0);
                if ((f & ~VhostUser.PROTOCOL_FEATURES) != 0) {
                    throw new ProtocolException(CloseCause.PROTOCOL_FEATURES_NOT_OFFERED,
                            "0x" + Long.toHexString(f & ~VhostUser.PROTOCOL_FEATURES));
                }
                protocolFeatures = f;
            }
            case GET_QUEUE_NUM -> {
                codec.replyU64(r, vrings.maxQueuePairs());
                return true;
            }
            // vhost-user.rst: "sent only when PROTOCOL_FEATURES has been negotiated", but QEMU 7.2 checks only
            // that the backend offers it and sends it before SET_FEATURES (seen with a Linux guest). So the
            // flag is kept whenever it comes; it gates a ring only once the bit is acknowledged.
            case SET_VRING_ENABLE -> vrings.setVringEnable(codec.u32(VhostUser.STATE_INDEX), codec.u32(VhostUser.STATE_NUM) != 0);
            case SEND_RARP -> {
                // Nothing to announce: no switch learns from this backend's side.
            }
            case NET_SET_MTU -> {
                long m = codec.u64(0);
                if (m < 68 || m > 65535) {
                    throw new ProtocolException(CloseCause.BAD_MTU, "mtu " + m);
                }
                mtu = (int) m;
            }
            case GET_CONFIG -> {
                int n = configRange();
                int offset = codec.u32(VhostUser.CONFIG_OFFSET);
                MemorySegment reply = codec.replyPayload();
                MemorySegment.copy(codec.payload(), 0, reply, 0, VhostUser.CONFIG_HEADER);
                MemorySegment out = reply.asSlice(VhostUser.CONFIG_HEADER, n);
                out.fill((byte) 0);
                byte[] cfg = netConfig();
                for (int i = 0; i < n && offset + i < cfg.length; i++) {
                    out.set(JAVA_BYTE, i, cfg[offset + i]);
                }
                codec.reply(r, codec.size());
                return true;
            }
            case SET_CONFIG -> configRange(); // virtio-net's config is read-only for the driver
        }
        return false;
    }

    private int configRange() throws ProtocolException {
        int size = codec.size();
        if (size < VhostUser.CONFIG_HEADER) {
            throw new ProtocolException(CloseCause.SIZE_MISMATCH, "config message of " + size + " bytes");
        }
        long offset = codec.u32(VhostUser.CONFIG_OFFSET) & 0xffffffffL;
        long n = codec.u32(VhostUser.CONFIG_SIZE) & 0xffffffffL;
        if (size != VhostUser.CONFIG_HEADER + n) {
            throw new ProtocolException(CloseCause.SIZE_MISMATCH, "config of " + n + " bytes in " + size);
        }
        if (offset + n > VhostUser.MAX_PAYLOAD - VhostUser.CONFIG_HEADER) {
            throw new ProtocolException(CloseCause.BAD_CONFIG_RANGE, "offset " + offset + " size " + n);
        }
        return (int) n;
    }

    /** struct virtio_net_config as this backend presents it (virtio 1.2 §5.1.4). */
    private byte[] netConfig() {
        MemorySegment c = MemorySegment.ofArray(new byte[NetConfigSpace.SIZE]);
        byte[] mac = server.config().mac();
        MemorySegment.copy(MemorySegment.ofArray(mac), 0, c, NetConfigSpace.MAC, 6);
        c.set(JAVA_SHORT_UNALIGNED, NetConfigSpace.STATUS, (short) NetConfigSpace.LINK_UP);
        c.set(JAVA_SHORT_UNALIGNED, NetConfigSpace.MAX_VIRTQUEUE_PAIRS, (short) vrings.maxQueuePairs());
        c.set(JAVA_SHORT_UNALIGNED, NetConfigSpace.MTU, (short) mtu);
        return c.toArray(JAVA_BYTE);
    }

    /** Devices, backends, kicks and calls, mappings; then the socket's watch, the process and the socket. */
    private void release(EpollLoop.Registration watch) {
        try {
            vrings.release();
        } finally {
            if (watch != null) {
                watch.close(); // before the fd goes: its number may be reused at once
            }
            process.exit();
            socket.close();
        }
    }

    @Override
    public String toString() {
        return "vhost-user session " + id + " (pid " + process.pid() + ")";
    }
}
