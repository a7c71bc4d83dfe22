package dev.loomvisor.vhost.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * A TAP device of the host kernel ({@code /dev/net/tun}, Documentation/networking/tuntap.rst): Ethernet frames
 * written to the fd enter the host's network stack on that interface; frames the stack sends out of it are
 * read from the fd. Opened with IFF_TAP | IFF_NO_PI, and IFF_VNET_HDR when the kernel offers it (then each
 * frame carries a virtio_net_hdr of {@link #vnetHeaderLength()} bytes in front; no offload is enabled, so
 * the header is all zero going out and never announces GSO coming in).
 *
 * <p>The fd is non-blocking: {@link #read} and {@link #write} return -EAGAIN instead of waiting, so workers
 * never block in them; {@link #awaitReadable} is the one blocking call, for a poller thread.
 */
public final class Tun implements AutoCloseable {

    public static final int IFF_TAP = 0x0002;
    public static final int IFF_NO_PI = 0x1000;
    public static final int IFF_VNET_HDR = 0x4000;
    /** _IOW('T', 202, int), _IOR('T', 207, unsigned int), _IOW('T', 216, int) of linux/if_tun.h. */
    static final long TUNSETIFF = 0x400454caL;
    static final long TUNGETFEATURES = 0x800454cfL;
    static final long TUNSETVNETHDRSZ = 0x400454d8L;
    static final int IFNAMSIZ = 16;
    static final int IFREQ_SIZE = 40;
    static final int O_RDWR = 2;
    static final int O_NONBLOCK = 0x800;
    static final int O_CLOEXEC = 0x80000;
    static final int EFD_NONBLOCK = 0x800;
    static final int EFD_CLOEXEC = 0x80000;
    static final short POLLIN = 0x1;
    public static final int EAGAIN = 11;
    public static final int EPERM = 1;
    /** struct virtio_net_hdr_mrg_rxbuf (virtio 1.2 §5.1.6): the header with num_buffers, 12 bytes. */
    public static final int VNET_HDR_LEN = 12;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final MethodHandle OPEN = call("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL = call("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle READ = call("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = call("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle CLOSE = call("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle POLL = call("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle EVENTFD = call("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));

    private final int fd;
    private final int wakeFd;
    private final String name;
    private final int vnetHeaderLength;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollFds;
    private final MemorySegment pollState;
    private final MemorySegment wakeValue;
    private volatile boolean closed;

    private Tun(int fd, int wakeFd, String name, int vnetHeaderLength) {
        this.fd = fd;
        this.wakeFd = wakeFd;
        this.name = name;
        this.vnetHeaderLength = vnetHeaderLength;
        this.pollFds = arena.allocate(16, 8);
        this.pollState = arena.allocate(CAPTURE);
        this.wakeValue = arena.allocate(8, 8);
    }

    private static MethodHandle call(String name, FunctionDescriptor fd, Linker.Option... more) {
        Linker.Option[] opts = new Linker.Option[more.length + 1];
        opts[0] = CAPTURE_ERRNO;
        System.arraycopy(more, 0, opts, 1, more.length);
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), fd, opts);
    }

    /** Capture state for one thread's calls ({@link #read}, {@link #write}): allocate once, reuse. */
    public static MemorySegment newCallState(Arena arena) {
        return arena.allocate(CAPTURE);
    }

    /**
     * Attaches to TAP interface {@code name}, creating it if it does not exist (which needs CAP_NET_ADMIN:
     * EPERM otherwise).
     */
    public static Tun open(String name) throws NativeException {
        byte[] n = name.getBytes(StandardCharsets.US_ASCII);
        if (n.length == 0 || n.length >= IFNAMSIZ) {
            throw new IllegalArgumentException("interface name must be 1 to " + (IFNAMSIZ - 1) + " characters: " + name);
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int fd = (int) OPEN.invokeExact(st, a.allocateFrom("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) {
                throw new NativeException("open /dev/net/tun", errno(st));
            }
            try {
                MemorySegment features = a.allocate(JAVA_INT);
                int vnet = 0;
                if ((int) IOCTL.invokeExact(st, fd, TUNGETFEATURES, features) == 0
                        && (features.get(JAVA_INT, 0) & IFF_VNET_HDR) != 0) {
                    vnet = VNET_HDR_LEN;
                }
                MemorySegment ifr = a.allocate(IFREQ_SIZE, 8);
                MemorySegment.copy(MemorySegment.ofArray(n), 0, ifr, 0, n.length);
                ifr.set(JAVA_SHORT, IFNAMSIZ, (short) (IFF_TAP | IFF_NO_PI | (vnet != 0 ? IFF_VNET_HDR : 0)));
                if ((int) IOCTL.invokeExact(st, fd, TUNSETIFF, ifr) < 0) {
                    throw new NativeException("ioctl TUNSETIFF " + name, errno(st));
                }
                if (vnet != 0) {
                    MemorySegment size = a.allocate(JAVA_INT);
                    size.set(JAVA_INT, 0, vnet);
                    if ((int) IOCTL.invokeExact(st, fd, TUNSETVNETHDRSZ, size) < 0) {
                        throw new NativeException("ioctl TUNSETVNETHDRSZ", errno(st));
                    }
                }
                int wake = (int) EVENTFD.invokeExact(st, 0, EFD_NONBLOCK | EFD_CLOEXEC);
                if (wake < 0) {
                    throw new NativeException("eventfd", errno(st));
                }
                return new Tun(fd, wake, name, vnet);
            } catch (NativeException | RuntimeException e) {
                int ignored = (int) CLOSE.invokeExact(st, fd);
                throw e;
            }
        } catch (NativeException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static int errno(MemorySegment st) {
        return (int) ERRNO.get(st, 0L);
    }

    public String name() {
        return name;
    }

    /** Bytes of virtio_net_hdr in front of every frame on the fd: {@link #VNET_HDR_LEN}, or 0 without IFF_VNET_HDR. */
    public int vnetHeaderLength() {
        return vnetHeaderLength;
    }

    /**
     * Reads one frame (with its vnet header) into {@code buf}: its length, or minus the errno (-EAGAIN: none
     * waits). {@code state} is the calling thread's {@link #newCallState}.
     */
    public long read(MemorySegment state, MemorySegment buf, long capacity) {
        try {
            long r = (long) READ.invokeExact(state, fd, buf, capacity);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Writes one frame (with its vnet header): the bytes written, or minus the errno. */
    public long write(MemorySegment state, MemorySegment buf, long length) {
        try {
            long r = (long) WRITE.invokeExact(state, fd, buf, length);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Blocks until a frame can be read or {@link #wakeUp} was called (one caller at a time). True if
     * readable. A platform thread should call it: it blocks in the kernel.
     */
    public boolean awaitReadable() {
        pollFds.set(JAVA_INT, 0, fd);
        pollFds.set(JAVA_SHORT, 4, POLLIN);
        pollFds.set(JAVA_SHORT, 6, (short) 0);
        pollFds.set(JAVA_INT, 8, wakeFd);
        pollFds.set(JAVA_SHORT, 12, POLLIN);
        pollFds.set(JAVA_SHORT, 14, (short) 0);
        try {
            int r = (int) POLL.invokeExact(pollState, pollFds, 2L, -1);
            if (r < 0) {
                return false;
            }
            if (pollFds.get(JAVA_SHORT, 14) != 0) {
                long ignored = (long) READ.invokeExact(pollState, wakeFd, wakeValue, 8L);
            }
            return (pollFds.get(JAVA_SHORT, 6) & POLLIN) != 0;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Makes a pending or the next {@link #awaitReadable} return. */
    public void wakeUp() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            MemorySegment one = a.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1L);
            long ignored = (long) WRITE.invokeExact(st, wakeFd, one, 8L);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    public boolean isClosed() {
        return closed;
    }

    /** Closes the fd: a TAP made by {@link #open} (not persistent) disappears with it. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int r1 = (int) CLOSE.invokeExact(st, fd);
            int r2 = (int) CLOSE.invokeExact(st, wakeFd);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        arena.close();
    }
}
