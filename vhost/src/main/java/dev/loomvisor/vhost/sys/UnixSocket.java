package dev.loomvisor.vhost.sys;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An AF_UNIX stream socket with SCM_RIGHTS fd passing. One thread receives and one sends at a time (a
 * vhost-user session's own thread does both); {@link #shutdown()} may come from any thread and wakes a
 * blocked {@link #accept()} or {@link #recv} (close alone would not, on Linux).
 *
 * <p>The msghdr, iovec and control buffer are one block per socket from a pool (a message allocates
 * nothing, and closing a socket closes no arena).
 *
 * <p>A socket accepted with {@link #acceptNonBlocking()} never blocks in a native call: where a blocking
 * socket would wait in recvmsg or sendmsg, it waits in its {@link Readiness} (a virtual thread parks there
 * without pinning its carrier).
 */
public final class UnixSocket implements AutoCloseable {

    /** Waits until the socket may have become readable or writable since the last wait (an epoll edge). */
    @FunctionalInterface
    public interface Readiness {
        void await() throws InterruptedException;
    }

    /** At most this many fds per message (what well-known vhost-user backends accept). */
    public static final int MAX_FDS = 32;
    /** Room to receive MAX_FDS fds: a peer sending more gets MSG_CTRUNC (and the excess closed). */
    private static final long CONTROL_SIZE = Libc.cmsgSpace(4L * MAX_FDS);
    /** SCM_MAX_FD: the kernel's own limit, which {@link #send} allows so tests can exceed MAX_FDS. */
    public static final int SCM_MAX_FD = 253;
    private static final long SEND_CONTROL_SIZE = Libc.cmsgSpace(4L * SCM_MAX_FD);

    private static final SegmentPool BUFFERS = new SegmentPool(Libc.MSGHDR_SIZE + Libc.IOVEC_SIZE + SEND_CONTROL_SIZE, 1024);

    private final int fd;
    private final MemorySegment block;
    private final MemorySegment msghdr;
    private final MemorySegment iov;
    private final MemorySegment control;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final ReentrantLock closeLock = new ReentrantLock();
    private final boolean nonBlocking;
    private volatile Readiness readiness;
    private int lastFdCount;
    private int lastFlags;

    private UnixSocket(int fd, boolean nonBlocking) {
        this.fd = fd;
        this.nonBlocking = nonBlocking;
        this.block = BUFFERS.take();
        this.msghdr = block.asSlice(0, Libc.MSGHDR_SIZE);
        this.iov = block.asSlice(Libc.MSGHDR_SIZE, Libc.IOVEC_SIZE);
        this.control = block.asSlice(Libc.MSGHDR_SIZE + Libc.IOVEC_SIZE, SEND_CONTROL_SIZE);
    }

    /** Native blocks the sockets' buffers took so far (new ones only when more sockets are open than ever). */
    public static long buffersMade() {
        return BUFFERS.blocksMade();
    }

    /** A listening socket bound to {@code path} (which must not exist). */
    public static UnixSocket listen(Path path, int backlog) throws NativeException {
        int fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0);
        try (Arena a = Arena.ofConfined()) {
            Libc.bind(fd, sockaddr(a, path), Libc.SOCKADDR_UN_SIZE);
            Libc.listen(fd, backlog);
            return new UnixSocket(fd, false);
        } catch (NativeException | RuntimeException e) {
            Libc.closeQuietly(fd);
            throw e;
        }
    }

    /** A socket connected to the listener at {@code path}. */
    public static UnixSocket connect(Path path) throws NativeException {
        int fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0);
        try (Arena a = Arena.ofConfined()) {
            Libc.connect(fd, sockaddr(a, path), Libc.SOCKADDR_UN_SIZE);
            return new UnixSocket(fd, false);
        } catch (NativeException | RuntimeException e) {
            Libc.closeQuietly(fd);
            throw e;
        }
    }

    private static MemorySegment sockaddr(Arena a, Path path) {
        byte[] p = path.toString().getBytes(StandardCharsets.UTF_8);
        if (p.length >= Libc.SUN_PATH_MAX) {
            throw new IllegalArgumentException("socket path longer than " + (Libc.SUN_PATH_MAX - 1) + " bytes: " + path);
        }
        MemorySegment sa = a.allocate(Libc.SOCKADDR_UN_SIZE, 2);
        sa.set(JAVA_SHORT, 0, (short) Libc.AF_UNIX);
        MemorySegment.copy(p, 0, sa, JAVA_BYTE, Libc.SUN_PATH_OFFSET, p.length);
        return sa;
    }

    /** Blocks until a peer connects; the new connection is close-on-exec. */
    public UnixSocket accept() throws NativeException {
        return new UnixSocket(Libc.accept4(fd, Libc.SOCK_CLOEXEC), false);
    }

    /**
     * Blocks until a peer connects; the new connection is close-on-exec and non-blocking: give it a
     * {@link #setReadiness readiness} before receiving or sending on it.
     */
    public UnixSocket acceptNonBlocking() throws NativeException {
        return new UnixSocket(Libc.accept4(fd, Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK), true);
    }

    /** What a non-blocking socket waits in when a call would block. */
    public void setReadiness(Readiness r) {
        this.readiness = r;
    }

    /** On EAGAIN of a non-blocking socket: waits for the next edge, true to try again. */
    private boolean awaitReady(NativeException e) throws NativeException {
        Readiness r = readiness;
        if (e.errno() != NativeException.EAGAIN || !nonBlocking || r == null) {
            return false;
        }
        try {
            r.await();
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            throw new NativeException("wait", NativeException.EINTR);
        }
        return true;
    }

    public int fd() {
        return fd;
    }

    /**
     * Receives exactly {@code len} bytes into {@code dst} (MSG_WAITALL), and the fds that came with them
     * into {@code fds} (close-on-exec). Returns the bytes received: less than {@code len} only at end of
     * stream. {@link #lastFdCount()} and {@link #lastFlags()} tell what else came; fds beyond
     * {@code fds.length} are closed at once and reported by MSG_CTRUNC in the flags. A caller that rejects
     * the message must close the fds.
     */
    public int recv(MemorySegment dst, int len, int[] fds) throws NativeException {
        int got = 0;
        lastFdCount = 0;
        lastFlags = 0;
        while (got < len) {
            iov.set(JAVA_LONG, Libc.IOV_BASE, dst.address() + got);
            iov.set(JAVA_LONG, Libc.IOV_LEN, len - got);
            msghdr.fill((byte) 0);
            msghdr.set(JAVA_LONG, Libc.MSG_IOV, iov.address());
            msghdr.set(JAVA_LONG, Libc.MSG_IOVLEN, 1);
            msghdr.set(JAVA_LONG, Libc.MSG_CONTROL, control.address());
            msghdr.set(JAVA_LONG, Libc.MSG_CONTROLLEN, CONTROL_SIZE);
            long n;
            try {
                n = Libc.recvmsg(fd, msghdr, Libc.MSG_WAITALL | Libc.MSG_CMSG_CLOEXEC);
            } catch (NativeException e) {
                if (e.errno() == NativeException.EINTR || awaitReady(e)) {
                    continue;
                }
                throw e;
            }
            lastFlags |= msghdr.get(JAVA_INT, Libc.MSG_FLAGS);
            takeFds(fds);
            if (n == 0) {
                break;
            }
            got += (int) n;
        }
        return got;
    }

    private void takeFds(int[] fds) {
        long controlLen = msghdr.get(JAVA_LONG, Libc.MSG_CONTROLLEN);
        long off = 0;
        while (off + Libc.CMSG_HDR_SIZE <= controlLen) {
            long cmsgLen = control.get(JAVA_LONG, off + Libc.CMSG_LEN);
            if (cmsgLen < Libc.CMSG_HDR_SIZE || off + cmsgLen > controlLen) {
                break;
            }
            int level = control.get(JAVA_INT, off + Libc.CMSG_LEVEL);
            int type = control.get(JAVA_INT, off + Libc.CMSG_TYPE);
            if (level == Libc.SOL_SOCKET && type == Libc.SCM_RIGHTS) {
                long n = (cmsgLen - Libc.CMSG_HDR_SIZE) / 4;
                for (long i = 0; i < n; i++) {
                    int f = control.get(JAVA_INT, off + Libc.CMSG_HDR_SIZE + 4 * i);
                    if (lastFdCount < fds.length) {
                        fds[lastFdCount++] = f;
                    } else {
                        Libc.closeQuietly(f);
                        lastFlags |= Libc.MSG_CTRUNC;
                    }
                }
            }
            off += Libc.cmsgAlign(cmsgLen);
        }
    }

    /** Fds that came with the last {@link #recv}. */
    public int lastFdCount() {
        return lastFdCount;
    }

    /** msg_flags of the last {@link #recv}, OR-ed over its calls (MSG_CTRUNC: fds were lost). */
    public int lastFlags() {
        return lastFlags;
    }

    /**
     * Sends all {@code len} bytes of {@code src}, with {@code nfds} fds (at most SCM_MAX_FD; a well-behaved
     * sender keeps to MAX_FDS) attached to the first byte.
     */
    public void send(MemorySegment src, int len, int[] fds, int nfds) throws NativeException {
        if (nfds > SCM_MAX_FD) {
            throw new IllegalArgumentException(nfds + " fds");
        }
        int sent = 0;
        boolean first = true;
        while (sent < len || first) {
            iov.set(JAVA_LONG, Libc.IOV_BASE, src.address() + sent);
            iov.set(JAVA_LONG, Libc.IOV_LEN, len - sent);
            msghdr.fill((byte) 0);
            msghdr.set(JAVA_LONG, Libc.MSG_IOV, iov.address());
            msghdr.set(JAVA_LONG, Libc.MSG_IOVLEN, 1);
            if (first && nfds > 0) {
                control.fill((byte) 0);
                control.set(JAVA_LONG, Libc.CMSG_LEN, Libc.CMSG_HDR_SIZE + 4L * nfds);
                control.set(JAVA_INT, Libc.CMSG_LEVEL, Libc.SOL_SOCKET);
                control.set(JAVA_INT, Libc.CMSG_TYPE, Libc.SCM_RIGHTS);
                for (int i = 0; i < nfds; i++) {
                    control.set(JAVA_INT, Libc.CMSG_HDR_SIZE + 4L * i, fds[i]);
                }
                msghdr.set(JAVA_LONG, Libc.MSG_CONTROL, control.address());
                msghdr.set(JAVA_LONG, Libc.MSG_CONTROLLEN, Libc.cmsgSpace(4L * nfds));
            }
            long n;
            try {
                n = Libc.sendmsg(fd, msghdr, Libc.MSG_NOSIGNAL);
            } catch (NativeException e) {
                if (e.errno() == NativeException.EINTR || awaitReady(e)) {
                    continue;
                }
                throw e;
            }
            first = false;
            sent += (int) n;
            if (len == 0) {
                break;
            }
        }
    }

    /**
     * shutdown(SHUT_RDWR): wakes a thread blocked in accept or recv on this socket; idempotent. Never after
     * {@link #close} (the fd number may belong to another file by then): both take the same lock.
     */
    public void shutdown() {
        closeLock.lock();
        try {
            if (!closed.get()) {
                try {
                    Libc.shutdown(fd, Libc.SHUT_RDWR);
                } catch (NativeException ignored) {
                    // ENOTCONN: the peer is gone already, nothing blocks on it.
                }
            }
        } finally {
            closeLock.unlock();
        }
    }

    /** Closes the fd (once); call after the threads using the socket have left it. */
    @Override
    public void close() {
        closeLock.lock();
        try {
            if (!closed.compareAndSet(false, true)) {
                return;
            }
            Libc.closeQuietly(fd);
        } finally {
            closeLock.unlock();
        }
        BUFFERS.give(block);
    }
}
