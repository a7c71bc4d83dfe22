package dev.loomvisor.vhost.sys;

import java.io.IOException;

/**
 * A libc call failed: the call's name and the errno it left (captured right after the call, before the JVM
 * can overwrite it). Host errnos are open-ended, so this carries the number rather than core's
 * {@code Errno} enum, which lists only what the emulated kernel returns.
 */
public final class NativeException extends IOException {

    public static final int EINTR = 4;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int EINVAL = 22;
    public static final int EPIPE = 32;
    public static final int ECONNRESET = 104;

    private final String call;
    private final int errno;

    public NativeException(String call, int errno) {
        super(call + ": errno " + errno + " (" + name(errno) + ")");
        this.call = call;
        this.errno = errno;
    }

    public String call() {
        return call;
    }

    public int errno() {
        return errno;
    }

    /** The symbolic name of the errnos this layer meets; the number otherwise. */
    public static String name(int errno) {
        return switch (errno) {
            case 1 -> "EPERM";
            case 2 -> "ENOENT";
            case EINTR -> "EINTR";
            case 5 -> "EIO";
            case EBADF -> "EBADF";
            case EAGAIN -> "EAGAIN";
            case 12 -> "ENOMEM";
            case 13 -> "EACCES";
            case 14 -> "EFAULT";
            case 19 -> "ENODEV";
            case EINVAL -> "EINVAL";
            case 24 -> "EMFILE";
            case EPIPE -> "EPIPE";
            case 98 -> "EADDRINUSE";
            case ECONNRESET -> "ECONNRESET";
            case 111 -> "ECONNREFUSED";
            default -> Integer.toString(errno);
        };
    }
}
