package dev.loomvisor.vhost.user;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.sys.EpollLoop;
import dev.loomvisor.vhost.sys.NativeException;
import dev.loomvisor.vhost.sys.UnixSocket;
import dev.loomvisor.vmm.virtio.SplitRing;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A vhost-user backend server on a UNIX socket: each connection is a {@link VhostUserSession} (an emulated
 * process owning its vhost-net devices, with workers from the configured {@link WorkerModel}); one
 * {@link EpollLoop} platform thread turns every session's kick eventfds into work on the workers.
 *
 * <p>Nothing here prints: sessions' openings and closings (with their one reason) go to the
 * {@link Listener}, and {@link #totals()} keeps running totals (by cause, and every closed session's frame
 * account), so nothing of a closed session needs to be kept. At most {@link Config#maxSessions()} sessions
 * run at once; each is a virtual thread waiting on its socket through the epoll thread.
 */
public final class VhostUserServer implements AutoCloseable {

    /**
     * @param model the worker model of every session's devices
     * @param backends the backend of each queue pair of each session
     * @param maxQueuePairs queue pairs a session may use (GET_QUEUE_NUM; max_virtqueue_pairs)
     * @param mac the MAC address GET_CONFIG shows (6 bytes)
     * @param mtu the MTU GET_CONFIG shows
     * @param maxQueueSize the largest SET_VRING_NUM accepted (a power of two, at most 32768)
     * @param kernel the emulated kernel sessions' processes live in (null: a new one)
     * @param busyPollMicros VHOST_SET_VRING_BUSYLOOP_TIMEOUT of every ring (0: off)
     * @param maxSessions sessions served at once; a connection beyond them is refused at accept
     */
    public record Config(WorkerModel model, BackendFactory backends, int maxQueuePairs, byte[] mac, int mtu,
                         int maxQueueSize, Kernel kernel, long busyPollMicros, int maxSessions) {

        /** Sessions at once unless told otherwise: far above what one host's VMs use, far below its fds. */
        public static final int DEFAULT_MAX_SESSIONS = 1024;
        /** The most --max-sessions allows: each session holds at least a socket, a kick and a call fd. */
        public static final int MAX_SESSIONS = 65536;

        public Config {
            if (maxQueuePairs < 1 || maxQueuePairs > 128) {
                throw new IllegalArgumentException("queue pairs " + maxQueuePairs);
            }
            if (mac.length != 6) {
                throw new IllegalArgumentException("mac of " + mac.length + " bytes");
            }
            if (maxQueueSize < 1 || maxQueueSize > SplitRing.MAX_QUEUE_SIZE || (maxQueueSize & (maxQueueSize - 1)) != 0) {
                throw new IllegalArgumentException("max queue size " + maxQueueSize);
            }
            if (busyPollMicros < 0) {
                throw new IllegalArgumentException("busy-poll " + busyPollMicros);
            }
            if (maxSessions < 1 || maxSessions > MAX_SESSIONS) {
                throw new IllegalArgumentException("max sessions " + maxSessions);
            }
            mac = mac.clone();
        }

        /** user-worker, a sink per queue pair, one pair, MAC 52:54:00:12:34:56, MTU 1500, rings up to 32768. */
        public static Config defaults() {
            return new Config(WorkerModel.DEFAULT, (s, k) -> new SinkBackend(), 1,
                    new byte[] {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, 1500, SplitRing.MAX_QUEUE_SIZE, null, 0, DEFAULT_MAX_SESSIONS);
        }

        public Config withModel(WorkerModel m) {
            return new Config(m, backends, maxQueuePairs, mac, mtu, maxQueueSize, kernel, busyPollMicros, maxSessions);
        }

        public Config withBackends(BackendFactory b) {
            return new Config(model, b, maxQueuePairs, mac, mtu, maxQueueSize, kernel, busyPollMicros, maxSessions);
        }

        public Config withMaxQueuePairs(int n) {
            return new Config(model, backends, n, mac, mtu, maxQueueSize, kernel, busyPollMicros, maxSessions);
        }

        public Config withMac(byte[] m) {
            return new Config(model, backends, maxQueuePairs, m, mtu, maxQueueSize, kernel, busyPollMicros, maxSessions);
        }

        public Config withMtu(int m) {
            return new Config(model, backends, maxQueuePairs, mac, m, maxQueueSize, kernel, busyPollMicros, maxSessions);
        }

        public Config withMaxQueueSize(int n) {
            return new Config(model, backends, maxQueuePairs, mac, mtu, n, kernel, busyPollMicros, maxSessions);
        }

        public Config withKernel(Kernel k) {
            return new Config(model, backends, maxQueuePairs, mac, mtu, maxQueueSize, k, busyPollMicros, maxSessions);
        }

        public Config withBusyPollMicros(long us) {
            return new Config(model, backends, maxQueuePairs, mac, mtu, maxQueueSize, kernel, us, maxSessions);
        }

        public Config withMaxSessions(int n) {
            return new Config(model, backends, maxQueuePairs, mac, mtu, maxQueueSize, kernel, busyPollMicros, n);
        }

        @Override
        public byte[] mac() {
            return mac.clone();
        }
    }

    /**
     * Told of sessions coming and going, each in one place: {@link #opened} on the accept thread before the
     * session's thread starts, {@link #closed} on the session's thread after it released everything,
     * {@link #refused} on the accept thread. Must not block long.
     */
    public interface Listener {
        default void opened(VhostUserSession session) {
        }

        /** SET_FEATURES accepted: {@link VhostUserSession#ringLayout()} names the ring layout now in use. */
        default void negotiated(VhostUserSession session, long features) {
        }

        /** The session ended for {@code reason} and has released everything. */
        default void closed(VhostUserSession session, CloseReason reason) {
        }

        /** A connection was closed at accept, never a session (SESSION_LIMIT, or RESOURCE_ERROR). */
        default void refused(CloseReason reason) {
        }
    }

    /**
     * A consistent snapshot of the server's running totals: {@code opened == closed + open} always holds
     * in one snapshot. {@code closedAccount} is the exact frame account of every closed session.
     */
    public record Totals(long opened, long closed, int open, long refused, Map<CloseCause, Long> closeCauses,
                         Map<CloseCause, Long> refuseCauses, FrameAccount closedAccount) {
    }

    private final Path path;
    private final Config config;
    private final Listener listener;
    private final Kernel kernel;
    private final WorkerFactory workerFactory;
    private final UnixSocket listenSocket;
    private final EpollLoop loop;
    private final Thread acceptThread;
    private final AtomicLong nextId = new AtomicLong(1);
    /** Guards the open sessions and every running total, so a snapshot is consistent. */
    private final ReentrantLock countsLock = new ReentrantLock();
    private final Map<Long, VhostUserSession> sessions = new LinkedHashMap<>();
    private final Map<CloseCause, Long> closeCounts = new EnumMap<>(CloseCause.class);
    private final Map<CloseCause, Long> refuseCounts = new EnumMap<>(CloseCause.class);
    private long opened;
    private long closed;
    private long refused;
    private FrameAccount closedAccount = FrameAccount.ZERO;
    private volatile boolean closing;
    private volatile Throwable acceptFailure;

    private VhostUserServer(Path path, Config config, Listener listener) throws IOException {
        this.path = path;
        this.config = config;
        this.listener = listener == null ? new Listener() { } : listener;
        this.kernel = config.kernel() == null ? new Kernel() : config.kernel();
        try {
            this.workerFactory = config.model().factory(kernel);
        } catch (ErrnoException e) {
            throw new IOException("worker model " + config.model().modelName() + ": " + e.getMessage(), e);
        }
        // A stale socket from an earlier run would make bind fail; anything else at the path is not ours.
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            if (!Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class,
                    java.nio.file.LinkOption.NOFOLLOW_LINKS).isOther()) {
                workerFactory.close();
                throw new java.nio.file.FileAlreadyExistsException(path.toString(), null, "not a socket");
            }
            Files.delete(path);
        }
        try {
            this.listenSocket = UnixSocket.listen(path, 16);
        } catch (NativeException e) {
            workerFactory.close();
            throw e;
        }
        try {
            this.loop = new EpollLoop("vhost-user-epoll");
        } catch (NativeException e) {
            listenSocket.close();
            workerFactory.close();
            throw e;
        }
        this.acceptThread = Thread.ofPlatform().name("vhost-user-accept").daemon().unstarted(this::acceptLoop);
    }

    /**
     * Listens on {@code socket} (replacing a stale socket there, refusing any other file) and serves
     * front-ends until {@link #close}.
     */
    public static VhostUserServer start(Path socket, Config config, Listener listener) throws IOException {
        VhostUserServer s = new VhostUserServer(socket, config, listener);
        s.acceptThread.start();
        return s;
    }

    public Path socket() {
        return path;
    }

    public Config config() {
        return config;
    }

    public Kernel kernel() {
        return kernel;
    }

    WorkerFactory workerFactory() {
        return workerFactory;
    }

    EpollLoop loop() {
        return loop;
    }

    /** Sessions now open. */
    public List<VhostUserSession> sessions() {
        countsLock.lock();
        try {
            return List.copyOf(sessions.values());
        } finally {
            countsLock.unlock();
        }
    }

    /** Sessions ended so far, by cause. */
    public Map<CloseCause, Long> closeCounts() {
        countsLock.lock();
        try {
            return new EnumMap<>(closeCounts.isEmpty() ? Map.of() : closeCounts);
        } finally {
            countsLock.unlock();
        }
    }

    /** The running totals, as one consistent snapshot. */
    public Totals totals() {
        countsLock.lock();
        try {
            return new Totals(opened, closed, sessions.size(), refused,
                    closeCounts.isEmpty() ? Map.of() : new EnumMap<>(closeCounts),
                    refuseCounts.isEmpty() ? Map.of() : new EnumMap<>(refuseCounts), closedAccount);
        } finally {
            countsLock.unlock();
        }
    }

    /** The accept loop's failure, if it ended other than by {@link #close} (null otherwise). */
    public Throwable acceptFailure() {
        return acceptFailure;
    }

    private void acceptLoop() {
        while (!closing) {
            UnixSocket conn;
            try {
                conn = listenSocket.acceptNonBlocking();
            } catch (NativeException e) {
                if (closing) {
                    return;
                }
                if (e.errno() == NativeException.EINTR || e.errno() == 103 /* ECONNABORTED */) {
                    continue;
                }
                if (e.errno() == 24 || e.errno() == 23 /* EMFILE, ENFILE: wait for fds to come back */) {
                    try {
                        Thread.sleep(10);
                    } catch (InterruptedException ie) {
                        return;
                    }
                    continue;
                }
                acceptFailure = e;
                return;
            }
            sessionOpening(conn);
        }
    }

    void featuresNegotiated(VhostUserSession s, long features) {
        listener.negotiated(s, features);
    }

    /**
     * The one place a connection becomes a session (or is refused): beyond the session limit it is closed
     * at once, before anything is spawned for it, so a front-end reconnecting in a loop costs an accept and
     * a close.
     */
    private void sessionOpening(UnixSocket conn) {
        countsLock.lock();
        int open;
        try {
            open = sessions.size();
        } finally {
            countsLock.unlock();
        }
        if (open >= config.maxSessions()) {
            conn.close();
            refuse(new CloseReason(CloseCause.SESSION_LIMIT, null, open + " sessions open, at most " + config.maxSessions()));
            return;
        }
        long id = nextId.getAndIncrement();
        Process p;
        try {
            p = kernel.spawn("vhost-user-" + id, Credentials.root(), Rlimits.unlimited(), kernel.rootCgroup());
        } catch (ErrnoException e) {
            conn.close();
            refuse(new CloseReason(CloseCause.RESOURCE_ERROR, null, "spawn: " + e.getMessage()));
            return;
        }
        VhostUserSession s = new VhostUserSession(this, id, conn, p);
        countsLock.lock();
        try {
            sessions.put(id, s);
            opened++;
        } finally {
            countsLock.unlock();
        }
        listener.opened(s);
        dev.loomvisor.vhost.jfr.SessionEvents.opened(s.id(), path);
        s.start();
    }

    private void refuse(CloseReason reason) {
        countsLock.lock();
        try {
            refused++;
            refuseCounts.merge(reason.cause(), 1L, Long::sum);
        } finally {
            countsLock.unlock();
        }
        listener.refused(reason);
    }

    /** The one place a session ends: its final account joins the totals, in the same step as it leaves. */
    void sessionEnded(VhostUserSession s, CloseReason reason) {
        countsLock.lock();
        try {
            if (sessions.remove(s.id()) != null) {
                closed++;
                closeCounts.merge(reason.cause(), 1L, Long::sum);
                closedAccount = closedAccount.plus(s.account());
            }
        } finally {
            countsLock.unlock();
        }
        dev.loomvisor.vhost.jfr.SessionEvents.closed(s.id(), reason.cause(), reason.detail());
        listener.closed(s, reason);
    }

    /** Stops accepting, ends every session (SERVER_CLOSED), stops the poller, removes the socket file. */
    @Override
    public void close() {
        if (closing) {
            return;
        }
        closing = true;
        listenSocket.shutdown();
        try {
            acceptThread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        // All at once, then wait for each: teardown takes as long as the slowest session, not their sum.
        List<VhostUserSession> open = sessions();
        for (VhostUserSession s : open) {
            s.requestClose();
        }
        for (VhostUserSession s : open) {
            s.close();
        }
        loop.close();
        workerFactory.close();
        listenSocket.close();
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // Someone else's file now, or the directory is gone: not ours to report.
        }
    }
}
