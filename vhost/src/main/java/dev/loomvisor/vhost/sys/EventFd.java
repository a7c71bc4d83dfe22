package dev.loomvisor.vhost.sys;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An eventfd, ours or one a peer passed us. Signalling and draining are the data path's calls: non-blocking
 * (O_NONBLOCK is set on a peer's fd before use), allocation-free, safe from any thread.
 */
public final class EventFd implements AutoCloseable {

    private final int fd;
    private final MemorySegment one;
    private final MemorySegment drainBuf;
    private volatile boolean closed;

    private EventFd(int fd) {
        this.fd = fd;
        Arena a = Arena.ofAuto();
        this.one = a.allocate(8, 8);
        one.set(JAVA_LONG, 0, 1L);
        this.drainBuf = a.allocate(8, 8);
    }

    /** A new eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC). */
    public static EventFd create() throws NativeException {
        return new EventFd(Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC));
    }

    /**
     * Takes over an fd a peer sent: checks that it is an eventfd (its /proc/self/fd link reads
     * {@code anon_inode:[eventfd]}) and makes it non-blocking. Returns null if it is something else, in which
     * case the caller still owns (and must close) the fd.
     */
    public static EventFd adopt(int fd) throws NativeException {
        if (!isEventFd(fd)) {
            return null;
        }
        Libc.setNonBlocking(fd);
        return new EventFd(fd);
    }

    /** True if the fd is an eventfd (by its /proc link). */
    public static boolean isEventFd(int fd) {
        try {
            return "anon_inode:[eventfd]".equals(Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString());
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    public int fd() {
        return fd;
    }

    /** Adds 1 to the counter; false if that failed (closed, or a counter saturated by the peer). */
    public boolean signal() {
        return !closed && Libc.eventfdSignal(fd, one);
    }

    /** Reads and resets the counter; 0 if it was 0. Single reader at a time. */
    public long drain() {
        return closed ? 0 : Libc.eventfdDrain(fd, drainBuf);
    }

    /** Closes the fd once. The caller makes sure no thread still uses it (fd numbers are reused). */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Libc.closeQuietly(fd);
        }
    }
}
