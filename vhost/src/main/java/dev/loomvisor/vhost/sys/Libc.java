package dev.loomvisor.vhost.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The libc calls the vhost-user backend needs, as FFM downcalls (java.lang.foreign), x86_64 Linux.
 *
 * <p>Why FFM and not JNI or junixsocket: it needs no extra dependency and no native build, and besides
 * SCM_RIGHTS fd passing (all junixsocket would give) the backend needs mmap of the frontend's memory fds,
 * eventfd and epoll, which no well-kept Java library offers together.
 *
 * <p>Every fallible call captures errno ({@code Linker.Option.captureCallState("errno")}) into a per-thread
 * segment, so a failure becomes a {@link NativeException} with the errno of that very call. The two calls
 * on the data path ({@link #eventfdSignal}, {@link #eventfdDrain}) are non-blocking, allocation-free and
 * return a plain result instead: a virtual thread never parks inside them, so they pin nothing.
 */
public final class Libc {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(
            java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final ThreadLocal<MemorySegment> STATE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE));

    // <sys/socket.h>, <sys/un.h>, <sys/epoll.h>, <sys/eventfd.h>, <sys/mman.h> on x86_64 Linux.
    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_NONBLOCK = 0x800;
    public static final int SOCK_CLOEXEC = 0x80000;
    public static final int SHUT_RDWR = 2;
    public static final int SOL_SOCKET = 1;
    public static final int SCM_RIGHTS = 1;
    public static final int MSG_CTRUNC = 0x8;
    public static final int MSG_TRUNC = 0x20;
    public static final int MSG_WAITALL = 0x100;
    public static final int MSG_NOSIGNAL = 0x4000;
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    public static final int EFD_NONBLOCK = 0x800;
    public static final int EFD_CLOEXEC = 0x80000;
    public static final int EPOLL_CLOEXEC = 0x80000;
    public static final int EPOLL_CTL_ADD = 1;
    public static final int EPOLL_CTL_DEL = 2;
    public static final int EPOLLIN = 0x1;
    public static final int EPOLLOUT = 0x4;
    public static final int EPOLLRDHUP = 0x2000;
    public static final int EPOLLET = 1 << 31;
    public static final int EPOLLERR = 0x8;
    public static final int EPOLLHUP = 0x10;
    public static final int PROT_READ = 0x1;
    public static final int PROT_WRITE = 0x2;
    public static final int MAP_SHARED = 0x1;
    public static final int MFD_CLOEXEC = 0x1;
    public static final int MFD_ALLOW_SEALING = 0x2;
    /** S_IFMT and S_IFREG of st_mode. */
    public static final int S_IFMT = 0xf000;
    public static final int S_IFREG = 0x8000;

    // struct sockaddr_un: sa_family_t sun_family; char sun_path[108].
    public static final int SOCKADDR_UN_SIZE = 110;
    public static final int SUN_PATH_OFFSET = 2;
    public static final int SUN_PATH_MAX = 108;
    // struct iovec: void *iov_base; size_t iov_len.
    public static final int IOVEC_SIZE = 16;
    public static final int IOV_BASE = 0;
    public static final int IOV_LEN = 8;
    // struct msghdr: name, namelen (+4 pad), iov, iovlen, control, controllen, flags (+4 pad).
    public static final int MSGHDR_SIZE = 56;
    public static final int MSG_NAME = 0;
    public static final int MSG_NAMELEN = 8;
    public static final int MSG_IOV = 16;
    public static final int MSG_IOVLEN = 24;
    public static final int MSG_CONTROL = 32;
    public static final int MSG_CONTROLLEN = 40;
    public static final int MSG_FLAGS = 48;
    // struct cmsghdr: size_t cmsg_len; int cmsg_level; int cmsg_type; data aligned to size_t.
    public static final int CMSG_HDR_SIZE = 16;
    public static final int CMSG_LEN = 0;
    public static final int CMSG_LEVEL = 8;
    public static final int CMSG_TYPE = 12;
    // struct epoll_event is __attribute__((packed)) on x86_64: u32 events; u64 data (at 4, not 8).
    public static final int EPOLL_EVENT_SIZE = 12;
    public static final int EPOLL_EVENTS = 0;
    public static final int EPOLL_DATA = 4;
    // struct stat (x86_64): st_mode at 24 (u32), st_size at 48 (s64); 144 bytes.
    public static final int STAT_SIZE = 144;
    public static final int STAT_MODE = 24;
    public static final int STAT_SIZE_OFFSET = 48;

    /** CMSG_ALIGN: ancillary items are padded to sizeof(size_t). */
    public static long cmsgAlign(long len) {
        return (len + 7) & ~7L;
    }

    /** CMSG_SPACE(n): the room one item with n data bytes takes. */
    public static long cmsgSpace(long n) {
        return CMSG_HDR_SIZE + cmsgAlign(n);
    }

    private static final MethodHandle SOCKET = errnoCall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle BIND = errnoCall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = errnoCall("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 = errnoCall("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle CONNECT = errnoCall("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SHUTDOWN = errnoCall("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle RECVMSG = errnoCall("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = errnoCall("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle CLOSE = errnoCall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle READ = errnoCall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = errnoCall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle MMAP = errnoCall("mmap", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = errnoCall("munmap", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle MEMFD_CREATE = errnoCall("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE = errnoCall("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle FSTAT = errnoCall("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle EVENTFD = errnoCall("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle EPOLL_CREATE1 = errnoCall("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle EPOLL_CTL = errnoCall("epoll_ctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle EPOLL_WAIT = errnoCall("epoll_wait", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle FCNTL = errnoCall("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    /** The data path's eventfd calls: short, non-blocking, no errno (a result below 0 is the failure). */
    private static final MethodHandle WRITE_CRITICAL = LINKER.downcallHandle(LINKER.defaultLookup().find("write").orElseThrow(),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), Linker.Option.critical(false));
    private static final MethodHandle READ_CRITICAL = LINKER.downcallHandle(LINKER.defaultLookup().find("read").orElseThrow(),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), Linker.Option.critical(false));

    private static final MethodHandle FCNTL3 = errnoCall("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));

    /** fcntl commands: F_GETFD tells whether an fd is open; F_GETFL/F_SETFL read and set O_NONBLOCK. */
    private static final int F_GETFD = 1;
    private static final int F_GETFL = 3;
    private static final int F_SETFL = 4;
    public static final int O_NONBLOCK = 0x800;

    private Libc() {
    }

    private static MethodHandle errnoCall(String name, FunctionDescriptor fd, Linker.Option... more) {
        Linker.Option[] opts = new Linker.Option[more.length + 1];
        opts[0] = CAPTURE_ERRNO;
        System.arraycopy(more, 0, opts, 1, more.length);
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(
                () -> new UnsupportedOperationException(name + " is not in this libc")), fd, opts);
    }

    private static MemorySegment state() {
        return STATE.get();
    }

    private static int errno(MemorySegment st) {
        return (int) ERRNO.get(st, 0L);
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    private static int check(String call, int r, MemorySegment st) throws NativeException {
        if (r < 0) {
            throw new NativeException(call, errno(st));
        }
        return r;
    }

    private static long check(String call, long r, MemorySegment st) throws NativeException {
        if (r < 0) {
            throw new NativeException(call, errno(st));
        }
        return r;
    }

    public static int socket(int domain, int type, int protocol) throws NativeException {
        MemorySegment st = state();
        try {
            return check("socket", (int) SOCKET.invokeExact(st, domain, type, protocol), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void bind(int fd, MemorySegment addr, int len) throws NativeException {
        MemorySegment st = state();
        try {
            check("bind", (int) BIND.invokeExact(st, fd, addr, len), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void listen(int fd, int backlog) throws NativeException {
        MemorySegment st = state();
        try {
            check("listen", (int) LISTEN.invokeExact(st, fd, backlog), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** accept4 without the peer's address. */
    public static int accept4(int fd, int flags) throws NativeException {
        MemorySegment st = state();
        try {
            return check("accept4", (int) ACCEPT4.invokeExact(st, fd, MemorySegment.NULL, MemorySegment.NULL, flags), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void connect(int fd, MemorySegment addr, int len) throws NativeException {
        MemorySegment st = state();
        try {
            check("connect", (int) CONNECT.invokeExact(st, fd, addr, len), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void shutdown(int fd, int how) throws NativeException {
        MemorySegment st = state();
        try {
            check("shutdown", (int) SHUTDOWN.invokeExact(st, fd, how), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long recvmsg(int fd, MemorySegment msghdr, int flags) throws NativeException {
        MemorySegment st = state();
        try {
            return check("recvmsg", (long) RECVMSG.invokeExact(st, fd, msghdr, flags), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long sendmsg(int fd, MemorySegment msghdr, int flags) throws NativeException {
        MemorySegment st = state();
        try {
            return check("sendmsg", (long) SENDMSG.invokeExact(st, fd, msghdr, flags), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void close(int fd) throws NativeException {
        MemorySegment st = state();
        try {
            check("close", (int) CLOSE.invokeExact(st, fd), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** close(2) on a release path: an error (EBADF, EINTR after the fd is gone anyway) changes nothing. */
    public static void closeQuietly(int fd) {
        if (fd >= 0) {
            try {
                close(fd);
            } catch (NativeException ignored) {
                // Linux releases the fd even when close reports an error.
            }
        }
    }

    public static long read(int fd, MemorySegment buf, long len) throws NativeException {
        MemorySegment st = state();
        try {
            return check("read", (long) READ.invokeExact(st, fd, buf, len), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long write(int fd, MemorySegment buf, long len) throws NativeException {
        MemorySegment st = state();
        try {
            return check("write", (long) WRITE.invokeExact(st, fd, buf, len), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** mmap(NULL, len, prot, flags, fd, offset): the address of the mapping. */
    public static long mmap(long len, int prot, int flags, int fd, long offset) throws NativeException {
        MemorySegment st = state();
        try {
            long r = (long) MMAP.invokeExact(st, 0L, len, prot, flags, fd, offset);
            if (r == -1L) {
                throw new NativeException("mmap", errno(st));
            }
            return r;
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void munmap(long addr, long len) throws NativeException {
        MemorySegment st = state();
        try {
            check("munmap", (int) MUNMAP.invokeExact(st, addr, len), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int memfdCreate(String name, int flags) throws NativeException {
        MemorySegment st = state();
        try (Arena a = Arena.ofConfined()) {
            return check("memfd_create", (int) MEMFD_CREATE.invokeExact(st, a.allocateFrom(name), flags), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void ftruncate(int fd, long len) throws NativeException {
        MemorySegment st = state();
        try {
            check("ftruncate", (int) FTRUNCATE.invokeExact(st, fd, len), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fstat: {st_mode, st_size} of an open fd. */
    public static long[] fstat(int fd) throws NativeException {
        MemorySegment st = state();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(STAT_SIZE, 8);
            check("fstat", (int) FSTAT.invokeExact(st, fd, buf), st);
            return new long[] {buf.get(JAVA_INT, STAT_MODE) & 0xffffffffL, buf.get(JAVA_LONG, STAT_SIZE_OFFSET)};
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int eventfd(int initval, int flags) throws NativeException {
        MemorySegment st = state();
        try {
            return check("eventfd", (int) EVENTFD.invokeExact(st, initval, flags), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int epollCreate1(int flags) throws NativeException {
        MemorySegment st = state();
        try {
            return check("epoll_create1", (int) EPOLL_CREATE1.invokeExact(st, flags), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void epollCtl(int epfd, int op, int fd, MemorySegment event) throws NativeException {
        MemorySegment st = state();
        try {
            check("epoll_ctl", (int) EPOLL_CTL.invokeExact(st, epfd, op, fd, event), st);
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** epoll_wait: ready events, or 0 on EINTR (the caller just waits again). */
    public static int epollWait(int epfd, MemorySegment events, int max, int timeoutMs) throws NativeException {
        MemorySegment st = state();
        try {
            int r = (int) EPOLL_WAIT.invokeExact(st, epfd, events, max, timeoutMs);
            if (r < 0) {
                int e = errno(st);
                if (e == NativeException.EINTR) {
                    return 0;
                }
                throw new NativeException("epoll_wait", e);
            }
            return r;
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Sets O_NONBLOCK on the open file description of {@code fd} (shared with the peer that sent it): an
     * eventfd read or write on the data path must never block, whatever its counter holds.
     */
    public static void setNonBlocking(int fd) throws NativeException {
        MemorySegment st = state();
        try {
            int fl = check("fcntl(F_GETFL)", (int) FCNTL3.invokeExact(st, fd, F_GETFL, 0), st);
            if ((fl & O_NONBLOCK) == 0) {
                check("fcntl(F_SETFL)", (int) FCNTL3.invokeExact(st, fd, F_SETFL, fl | O_NONBLOCK), st);
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static final int F_ADD_SEALS = 1033;
    /** F_SEAL_SHRINK: the file can no longer get smaller. */
    public static final int F_SEAL_SHRINK = 0x2;

    /**
     * fcntl(F_ADD_SEALS): true if the seals were added; false if the file does not allow sealing (not a
     * memfd, or one made without MFD_ALLOW_SEALING, or F_SEAL_SEAL set already).
     */
    public static boolean addSeals(int fd, int seals) {
        MemorySegment st = state();
        try {
            return (int) FCNTL3.invokeExact(st, fd, F_ADD_SEALS, seals) == 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** True if {@code fd} is an open file descriptor of this process. */
    public static boolean isOpen(int fd) {
        MemorySegment st = state();
        try {
            return (int) FCNTL.invokeExact(st, fd, F_GETFD) >= 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * write(fd, one, 8) on a non-blocking eventfd: adds {@code one}'s u64 to its counter. Returns false if
     * the write failed (EAGAIN at a saturated counter, EBADF); never blocks, allocates nothing.
     */
    public static boolean eventfdSignal(int fd, MemorySegment one) {
        try {
            return (long) WRITE_CRITICAL.invokeExact(fd, one, 8L) == 8L;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * read(fd, buf, 8) on a non-blocking eventfd: the counter (reset to 0), or 0 if it was 0 (EAGAIN) or
     * the read failed. Never blocks, allocates nothing.
     */
    public static long eventfdDrain(int fd, MemorySegment buf) {
        try {
            long r = (long) READ_CRITICAL.invokeExact(fd, buf, 8L);
            return r == 8L ? buf.get(JAVA_LONG, 0) : 0L;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
